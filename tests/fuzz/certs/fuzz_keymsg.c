/* fuzz_keymsg.c -- libFuzzer target: the key process's request check
 * (cert_keymsg.c) over arbitrary bytes, the only input the key process
 * takes from the network process. Checks what the key process relies on: an
 * accepted request has a known op and algorithm, a data length within its
 * buffer and a channel within the key process's table, and the length check
 * never accepts more than the buffer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "certs/cert_keymsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cert_kp_req r;
	size_t keysize;

	if (cert_kp_req_parse(data, size, &r) != CERT_KP_OK)
		return 0;
	if (size != sizeof r || r.magic != CERT_KP_MAGIC ||
	    (r.op != CERT_KP_SIGN && r.op != CERT_KP_HAVE) ||
	    r.chan > CERT_KP_CHAN_MAX)
		abort();
	if (r.op == CERT_KP_SIGN && (r.len == 0 || r.len > CERT_KP_DATA_MAX ||
	    r.alg < CERT_KP_ECDSA || r.alg > CERT_KP_RSA_RAW))
		abort();
	for (keysize = 0; keysize <= CERT_KP_DATA_MAX; keysize += 8)
		if (cert_kp_len_fits(r.alg, keysize, r.len) &&
		    (r.len > keysize && r.alg != CERT_KP_ECDSA))
			abort();
	return 0;
}
