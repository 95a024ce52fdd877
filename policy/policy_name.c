/* policy_name.c -- user names: the one folding rule the user store and
 * `user` rules share, and the names a policy's rules mention. */
#include <string.h>

#include "policy/policy_priv.h"

/* ASCII-only names: [a-z0-9] first, then [a-z0-9._@-], folded to lower
 * case. NFKC needs Unicode tables we do not ship; refusing non-ASCII makes
 * every name its own NFKC form, so folding ASCII case is the whole rule. */
int
pol_name_fold(const char *name, char *out, size_t outlen)
{
	size_t n = name != NULL ? strlen(name) : 0;

	if (n == 0 || n > POL_NAME_MAX || outlen < n + 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		char lc = (char)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);

		if (!((lc >= 'a' && lc <= 'z') || (lc >= '0' && lc <= '9') ||
		    (i > 0 && lc != '\0' && strchr("._@-", lc) != NULL)))
			return -1;
		out[i] = lc;
	}
	out[n] = '\0';
	return 0;
}

void
pol_user_names(const struct pol_policy *p, pol_name_fn fn, void *arg)
{
	char folded[POL_NAME_MAX + 1];

	for (size_t i = 0; i < p->nrules; i++) {
		const struct pol_rule *r = &p->rules[i];

		for (size_t j = 0; j < r->nm; j++) {
			const struct pol_matcher *m = &r->m[j];

			if (m->kind != M_USER)
				continue;
			/* names that cannot exist were reported at load */
			for (size_t k = 0; k < m->n; k++)
				if (pol_name_fold(m->names[k], folded, sizeof folded) == 0)
					fn(arg, m->names[k], r->file, r->line,
					    m->cols != NULL ? m->cols[k] : 1);
		}
	}
}
