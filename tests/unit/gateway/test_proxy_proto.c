/* test_proxy_proto.c -- PROXY protocol v2 header parsing, each malformed
 * header its own case. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <string.h>

#include "gateway/gw_priv.h"

static const uint8_t sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* v2 PROXY TCP4 203.0.113.7:4711 -> 192.0.2.1:443 */
static size_t
tcp4(uint8_t *b)
{
	memcpy(b, sig, 12);
	b[12] = 0x21;
	b[13] = 0x11;
	b[14] = 0;
	b[15] = 12;
	inet_pton(AF_INET, "203.0.113.7", b + 16);
	inet_pton(AF_INET, "192.0.2.1", b + 20);
	b[24] = 0x12; b[25] = 0x67;
	b[26] = 0x01; b[27] = 0xbb;
	return 28;
}

static int
parse(const uint8_t *b, size_t n, struct sockaddr_storage *ss, size_t *hl)
{
	socklen_t sl;

	return gw_proxy_v2_parse(b, n, ss, &sl, hl);
}

Test(proxy_v2, tcp4_gives_the_client_address)
{
	uint8_t b[64];
	struct sockaddr_storage ss;
	size_t hl, n = tcp4(b);
	char ip[64];

	cr_assert_eq(parse(b, n, &ss, &hl), 1);
	cr_assert_eq(hl, 28);
	cr_assert_eq(ss.ss_family, AF_INET);
	inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof(ip));
	cr_assert_str_eq(ip, "203.0.113.7");
	cr_assert_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 4711);
}

Test(proxy_v2, tcp6_gives_the_client_address)
{
	uint8_t b[64] = { 0 };
	struct sockaddr_storage ss;
	size_t hl;
	char ip[64];

	memcpy(b, sig, 12);
	b[12] = 0x21;
	b[13] = 0x21;
	b[15] = 36;
	inet_pton(AF_INET6, "2001:db8::7", b + 16);
	inet_pton(AF_INET6, "2001:db8::1", b + 32);
	cr_assert_eq(parse(b, 52, &ss, &hl), 1);
	cr_assert_eq(ss.ss_family, AF_INET6);
	inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof(ip));
	cr_assert_str_eq(ip, "2001:db8::7");
}

Test(proxy_v2, every_prefix_asks_for_more)
{
	uint8_t b[64];
	struct sockaddr_storage ss;
	size_t hl, n = tcp4(b);

	for (size_t i = 0; i < n; i++)
		cr_assert_eq(parse(b, i, &ss, &hl), 0, "prefix of %zu bytes", i);
}

Test(proxy_v2, local_command_keeps_the_peer)
{
	uint8_t b[64];
	struct sockaddr_storage ss;
	size_t hl;

	tcp4(b);
	b[12] = 0x20;
	cr_assert_eq(parse(b, 28, &ss, &hl), 1);
	cr_assert_eq(ss.ss_family, AF_UNSPEC);
}

Test(proxy_v2, tls_client_hello_is_refused)
{
	static const uint8_t hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01 };
	struct sockaddr_storage ss;
	size_t hl;

	cr_assert_eq(parse(hello, sizeof(hello), &ss, &hl), -1);
}

Test(proxy_v2, version_1_text_is_refused)
{
	static const char v1[] = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
	struct sockaddr_storage ss;
	size_t hl;

	cr_assert_eq(parse((const uint8_t *)v1, sizeof(v1) - 1, &ss, &hl), -1);
}

Test(proxy_v2, wrong_version_nibble_is_refused)
{
	uint8_t b[64];
	struct sockaddr_storage ss;
	size_t hl;

	tcp4(b);
	b[12] = 0x11;
	cr_assert_eq(parse(b, 28, &ss, &hl), -1);
}

Test(proxy_v2, unknown_command_is_refused)
{
	uint8_t b[64];
	struct sockaddr_storage ss;
	size_t hl;

	tcp4(b);
	b[12] = 0x2f;
	cr_assert_eq(parse(b, 28, &ss, &hl), -1);
}

Test(proxy_v2, udp_is_refused)
{
	uint8_t b[64];
	struct sockaddr_storage ss;
	size_t hl;

	tcp4(b);
	b[13] = 0x12;
	cr_assert_eq(parse(b, 28, &ss, &hl), -1);
}

Test(proxy_v2, short_address_block_is_refused)
{
	uint8_t b[64];
	struct sockaddr_storage ss;
	size_t hl;

	tcp4(b);
	b[15] = 8;
	cr_assert_eq(parse(b, 24, &ss, &hl), -1);
}

Test(proxy_v2, oversize_length_is_refused)
{
	uint8_t b[64];
	struct sockaddr_storage ss;
	size_t hl;

	tcp4(b);
	b[14] = 0xff;
	b[15] = 0xff;
	cr_assert_eq(parse(b, 28, &ss, &hl), -1);
}
