/* cert_names.c -- the host names a certificate answers to (subjectAltName
 * DNS entries, else the subject CN) and matching an SNI name against them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "certs/cert_priv.h"

#define HOST_MAX 253		/* RFC 1035 presentation form, no final dot */
#define NAMES_MAX 1024		/* public CAs issue at most a few hundred */

bool
cert_host_normalize(const char *in, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; in[i] != '\0'; i++) {
		unsigned char c = (unsigned char)in[i];

		if (i >= HOST_MAX || i + 1 >= outlen || c <= 0x20 || c >= 0x7f)
			return false;
		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
	}
	out[i] = '\0';
	return i > 0;
}

static bool
names_add(struct cert_names *ns, const unsigned char *s, int len)
{
	char raw[HOST_MAX + 1], norm[HOST_MAX + 1];
	char **v;

	/* Embedded NULs, empty or overlong entries: never matchable, skipped. */
	if (len <= 0 || len > HOST_MAX || memchr(s, '\0', (size_t)len) != NULL)
		return true;
	memcpy(raw, s, (size_t)len);
	raw[len] = '\0';
	if (!cert_host_normalize(raw, norm, sizeof norm))
		return true;
	if (ns->n >= NAMES_MAX)
		return false;
	v = realloc(ns->v, (ns->n + 1) * sizeof *v);
	if (v == NULL)
		return false;
	ns->v = v;
	if ((v[ns->n] = strdup(norm)) == NULL)
		return false;
	ns->n++;
	return true;
}

static bool
names_from_san(X509 *x, struct cert_names *ns)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
	    NULL);
	bool ok = true;
	int i;

	for (i = 0; ok && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_DNS)
			ok = names_add(ns, ASN1_STRING_get0_data(g->d.dNSName),
			    ASN1_STRING_length(g->d.dNSName));
	}
	GENERAL_NAMES_free(gens);
	return ok;
}

/* RFC 6125 6.4.4: the CN counts only when there is no DNS subjectAltName. */
static bool
names_from_cn(X509 *x, struct cert_names *ns)
{
	X509_NAME *subj = X509_get_subject_name(x);
	int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	int last = -1;
	ASN1_STRING *s;

	for (; i >= 0; i = X509_NAME_get_index_by_NID(subj, NID_commonName, i))
		last = i;
	if (last < 0)
		return true;
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, last));
	return names_add(ns, ASN1_STRING_get0_data(s), ASN1_STRING_length(s));
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
names_sort_unique(struct cert_names *ns)
{
	size_t i, o = 0;

	if (ns->n == 0)
		return;
	qsort(ns->v, ns->n, sizeof *ns->v, cmp_str);
	for (i = 1; i < ns->n; i++) {
		if (strcmp(ns->v[i], ns->v[o]) == 0)
			free(ns->v[i]);
		else
			ns->v[++o] = ns->v[i];
	}
	ns->n = o + 1;
}

bool
cert_names_get(X509 *x, const char *file, struct cert_names *out, char *err,
    size_t errlen)
{
	out->v = NULL;
	out->n = 0;
	if (!names_from_san(x, out) || (out->n == 0 && !names_from_cn(x, out))) {
		cert_names_clear(out);
		ERR_clear_error();
		snprintf(err, errlen, "tls_cert %s: more than %d host names or "
		    "out of memory: split the certificate", file, NAMES_MAX);
		return false;
	}
	ERR_clear_error();
	names_sort_unique(out);
	return true;
}

void
cert_names_clear(struct cert_names *ns)
{
	size_t i;

	for (i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
	ns->v = NULL;
	ns->n = 0;
}

bool
cert_names_equal(const struct cert_names *a, const struct cert_names *b)
{
	size_t i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return false;
	return true;
}

/* "*.example.com" stands for exactly one non-empty leftmost label; partial
 * wildcards ("w*.example.com") are not honoured. */
static bool
wildcard_match(const char *pat, const char *host)
{
	const char *dot;

	if (pat[0] != '*' || pat[1] != '.' || pat[2] == '\0')
		return false;
	dot = strchr(host, '.');
	return dot != NULL && dot != host && strcmp(dot + 1, pat + 2) == 0;
}

int
cert_names_match(const struct cert_names *ns, const char *host)
{
	bool wild = false;
	size_t i;

	for (i = 0; i < ns->n; i++) {
		if (strcmp(ns->v[i], host) == 0)
			return 2;
		if (wildcard_match(ns->v[i], host))
			wild = true;
	}
	return wild ? 1 : 0;
}
