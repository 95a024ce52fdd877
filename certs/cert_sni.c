/* cert_sni.c -- the server_name extension of a ClientHello (RFC 6066 3),
 * read from its raw bytes. The site is chosen before OpenSSL parses the
 * extension itself (cert_server.c, hello_cb), so this accepts exactly what
 * OpenSSL 3.0 then accepts (tls_parse_ctos_server_name): a list of one
 * host_name entry, lengths that cover the extension exactly, 1 to 255
 * bytes, no NUL. Anything else is refused here as OpenSSL would refuse it,
 * so the name that picks the site is the name OpenSSL reports later. */
#include <string.h>

#include "certs/cert_priv.h"

#define SNI_NAMETYPE_HOST	0	/* TLSEXT_NAMETYPE_host_name */
#define SNI_HOST_MAX		255	/* TLSEXT_MAXLEN_host_name */

int
cert_sni_parse(const unsigned char *p, size_t len, char *host, size_t hostlen)
{
	size_t n;

	if (len < 5 || ((size_t)p[0] << 8 | p[1]) != len - 2 ||
	    p[2] != SNI_NAMETYPE_HOST)
		return -1;
	n = (size_t)p[3] << 8 | p[4];
	if (n != len - 5 || n == 0 || n > SNI_HOST_MAX || n >= hostlen ||
	    memchr(p + 5, '\0', n) != NULL)
		return -1;
	memcpy(host, p + 5, n);
	host[n] = '\0';
	return 1;
}
