/* mail_ctx.c -- the shared, reference-counted context of SMTP sessions: a
 * private copy of the settings, the compiled rules, the TLS contexts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "certs/certs.h"
#include "mail/mail.h"
#include "mail/mail_priv.h"

static int
dup_field(char **f)
{
	if (*f == NULL)
		return 0;
	*f = strdup(*f);
	return *f == NULL ? -1 : 0;
}

/* A deep copy so that sessions outlive a config reload. */
static int
settings_copy(struct mail_settings *dst, const struct mail_settings *src)
{
	char **fields[] = { &dst->hostname, &dst->relay_host, &dst->relay_ca,
	    &dst->relay_user, &dst->relay_password, &dst->auth_user,
	    &dst->auth_hash, &dst->scrub_rules, &dst->scrub_notice };
	int rc = 0;

	memcpy(dst, src, sizeof(*dst));
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (dup_field(fields[i]) < 0) {
			*fields[i] = NULL;
			rc = -1;
		}
	return rc;
}

struct mail_ctx *
mail_ctx_new(const struct mail_settings *s, struct cert_server *tls,
    mail_audit_fn audit, void *audit_arg, char *err, size_t errlen)
{
	struct mail_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	atomic_init(&c->refs, 1);
	c->tls = tls;
	c->audit = audit;
	c->audit_arg = audit_arg;
	if (settings_copy(&c->s, s) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (c->s.hostname == NULL && (c->s.hostname = strdup("localhost")) == NULL)
		goto fail;
	if (c->s.scrub_rules == NULL) {
		snprintf(err, errlen, "no scrub_rules: refusing to relay mail "
		    "unscrubbed");
		goto fail;
	}
	c->rules = mail_rules_load(c->s.scrub_rules, c->s.scrub_notice, err,
	    errlen);
	if (c->rules == NULL)
		goto fail;
	if (c->s.relay_tls != MAIL_RELAY_NONE) {
		c->client = cert_client_new(c->s.relay_ca, c->s.relay_verify,
		    err, errlen);
		if (c->client == NULL)
			goto fail;
	}
	mail_gmime_init();
	return c;
fail:
	mail_ctx_unref(c);
	return NULL;
}

void
mail_ctx_set_runner(struct mail_ctx *c, mail_submit_fn submit, void *arg)
{
	c->submit = submit;
	c->submit_arg = arg;
}

void
mail_ctx_set_hit_counter(struct mail_ctx *c, mail_hit_fn count, void *arg)
{
	c->count_hit = count;
	c->count_hit_arg = arg;
}

void
mail_ctx_set_site(struct mail_ctx *c, const char *name)
{
	snprintf(c->site, sizeof(c->site), "%s", name);
}

struct mail_ctx *
mail_ctx_ref(struct mail_ctx *c)
{
	atomic_fetch_add(&c->refs, 1);
	return c;
}

void
mail_ctx_unref(struct mail_ctx *c)
{
	if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	mail_rules_free(c->rules);
	if (c->client != NULL)
		cert_client_free(c->client);
	mail_settings_free(&c->s);
	free(c);
}
