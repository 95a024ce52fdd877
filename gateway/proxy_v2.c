/* proxy_v2.c -- the PROXY protocol v2 header format: bytes in, the client
 * address out. No I/O, so that it can be fuzzed alone. */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "gateway/gw_priv.h"

/* The 12-byte signature of version 2 (a fact of the protocol spec). */
static const uint8_t sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* Returns 1 with *hdrlen and (for PROXY over TCP) *src filled, 0 when more
 * bytes are needed, -1 when the bytes are not a v2 header we accept.
 * A LOCAL command (health checks from the balancer itself) leaves src's
 * family AF_UNSPEC: the TCP peer stands. */
int
gw_proxy_v2_parse(const uint8_t *b, size_t len, struct sockaddr_storage *src,
    socklen_t *srclen, size_t *hdrlen)
{
	size_t body;

	memset(src, 0, sizeof(*src));
	*srclen = 0;
	if (memcmp(b, sig, len < sizeof(sig) ? len : sizeof(sig)) != 0)
		return -1;
	if (len < GW_PP_HEAD)
		return 0;
	if ((b[12] & 0xf0) != 0x20)
		return -1;		/* version 2 only */
	body = (size_t)b[14] << 8 | b[15];
	if (GW_PP_HEAD + body > GW_PP_MAX)
		return -1;
	if (len < GW_PP_HEAD + body)
		return 0;
	*hdrlen = GW_PP_HEAD + body;
	if ((b[12] & 0x0f) == 0x00)
		return 1;		/* LOCAL */
	if ((b[12] & 0x0f) != 0x01)
		return -1;
	if (b[13] == 0x11) {		/* TCP over IPv4 */
		struct sockaddr_in *s4 = (struct sockaddr_in *)src;
		if (body < 12)
			return -1;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, b + 16, 4);
		memcpy(&s4->sin_port, b + 24, 2);
		*srclen = sizeof(*s4);
		return 1;
	}
	if (b[13] == 0x21) {		/* TCP over IPv6 */
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)src;
		if (body < 36)
			return -1;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, b + 16, 16);
		memcpy(&s6->sin6_port, b + 48, 2);
		*srclen = sizeof(*s6);
		return 1;
	}
	return -1;			/* UDP, unix sockets, unspecified */
}
