/* fuzz_sni.c -- libFuzzer target: the ClientHello's server_name extension
 * as the gateway reads it to pick a site (cert_sni.c), over arbitrary
 * bytes. Checks what the routing relies on: an accepted name is the whole
 * extension's one entry, 1 to 255 bytes, NUL-free and terminated within
 * the buffer, and a too small buffer is refused, never overrun. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "certs/cert_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char host[256], small[16];
	int r = cert_sni_parse(data, size, host, sizeof(host));
	size_t n;

	if (r != 1 && r != -1)
		abort();
	if (r == 1) {
		n = strlen(host);
		if (n == 0 || n > 255 || size != n + 5 ||
		    memcmp(host, data + 5, n) != 0 ||
		    ((size_t)data[0] << 8 | data[1]) != size - 2 || data[2] != 0)
			abort();
	}
	r = cert_sni_parse(data, size, small, sizeof(small));
	if (r == 1 && strlen(small) >= sizeof(small))
		abort();
	return 0;
}
