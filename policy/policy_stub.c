/* policy_stub.c -- temporary fail-closed bodies until the real policy code lands. */
#include "policy/policy.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pol_policy { int unused; };

struct pol_policy *
pol_load(const char *file, const char *geoip_db, pol_report_fn report, void *arg)
{
	char msg[512];

	(void)geoip_db;
	snprintf(msg, sizeof msg, "%s:1:1: policy module not built yet", file);
	if (report != NULL)
		report(arg, false, msg);
	return NULL;
}

void pol_free(struct pol_policy *p) { free(p); }
size_t pol_rule_count(const struct pol_policy *p) { (void)p; return 0; }

int
pol_normalise_path(const char *raw, size_t rawlen, char *out, size_t outlen,
    char *err, size_t errlen)
{
	(void)raw; (void)rawlen; (void)out; (void)outlen;
	snprintf(err, errlen, "path normalisation not built yet");
	return -1;
}

const char *
pol_action_name(enum pol_action a)
{
	static const char *const names[] = { "allow", "login", "mfa", "deny" };
	return (unsigned)a < 4 ? names[a] : "deny";
}

void
pol_decide(const struct pol_policy *p, const struct pol_request *r,
    struct pol_verdict *v)
{
	(void)p; (void)r;
	memset(v, 0, sizeof *v);
	v->action = POL_DENY;
	v->audit = true;
	v->file = "(default)";
	v->reason = "default";
}

int
pol_lockdown_parse(const char *text, struct pol_lockdown **out, char *err,
    size_t errlen)
{
	(void)text;
	*out = NULL;
	snprintf(err, errlen, "lockdown parsing not built yet");
	return -1;
}

void pol_lockdown_free(struct pol_lockdown *ld) { (void)ld; }

bool
pol_lockdown_allows(const struct pol_lockdown *ld, const struct sockaddr *peer)
{
	(void)peer;
	return ld == NULL;
}

void
pol_explain(const struct pol_policy *p, const struct pol_request *r, FILE *out)
{
	(void)p; (void)r;
	fprintf(out, "decision: deny (policy module not built yet)\n");
}

int
pol_cmd_explain(const struct pol_policy *p, int argc, char **argv)
{
	(void)p; (void)argc; (void)argv;
	fprintf(stderr, "policy explain: not built yet\n");
	return 2;
}
