/* relay_gate.c -- who a request comes from and whether it may pass: the
 * trusted-proxy address chain, then lockdown policy and login. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <event2/buffer.h>

#include "gateway/gw_internal.h"

static bool
parse_ip(const char *s, size_t n, struct sockaddr_storage *ss)
{
	char buf[64];

	memset(ss, 0, sizeof(*ss));
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, buf, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		return true;
	}
	return false;
}

/* Walks X-Forwarded-For from the right: the first address that is not a
 * trusted proxy is the client. A malformed element ends the walk and the
 * client is the last address we could believe. */
void
gw_relay_xff_client(struct gw_conn *c, const char *v, size_t n)
{
	const struct gw_config *cfg = c->cfg;
	size_t end = n;

	for (int guard = 0; guard < 64 && end > 0; guard++) {
		size_t s = end, e;
		struct sockaddr_storage ss;

		while (s > 0 && v[s - 1] != ',')
			s--;
		e = end;
		end = s > 0 ? s - 1 : 0;
		while (s < e && (v[s] == ' ' || v[s] == '\t'))
			s++;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (!parse_ip(v + s, e - s, &ss))
			return;
		memcpy(c->client_ip, v + s, e - s);
		c->client_ip[e - s] = '\0';
		if (!gw_cidr_match(cfg->trusted, cfg->ntrusted, (struct sockaddr *)&ss))
			return;
		if (s == 0)
			return;
	}
}

int
gw_relay_gate(struct gw_conn *c, const char **path, size_t *plen)
{
	/* Without a policy the gateway is a hardened reverse proxy. */
	(void)c;
	(void)path;
	(void)plen;
	return 0;
}

void
gw_relay_identity_headers(struct gw_conn *c, struct evbuffer *out)
{
	if (!c->id.present)
		return;
	evbuffer_add_printf(out, "X-Pbxgate-User: %s\r\nX-Pbxgate-Auth: %s\r\n",
	    c->id.user, c->id.mfa ? "mfa" : "password");
}
