/* relay_spoof.c -- request headers that tell a back end to act on another
 * URL, another method or another client address than the one the gateway
 * judged. Only a proxy may set them; from a client they are dropped unless
 * the operator keeps one by name (`forward_header`). */
#include <string.h>
#include <strings.h>

#include "gateway/config_priv.h"
#include "gateway/gw_priv.h"

/* The class, in two parts: names servers and frameworks act on (IIS URL
 * Rewrite, Symfony, Laravel, Spring, Rails, Express, CDNs), and prefixes
 * whose every member is forwarding metadata. docs/configuration.md lists
 * them with the reason for each. */
static const struct gw_name names[] = {
	/* URL rewrite: the back end serves this URL instead of the one judged */
	GW_NAME("x-rewrite-url"), GW_NAME("x-envoy-original-path"),
	/* method override: a GET judged, a DELETE done */
	GW_NAME("x-http-method-override"), GW_NAME("x-http-method"),
	GW_NAME("x-method-override"),
	/* client address, as CDNs and load balancers set it */
	GW_NAME("true-client-ip"), GW_NAME("x-client-ip"),
	GW_NAME("x-cluster-client-ip"), GW_NAME("cf-connecting-ip"),
	GW_NAME("cf-connecting-ipv6"), GW_NAME("fastly-client-ip"),
	GW_NAME("x-originating-ip"), GW_NAME("x-remote-ip"),
	GW_NAME("x-remote-addr"), GW_NAME("client-ip"),
	GW_NAME("x-proxyuser-ip"), GW_NAME("wl-proxy-client-ip"),
	GW_NAME("proxy-client-ip"), GW_NAME("x-real-ip"),
	GW_NAME("forwarded"), GW_NAME("x-forwarded"),
	GW_NAME("forwarded-for"),
	/* host and scheme the back end builds links and redirects from */
	GW_NAME("x-host"), GW_NAME("x-http-host-override"),
	GW_NAME("front-end-https"), GW_NAME("x-url-scheme"),
};

/* X-Forwarded-Prefix, -Server, -Scheme, -Ssl, -Uri ...; X-Original-URL,
 * -Host, -Method, -Forwarded-For ... */
static const char *const prefixes[] = { "x-forwarded-", "x-original-" };

/* Set by the gateway itself from what it saw: never kept from a client. */
static const char *const own[] = {
	"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
	"x-forwarded-port", "x-real-ip", "forwarded",
};

bool
gw_spoof_header(const char *name, size_t n)
{
	if (gw_name_in(name, n, names, sizeof(names) / sizeof(names[0])))
		return true;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t pl = strlen(prefixes[i]);
		if (n > pl && strncasecmp(prefixes[i], name, pl) == 0)
			return true;
	}
	return false;
}

bool
gw_spoof_keepable(const char *name)
{
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (strcasecmp(own[i], name) == 0)
			return false;
	return gw_spoof_header(name, strlen(name));
}

bool
gw_spoof_drop(const struct gw_config *cfg, const char *name, size_t n)
{
	if (!gw_spoof_header(name, n))
		return false;
	for (size_t i = 0; i < cfg->nfwd_keep; i++)
		if (strlen(cfg->fwd_keep[i]) == n &&
		    strncasecmp(cfg->fwd_keep[i], name, n) == 0)
			return false;
	return true;
}
