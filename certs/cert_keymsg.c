/* cert_keymsg.c -- checking the key process's requests: the only bytes it
 * reads that it did not produce or load itself. */
#include <string.h>

#include "certs/cert_keymsg.h"

enum cert_kp_status
cert_kp_req_parse(const void *buf, size_t n, struct cert_kp_req *out)
{
	struct cert_kp_req r;

	if (n != sizeof r)
		return CERT_KP_EBADMSG;
	memcpy(&r, buf, sizeof r);
	if (r.magic != CERT_KP_MAGIC)
		return CERT_KP_EBADMSG;
	if (r.op != CERT_KP_SIGN && r.op != CERT_KP_HAVE)
		return CERT_KP_EBADMSG;
	if (r.chan > CERT_KP_CHAN_MAX || r.pad != 0)
		return CERT_KP_EBADMSG;
	if (r.op == CERT_KP_SIGN && (r.alg < CERT_KP_ECDSA ||
	    r.alg > CERT_KP_RSA_RAW || r.len == 0 || r.len > CERT_KP_DATA_MAX))
		return CERT_KP_EBADMSG;
	*out = r;
	return CERT_KP_OK;
}

bool
cert_kp_len_fits(uint32_t alg, size_t size, uint32_t len)
{
	switch (alg) {
	case CERT_KP_ECDSA:
		/* SHA-1 (TLS 1.2 clients may ask), SHA-224/256/384/512 */
		return len == 20 || len == 28 || len == 32 || len == 48 ||
		    len == 64;
	case CERT_KP_RSA_PKCS1:
		/* RFC 8017 9.2: the encoding needs 11 bytes of padding */
		return size >= 11 && len <= size - 11;
	case CERT_KP_RSA_RAW:
		return len == size;
	default:
		return false;
	}
}
