/* relay_host.c -- which Host a request may name, and the Host the upstream
 * sees. A back end builds links, redirects and password-reset mails from
 * Host; a client-chosen one would poison them, so only names this gateway
 * answers to pass, and they pass in one canonical spelling.
 *
 * Sites (several PBXs behind one gateway), how a request finds its own:
 *  - TLS: the SSL starts on the default (else first) site's contexts and
 *    the SNI callback asks the snapshot's route (cmd_run.c) for the site
 *    of the name, moving to its contexts; no site and no default_site:
 *    alert unrecognized_name. No SNI at all counts as an unknown name.
 *    The connection holds its snapshot (c->cfg, a reference) through the
 *    handshake, and the snapshot owns every site's contexts.
 *  - HTTP: at each request's start the connection takes the current
 *    snapshot and, from it, the site of its SNI (gw_conn_site): c->site,
 *    a whole struct gw_config (site-scoped values its own, process-wide
 *    ones copied from the top level) that the policy, upstream, checks,
 *    pages and limits read. Host must lead to the same site (421). A
 *    reload that removes the site answers the next request with 421.
 *  - Logins: one auth context per site, by name, opened when a snapshot
 *    first names it and closed once no snapshot holds it (site_auth.c),
 *    as the top level's is; the snapshot carries the pointer (authctx). */
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "gateway/gw_priv.h"

#define NAME_MAX_LEN 253

/* Lower case, without one final dot; false when empty or too long. */
static bool
fold_name(const char *s, size_t n, char *out)
{
	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		out[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
	}
	out[n] = '\0';
	return true;
}

/* Splits a Host value (checked by valid_host: reg-name, or [v6], with an
 * optional port) into its name (brackets off) and its ":port" suffix. */
static bool
split_host(const char *v, size_t n, char *name, const char **port,
    size_t *portlen, bool *v6)
{
	const char *end;

	*v6 = n > 0 && v[0] == '[';
	if (*v6) {
		end = memchr(v, ']', n);
		if (end == NULL)
			return false;
		*port = end + 1;
		*portlen = n - (size_t)(*port - v);
		return fold_name(v + 1, (size_t)(end - v - 1), name);
	}
	end = memchr(v, ':', n);
	*port = end != NULL ? end : v + n;
	*portlen = n - (size_t)(*port - v);
	return fold_name(v, (size_t)(*port - v), name);
}

/* An IP literal Host names this gateway only as the address the client
 * reached (a phone provisioned by address, a health check): never another
 * one, which the back end would then believe it is. */
static bool
is_local_address(struct gw_conn *c, const char *name, bool *is_ip)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct pol_addr want, have;

	if (pol_addr_parse(name, strlen(name), &want) == -1)
		return *is_ip = false, false;
	*is_ip = true;
	if (getsockname(gw_io_fd(c->io), (struct sockaddr *)&ss, &sl) < 0 ||
	    !pol_addr_from_sockaddr((struct sockaddr *)&ss, &have))
		return false;
	return want.hi == have.hi && want.lo == have.lo;
}

/* With sites, a name is ours when it leads to the connection's own site:
 * listed by it, or caught by it as default_site. A Host of another site
 * on this connection would be judged by one site's policy and sent to
 * another's upstream: 421, the client retries on a connection of its own. */
static const char *
site_name(struct gw_conn *c, const char *name)
{
	const struct gw_site *s = gw_site_for_name(c->cfg, name);
	const struct gw_config *sc;

	if (s == NULL || s->cfg != c->site)
		return NULL;
	sc = s->cfg;
	for (size_t i = 0; i < sc->nserver_names; i++)
		if (strcmp(sc->server_names[i], name) == 0)
			return sc->server_names[i];
	return name;
}

/* The configured spelling of `name` when it is ours; NULL when not. */
static const char *
our_name(struct gw_conn *c, const char *name)
{
	const struct gw_config *cfg = c->site;
	bool is_ip;

	if (is_local_address(c, name, &is_ip))
		return name;
	if (is_ip)
		return NULL;
	if (c->cfg->nsites > 0)
		return site_name(c, name);
	if (cfg->nserver_names > 0) {
		for (size_t i = 0; i < cfg->nserver_names; i++)
			if (strcmp(cfg->server_names[i], name) == 0)
				return cfg->server_names[i];
		return NULL;
	}
	return cert_server_covers(cfg->tls, name) ? name : NULL;
}

const struct gw_config *
gw_site_of(struct gw_conn *c, const struct gw_config *cfg)
{
	SSL *ssl = gw_io_ssl(c->io);
	const struct gw_site *site;
	const char *s;

	if (cfg->nsites == 0)
		return cfg;
	/* the name as the SNI callback's route saw it (a final dot kept:
	 * such a name is no site's), so that the handshake's site and the
	 * request's are the same */
	s = ssl != NULL ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) :
	    NULL;
	site = gw_site_for_name(cfg, s);
	return site != NULL ? site->cfg : NULL;
}

void
gw_conn_site(struct gw_conn *c)
{
	const struct gw_config *site = gw_site_of(c, c->cfg);

	c->no_site = site == NULL;
	c->site = site != NULL ? site : c->cfg;
}

int
gw_relay_host(struct gw_conn *c, const char *host, size_t hlen,
    char *out, size_t outlen, const char **why)
{
	const struct gw_config *cfg = c->site;
	char name[NAME_MAX_LEN + 1], sni[NAME_MAX_LEN + 1];
	const char *port, *canon, *s;
	size_t portlen;
	bool v6;
	SSL *ssl = gw_io_ssl(c->io);
	int n;

	if (c->no_site)
		return *why = "no site serves the TLS server name (SNI)", 421;
	if (host == NULL) {		/* HTTP/1.0 without Host */
		snprintf(out, outlen, "%s", cfg->nserver_names > 0 ?
		    cfg->server_names[0] : cfg->upstream.hostport);
		return 0;
	}
	if (!split_host(host, hlen, name, &port, &portlen, &v6))
		return *why = "invalid Host", 400;
	s = ssl != NULL ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
	if (s != NULL && (!fold_name(s, strlen(s), sni) || strcmp(sni, name) != 0))
		return *why = "Host differs from the TLS server name (SNI)", 421;
	if ((canon = our_name(c, name)) == NULL)
		return *why = "Host is not a name this gateway serves", 421;
	n = snprintf(out, outlen, "%s%s%s%.*s", v6 ? "[" : "", canon,
	    v6 ? "]" : "", (int)portlen, port);
	if (n < 0 || (size_t)n >= outlen)
		return *why = "invalid Host", 400;
	return 0;
}
