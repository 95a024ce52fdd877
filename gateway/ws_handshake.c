/* ws_handshake.c -- the check that turns an upstream 101 into a tunnel: only
 * a WebSocket handshake completed as RFC 6455 section 4 says, for the key
 * the client sent, may stop HTTP parsing on a connection. */
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "gateway/gw_priv.h"

#define WS_GUID       "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_LEN    24	/* base64 of 16 bytes, "==" included */
#define WS_ACCEPT_LEN 28	/* base64 of a SHA-1 digest */

/* A key is the base64 encoding of 16 bytes (4.1, item 7). Checked by
 * OpenSSL's decoder and then by encoding the result again: only the one
 * canonical spelling of 16 bytes passes. */
bool
gw_ws_key_valid(const char *key, size_t n)
{
	unsigned char raw[WS_KEY_LEN], again[WS_KEY_LEN + 1];

	if (n != WS_KEY_LEN || key[WS_KEY_LEN - 2] != '=' ||
	    key[WS_KEY_LEN - 1] != '=')
		return false;
	/* 24 characters decode to 18 bytes, the last two from the padding */
	if (EVP_DecodeBlock(raw, (const unsigned char *)key, WS_KEY_LEN) != 18)
		return false;
	if (EVP_EncodeBlock(again, raw, 16) != WS_KEY_LEN)
		return false;
	return memcmp(again, key, WS_KEY_LEN) == 0;
}

/* base64(SHA-1(key + GUID)) == accept (4.2.2, item 5.4). */
bool
gw_ws_accept_matches(const char *key, size_t kn, const char *accept, size_t an)
{
	char buf[WS_KEY_LEN + sizeof(WS_GUID) - 1];
	unsigned char md[EVP_MAX_MD_SIZE], want[WS_ACCEPT_LEN + 1];
	unsigned int mdlen = 0;

	if (!gw_ws_key_valid(key, kn) || an != WS_ACCEPT_LEN)
		return false;
	memcpy(buf, key, WS_KEY_LEN);
	memcpy(buf + WS_KEY_LEN, WS_GUID, sizeof(WS_GUID) - 1);
	if (EVP_Digest(buf, sizeof(buf), md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen != 20)
		return false;
	if (EVP_EncodeBlock(want, md, 20) != WS_ACCEPT_LEN)
		return false;
	return CRYPTO_memcmp(want, accept, WS_ACCEPT_LEN) == 0;
}

/* The value of the one header called `name`: false when absent or
 * repeated. */
static bool
only(const struct gw_msg *m, const char *name, const char **v, size_t *vn)
{
	unsigned n;

	return gw_msg_get(m, name, &n, v, vn) != NULL && n == 1;
}

/* Whether some Connection header of `m` lists the "upgrade" token. */
static bool
connection_upgrade(const struct gw_msg *m)
{
	for (unsigned i = 0; i < m->nhdrs; i++) {
		const struct gw_hdr *h = &m->hdrs[i];
		const char *v;
		size_t n;

		if (!gw_hdr_is(m, h, "connection"))
			continue;
		n = gw_msg_value(m, h, &v);
		if (gw_token_list_has(v, n, "upgrade"))
			return true;
	}
	return false;
}

const char *
gw_ws_handshake_check(const struct gw_msg *req, const struct gw_msg *resp)
{
	const char *key = NULL, *v = NULL;
	size_t kn = 0, n = 0;

	if (!only(req, "sec-websocket-key", &key, &kn))
		return "101 to a request without one Sec-WebSocket-Key";
	if (!gw_ws_key_valid(key, kn))
		return "101 to a request with an invalid Sec-WebSocket-Key";
	if (!only(resp, "upgrade", &v, &n))
		return "101 without one Upgrade header";
	if (n != 9 || strncasecmp(v, "websocket", 9) != 0)
		return "101 to a protocol other than websocket";
	if (!connection_upgrade(resp))
		return "101 without Connection: upgrade";
	if (!only(resp, "sec-websocket-accept", &v, &n))
		return "101 without one Sec-WebSocket-Accept";
	if (!gw_ws_accept_matches(key, kn, v, n))
		return "101 with a Sec-WebSocket-Accept that does not match the key";
	return NULL;
}
