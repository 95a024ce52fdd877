/* fuzz_proxy_v2.c -- libFuzzer target: the PROXY protocol v2 header parser
 * over arbitrary bytes, fed as the gateway reads them (proxy_proto.c): each
 * prefix in turn, as a short read would leave it. Checks what the reader
 * relies on: a complete answer never claims more bytes than it was given,
 * and once an answer is final, longer inputs give the same answer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "gateway/gw_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage src;
	socklen_t srclen;
	size_t hdrlen, first_len = 0;
	int first = 0;

	if (size > 1024)
		return 0;
	for (size_t n = 1; n <= size; n++) {
		int r;

		hdrlen = 0;
		r = gw_proxy_v2_parse(data, n, &src, &srclen, &hdrlen);
		if (r == 1 && (hdrlen > n || hdrlen < 16))
			abort();
		if (r == 1 && srclen > sizeof(src))
			abort();
		if (first != 0 && (r != first || (r == 1 && hdrlen != first_len)))
			abort();	/* a final answer changed with more bytes */
		if (first == 0 && r != 0) {
			first = r;
			first_len = hdrlen;
		}
	}
	return 0;
}
