/* test_certs.c -- unit tests for certs/: loading and validating pairs, SNI
 * selection, protocol and cipher policy, ALPN, tickets and rotation, and
 * upstream verification, all with in-memory handshakes over BIO pairs. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certs/cert_priv.h"
#include "certs/certs.h"

#define DAY (24L * 3600L)
#define PUMP_MAX 64		/* handshake round trips; a few suffice */

static char dir[64];
static char err[1024];

/* ---- certificate factory ------------------------------------------------ */

static EVP_PKEY *
key_ec(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	cr_assert_not_null(k);
	return k;
}

static EVP_PKEY *
key_rsa(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);

	cr_assert_not_null(k);
	return k;
}

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	cr_assert_not_null(ext, "extension %s", value);
	cr_assert_eq(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

struct spec {
	const char *cn;
	const char *san;	/* "DNS:a.test,IP:127.0.0.1" or NULL */
	long from, to;		/* validity, seconds relative to now */
	bool ca;
};

/* Signed by (issuer, ikey), or self-signed when issuer is NULL. */
static X509 *
make_cert(EVP_PKEY *key, const struct spec *sp, X509 *issuer, EVP_PKEY *ikey)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();

	cr_assert(x != NULL && name != NULL);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), sp->from);
	X509_gmtime_adj(X509_getm_notAfter(x), sp->to);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)sp->cn, -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : name);
	X509_NAME_free(name);
	X509_set_pubkey(x, key);
	add_ext(x, issuer != NULL ? issuer : x, NID_basic_constraints,
	    sp->ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	if (sp->ca)
		add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
	if (sp->san != NULL)
		add_ext(x, issuer != NULL ? issuer : x, NID_subject_alt_name,
		    sp->san);
	cr_assert_neq(X509_sign(x, issuer != NULL ? ikey : key, EVP_sha256()), 0);
	return x;
}

static const char *
path(const char *name)
{
	static char buf[8][128];
	static int n;
	char *p = buf[n++ % 8];

	snprintf(p, sizeof buf[0], "%s/%s", dir, name);
	return p;
}

static void
write_file(const char *name, const char *data)
{
	FILE *fp = fopen(path(name), "w");

	cr_assert_not_null(fp);
	fputs(data, fp);
	fclose(fp);
}

/* Writes NAME.pem (cert, then optional chain cert) and NAME.key. */
static void
write_pair(const char *name, X509 *x, X509 *chain, EVP_PKEY *key)
{
	char f[64];
	FILE *fp;

	snprintf(f, sizeof f, "%s.pem", name);
	fp = fopen(path(f), "w");
	cr_assert_not_null(fp);
	cr_assert_eq(PEM_write_X509(fp, x), 1);
	if (chain != NULL)
		cr_assert_eq(PEM_write_X509(fp, chain), 1);
	fclose(fp);
	snprintf(f, sizeof f, "%s.key", name);
	fp = fopen(path(f), "w");
	cr_assert_not_null(fp);
	cr_assert_eq(PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL),
	    1);
	fclose(fp);
}

/* A self-signed leaf for `san`, written as NAME.pem / NAME.key. */
static void
leaf(const char *name, EVP_PKEY *key, const char *cn, const char *san)
{
	struct spec sp = { cn, san, -DAY, 90 * DAY, false };
	X509 *x = make_cert(key, &sp, NULL, NULL);

	write_pair(name, x, NULL, key);
	X509_free(x);
	EVP_PKEY_free(key);
}

static struct cert_pair
pair(const char *name)
{
	static char c[16][128], k[16][128];
	static int n;
	struct cert_pair p;
	int i = n++ % 16;

	snprintf(c[i], sizeof c[i], "%s/%s.pem", dir, name);
	snprintf(k[i], sizeof k[i], "%s/%s.key", dir, name);
	p.cert_file = c[i];
	p.key_file = k[i];
	return p;
}

static void
setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/pbxgate-certs-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	err[0] = '\0';
}

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(p);
}

static void
teardown(void)
{
	/* Depth-first, not following links: only what the test made. */
	if (nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

TestSuite(certs, .init = setup, .fini = teardown, .timeout = 60);

/* ---- handshakes --------------------------------------------------------- */

static bool
step(SSL *ssl, bool *done)
{
	int r, e;

	if (*done)
		return true;
	r = SSL_do_handshake(ssl);
	if (r == 1) {
		*done = true;
		return true;
	}
	e = SSL_get_error(ssl, r);
	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Drives both ends until both finish (true) or one fails (false). The
 * client then reads once so that TLS 1.3 tickets sent after the handshake
 * reach its session. Both SSLs are freed by the caller. */
static bool
handshake(SSL *c, SSL *s)
{
	BIO *bc, *bs;
	bool cd = false, sd = false;
	unsigned char b;
	int i;

	cr_assert_eq(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
	SSL_set_bio(c, bc, bc);
	SSL_set_bio(s, bs, bs);
	for (i = 0; i < PUMP_MAX && !(cd && sd); i++) {
		if (!step(c, &cd) || !step(s, &sd)) {
			/* Let the peer read the alert, then report. */
			step(c, &cd);
			step(s, &sd);
			ERR_clear_error();
			return false;
		}
	}
	if (!(cd && sd))
		return false;
	cr_assert_leq(SSL_read(c, &b, 1), 0);
	ERR_clear_error();
	return true;
}

static SSL_CTX *
client_ctx(int minv, int maxv)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	cr_assert_not_null(ctx);
	SSL_CTX_set_security_level(ctx, 0);
	cr_assert_eq(SSL_CTX_set_cipher_list(ctx, "ALL:@SECLEVEL=0"), 1);
	SSL_CTX_set_min_proto_version(ctx, minv);
	SSL_CTX_set_max_proto_version(ctx, maxv);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
}

static SSL *
client(SSL_CTX *ctx, const char *sni)
{
	SSL *c = SSL_new(ctx);

	cr_assert_not_null(c);
	if (sni != NULL)
		cr_assert_eq(SSL_set_tlsext_host_name(c, sni), 1);
	SSL_set_connect_state(c);
	return c;
}

static const char *
peer_cn(SSL *c)
{
	static char cn[128];
	X509 *x = SSL_get0_peer_certificate(c);

	cr_assert_not_null(x);
	cr_assert_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	    NID_commonName, cn, sizeof cn), 0);
	return cn;
}

static struct cert_server *
server(const char *const names[], size_t n, struct cert_tickets *t)
{
	struct cert_pair p[8];
	struct cert_server *srv;
	size_t i;

	cr_assert_leq(n, 8);
	for (i = 0; i < n; i++)
		p[i] = pair(names[i]);
	srv = cert_server_new(p, n, t, err, sizeof err);
	cr_assert_not_null(srv, "cert_server_new: %s", err);
	return srv;
}

/* One handshake against srv; returns the peer's CN ("" on failure). */
static const char *
connect_cn(struct cert_server *srv, SSL_CTX *cctx, const char *sni)
{
	static char cn[128];
	SSL *c = client(cctx, sni), *s = cert_server_ssl(srv);

	cr_assert_not_null(s);
	cn[0] = '\0';
	if (handshake(c, s))
		snprintf(cn, sizeof cn, "%s", peer_cn(c));
	SSL_free(c);
	SSL_free(s);
	return cn;
}

/* ---- loading and validation --------------------------------------------- */

Test(certs, ecdsa_pair_loads)
{
	leaf("ec", key_ec(), "ec.test", "DNS:ec.test");
	cert_server_free(server((const char *[]){ "ec" }, 1, NULL));
}

Test(certs, rsa_pair_loads)
{
	leaf("rsa", key_rsa(), "rsa.test", "DNS:rsa.test");
	cert_server_free(server((const char *[]){ "rsa" }, 1, NULL));
}

Test(certs, chain_file_loads)
{
	struct spec ca = { "Test CA", NULL, -DAY, 365 * DAY, true };
	struct spec lf = { "chain.test", "DNS:chain.test", -DAY, 90 * DAY,
	    false };
	EVP_PKEY *cak = key_ec(), *k = key_ec();
	X509 *cax = make_cert(cak, &ca, NULL, NULL);
	X509 *x = make_cert(k, &lf, cax, cak);

	write_pair("chain", x, cax, k);
	cert_server_free(server((const char *[]){ "chain" }, 1, NULL));
	X509_free(x);
	X509_free(cax);
	EVP_PKEY_free(k);
	EVP_PKEY_free(cak);
}

/* leaf <- intermediate <- root; the pair file holds leaf + `chain`. */
static void
three_level(bool expired_intermediate, bool swap)
{
	struct spec root = { "Root", NULL, -DAY, 365 * DAY, true };
	struct spec mid = { "Mid", NULL, -30 * DAY,
	    expired_intermediate ? -DAY : 365 * DAY, true };
	struct spec lf = { "L", "DNS:l.test", -DAY, 90 * DAY, false };
	EVP_PKEY *rk = key_ec(), *mk = key_ec(), *k = key_ec();
	X509 *rx = make_cert(rk, &root, NULL, NULL);
	X509 *mx = make_cert(mk, &mid, rx, rk);
	X509 *x = make_cert(k, &lf, mx, mk);
	FILE *fp = fopen(path("l.pem"), "w");

	cr_assert_not_null(fp);
	PEM_write_X509(fp, x);
	PEM_write_X509(fp, swap ? rx : mx);
	PEM_write_X509(fp, swap ? mx : rx);
	fclose(fp);
	fp = fopen(path("l.key"), "w");
	cr_assert_not_null(fp);
	PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL);
	fclose(fp);
	X509_free(rx);
	X509_free(mx);
	X509_free(x);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(mk);
	EVP_PKEY_free(k);
}

Test(certs, chain_in_order_loads)
{
	three_level(false, false);
	cert_server_free(server((const char *[]){ "l" }, 1, NULL));
}

Test(certs, chain_out_of_order_is_error)
{
	struct cert_pair p = pair("l");
	char want[512];

	three_level(false, true);
	cr_assert_null(cert_server_new(&p, 1, NULL, err, sizeof err));
	snprintf(want, sizeof want, "tls_cert %s/l.pem: certificate 2 does "
	    "not issue the one before it: put the server certificate first, "
	    "then each issuer in order", dir);
	cr_assert_str_eq(err, want);
}

Test(certs, chain_expired_intermediate_is_error)
{
	struct cert_pair p = pair("l");

	three_level(true, false);
	cr_assert_null(cert_server_new(&p, 1, NULL, err, sizeof err));
	cr_assert_not_null(strstr(err, "chain certificate 2 expired on"), "%s",
	    err);
}

Test(certs, key_mismatch_is_exact_error)
{
	struct cert_pair p;
	char want[512];

	leaf("a", key_ec(), "a.test", "DNS:a.test");
	leaf("b", key_ec(), "b.test", "DNS:b.test");
	p.cert_file = path("a.pem");
	p.key_file = path("b.key");
	cr_assert_null(cert_server_new(&p, 1, NULL, err, sizeof err));
	snprintf(want, sizeof want, "tls_key %s/b.key does not match "
	    "certificate %s/a.pem: regenerate the pair or fix the path", dir,
	    dir);
	cr_assert_str_eq(err, want);
	cr_assert_eq(ERR_peek_error(), 0UL);
}

Test(certs, rsa_key_with_ecdsa_cert_is_mismatch)
{
	struct cert_pair p;

	leaf("a", key_ec(), "a.test", "DNS:a.test");
	leaf("r", key_rsa(), "a.test", "DNS:a.test");
	p.cert_file = path("a.pem");
	p.key_file = path("r.key");
	cr_assert_null(cert_server_new(&p, 1, NULL, err, sizeof err));
	cr_assert_not_null(strstr(err, "does not match certificate"), "%s",
	    err);
}

Test(certs, missing_cert_file_names_file)
{
	struct cert_pair p = pair("nothere");
	char want[512];

	cr_assert_null(cert_server_new(&p, 1, NULL, err, sizeof err));
	snprintf(want, sizeof want, "tls_cert %s/nothere.pem: cannot open: "
	    "No such file or directory: fix the path or the file's "
	    "permissions", dir);
	cr_assert_str_eq(err, want);
}

Test(certs, missing_key_file_names_file)
{
	struct cert_pair p;
	char want[512];

	leaf("a", key_ec(), "a.test", "DNS:a.test");
	p.cert_file = path("a.pem");
	p.key_file = path("none.key");
	cr_assert_null(cert_server_new(&p, 1, NULL, err, sizeof err));
	snprintf(want, sizeof want, "tls_key %s/none.key: cannot open: "
	    "No such file or directory: fix the path or the file's "
	    "permissions", dir);
	cr_assert_str_eq(err, want);
}

Test(certs, expired_cert_is_error)
{
	struct spec sp = { "old.test", "DNS:old.test", -30 * DAY, -DAY, false };
	EVP_PKEY *k = key_ec();
	X509 *x = make_cert(k, &sp, NULL, NULL);
	struct cert_pair p = pair("old");
	char want[256];

	write_pair("old", x, NULL, k);
	cr_assert_null(cert_server_new(&p, 1, NULL, err, sizeof err));
	snprintf(want, sizeof want, "tls_cert %s/old.pem expired on ", dir);
	cr_assert_eq(strncmp(err, want, strlen(want)), 0, "%s", err);
	cr_assert_not_null(strstr(err, "UTC: renew it and point tls_cert at "
	    "the new file"), "%s", err);
	X509_free(x);
	EVP_PKEY_free(k);
}

Test(certs, not_yet_valid_cert_is_error)
{
	struct spec sp = { "new.test", "DNS:new.test", DAY, 90 * DAY, false };
	EVP_PKEY *k = key_ec();
	X509 *x = make_cert(k, &sp, NULL, NULL);
	struct cert_pair p = pair("new");

	write_pair("new", x, NULL, k);
	cr_assert_null(cert_server_new(&p, 1, NULL, err, sizeof err));
	cr_assert_not_null(strstr(err, "is not valid before"), "%s", err);
	X509_free(x);
	EVP_PKEY_free(k);
}

Test(certs, garbage_pem_is_error)
{
	struct cert_pair p = pair("junk");
	char want[256];

	write_file("junk.pem", "this is not a certificate\n");
	write_file("junk.key", "nor a key\n");
	cr_assert_null(cert_server_new(&p, 1, NULL, err, sizeof err));
	snprintf(want, sizeof want, "tls_cert %s/junk.pem: no certificate (",
	    dir);
	cr_assert_eq(strncmp(err, want, strlen(want)), 0, "%s", err);
	cr_assert_not_null(strstr(err, "no start line"), "%s", err);
	cr_assert_eq(ERR_peek_error(), 0UL);
}

Test(certs, garbage_key_is_error)
{
	struct cert_pair p;
	char want[256];

	leaf("a", key_ec(), "a.test", "DNS:a.test");
	write_file("junk.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n"
	    "-----END PRIVATE KEY-----\n");
	p.cert_file = path("a.pem");
	p.key_file = path("junk.key");
	cr_assert_null(cert_server_new(&p, 1, NULL, err, sizeof err));
	snprintf(want, sizeof want, "tls_key %s/junk.key: no usable private "
	    "key (", dir);
	cr_assert_eq(strncmp(err, want, strlen(want)), 0, "%s", err);
}

/* An encrypted key must fail, never prompt for a passphrase. */
Test(certs, encrypted_key_is_error_without_prompt)
{
	EVP_PKEY *k = key_ec();
	struct spec sp = { "a.test", "DNS:a.test", -DAY, 90 * DAY, false };
	X509 *x = make_cert(k, &sp, NULL, NULL);
	struct cert_pair p = pair("enc");
	FILE *fp;

	write_pair("enc", x, NULL, k);
	fp = fopen(path("enc.key"), "w");
	cr_assert_not_null(fp);
	cr_assert_eq(PEM_write_PrivateKey(fp, k, EVP_aes_256_cbc(),
	    (const unsigned char *)"secret", 6, NULL, NULL), 1);
	fclose(fp);
	cr_assert_null(cert_server_new(&p, 1, NULL, err, sizeof err));
	cr_assert_not_null(strstr(err, "no usable private key"), "%s", err);
	X509_free(x);
	EVP_PKEY_free(k);
}

Test(certs, small_rsa_key_is_error)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	struct cert_pair p = pair("small");

	cr_assert_not_null(k);
	leaf("small", k, "small.test", "DNS:small.test");
	cr_assert_null(cert_server_new(&p, 1, NULL, err, sizeof err));
	cr_assert_not_null(strstr(err, "cannot load the certificate chain"),
	    "%s", err);
	cr_assert_not_null(strstr(err, "ee key too small"), "%s", err);
}

Test(certs, zero_pairs_is_error)
{
	cr_assert_null(cert_server_new(NULL, 0, NULL, err, sizeof err));
	cr_assert_str_eq(err, "TLS: 0 certificate pairs given: give 1 to 64 "
	    "tls_cert/tls_key pairs");
}

Test(certs, two_ecdsa_for_same_names_is_error)
{
	struct cert_pair p[2];

	leaf("a1", key_ec(), "a.test", "DNS:a.test");
	leaf("a2", key_ec(), "a.test", "DNS:A.test");
	p[0] = pair("a1");
	p[1] = pair("a2");
	cr_assert_null(cert_server_new(p, 2, NULL, err, sizeof err));
	cr_assert_not_null(strstr(err, "another ECDSA certificate was given "
	    "for the same names"), "%s", err);
}

Test(certs, nameless_second_cert_is_error)
{
	struct cert_pair p[2];

	leaf("a", key_ec(), "a.test", "DNS:a.test");
	leaf("ip", key_ec(), "", "IP:127.0.0.1");
	p[0] = pair("a");
	p[1] = pair("ip");
	cr_assert_null(cert_server_new(p, 2, NULL, err, sizeof err));
	cr_assert_not_null(strstr(err, "SNI could never choose it"), "%s", err);
}

struct days_case {
	long to;
	int want;
};

Test(certs, days_left)
{
	static const struct days_case cases[] = {
		{ 10 * DAY + 3600, 10 },
		{ 3600, 0 },
		{ -3600, -1 },
		{ -2 * DAY - 3600, -3 },
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct spec sp = { "d.test", "DNS:d.test", -30 * DAY,
		    cases[i].to, false };
		EVP_PKEY *k = key_ec();
		X509 *x = make_cert(k, &sp, NULL, NULL);

		write_pair("d", x, NULL, k);
		cr_expect_eq(cert_file_days_left(path("d.pem"), err,
		    sizeof err), cases[i].want, "case %zu", i);
		X509_free(x);
		EVP_PKEY_free(k);
	}
	cr_assert_eq(cert_file_days_left(path("none.pem"), err, sizeof err),
	    INT_MIN);
	cr_assert_not_null(strstr(err, "none.pem: cannot open"), "%s", err);
}

/* ---- SNI selection ------------------------------------------------------ */

struct sni_case {
	const char *sni;	/* NULL: client sends none */
	const char *cn;		/* expected certificate */
};

Test(certs, sni_selects_certificate)
{
	static const struct sni_case cases[] = {
		{ "a.test", "A" },
		{ "A.TEST", "A" },
		{ "b.test", "B" },
		{ "x.b.test", "W" },
		{ "X.B.Test", "W" },
		{ "y.x.b.test", "A" },	/* wildcard covers one label only */
		{ "exact.b.test", "E" },	/* exact beats wildcard */
		{ "unknown.test", "A" },
		{ NULL, "A" },
		{ "cn-only.test", "cn-only.test" },
	};
	struct cert_server *srv;
	SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION);
	size_t i;

	leaf("a", key_ec(), "A", "DNS:a.test");
	leaf("b", key_ec(), "B", "DNS:b.test");
	leaf("w", key_ec(), "W", "DNS:*.b.test");
	leaf("e", key_ec(), "E", "DNS:exact.b.test");
	leaf("cn", key_ec(), "cn-only.test", NULL);
	srv = server((const char *[]){ "a", "b", "w", "e", "cn" }, 5, NULL);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		cr_expect_str_eq(connect_cn(srv, cctx, cases[i].sni),
		    cases[i].cn, "SNI %s", cases[i].sni ? cases[i].sni : "-");
	cert_server_free(srv);
	SSL_CTX_free(cctx);
}

/* The routed SSL (sites): a route naming each site's server by the SNI,
 * "dflt" standing for a default site (no SNI, unknown names) or none. */
struct route_case {
	struct cert_server *a, *b;
	bool dflt;
	const char *seen;	/* the last name the route was asked */
	int calls;
};

static struct cert_server *
route_fn(void *arg, const char *host)
{
	struct route_case *r = arg;

	r->calls++;
	r->seen = host;
	if (host != NULL && strcmp(host, "a.test") == 0)
		return r->a;
	if (host != NULL && (strcmp(host, "b.test") == 0 ||
	    strcmp(host, "x.b.test") == 0))
		return r->b;
	return r->dflt ? r->a : NULL;
}

/* One handshake through the route; the peer's CN, "" on failure, and the
 * alert the server sent in *alert (0: none). */
static const char *
routed_cn(struct route_case *rc, const struct cert_route *rt, SSL_CTX *cctx,
    const char *sni)
{
	static char cn[128];
	SSL *c = client(cctx, sni), *s = cert_server_ssl_routed(rc->a, rt);

	cr_assert_not_null(s);
	cn[0] = '\0';
	if (handshake(c, s))
		snprintf(cn, sizeof cn, "%s", peer_cn(c));
	SSL_free(c);
	SSL_free(s);
	return cn;
}

Test(certs, routed_sni_selects_the_sites_server)
{
	static const struct sni_case cases[] = {
		{ "a.test", "A" },
		{ "A.Test", "A" },	/* lower case before the route */
		{ "a.test.", "" },	/* a final dot is kept: the route's call */
		{ "b.test", "B" },
		{ "x.b.test", "W" },	/* b's wildcard context */
		{ "unknown.test", "" },	/* no site: refused */
		{ NULL, "" },		/* no SNI, no default: refused */
	};
	struct route_case rc = { 0 };
	struct cert_route rt = { route_fn, &rc };
	SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION);
	size_t i;

	leaf("a", key_ec(), "A", "DNS:a.test");
	leaf("b", key_ec(), "B", "DNS:b.test");
	leaf("w", key_ec(), "W", "DNS:*.b.test");
	rc.a = server((const char *[]){ "a" }, 1, NULL);
	rc.b = server((const char *[]){ "b", "w" }, 2, NULL);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		cr_expect_str_eq(routed_cn(&rc, &rt, cctx, cases[i].sni),
		    cases[i].cn, "SNI %s", cases[i].sni ? cases[i].sni : "-");
	/* with a default site, unknown names and no SNI go to it */
	rc.dflt = true;
	rc.calls = 0;
	cr_expect_str_eq(routed_cn(&rc, &rt, cctx, "unknown.test"), "A");
	cr_expect_str_eq(routed_cn(&rc, &rt, cctx, NULL), "A");
	cr_expect_null(rc.seen, "no SNI reaches the route as NULL");
	cr_expect_eq(rc.calls, 2, "the route is asked once a handshake");
	cert_server_free(rc.a);
	cert_server_free(rc.b);
	SSL_CTX_free(cctx);
}

static int read_alert;	/* the last alert the client read */

static void
alert_cb(const SSL *ssl, int where, int ret)
{
	(void)ssl;
	if (where & SSL_CB_READ_ALERT)
		read_alert = ret & 0xff;
}

/* The alert a refused routed handshake sends: unrecognized_name (112),
 * for an unknown name and for no SNI at all. */
Test(certs, routed_unknown_name_alert)
{
	struct route_case rc = { 0 };
	struct cert_route rt = { route_fn, &rc };
	SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION);
	SSL *c, *s;

	leaf("a", key_ec(), "A", "DNS:a.test");
	rc.a = server((const char *[]){ "a" }, 1, NULL);
	for (int i = 0; i < 2; i++) {
		c = client(cctx, i == 0 ? "zz.test" : NULL);
		SSL_set_info_callback(c, alert_cb);
		read_alert = 0;
		s = cert_server_ssl_routed(rc.a, &rt);
		cr_assert_not_null(s);
		cr_assert_not(handshake(c, s));
		cr_expect_eq(read_alert, SSL_AD_UNRECOGNIZED_NAME, "%s: alert %d",
		    i == 0 ? "zz.test" : "no SNI", read_alert);
		SSL_free(c);
		SSL_free(s);
	}
	cert_server_free(rc.a);
	SSL_CTX_free(cctx);
}

/* One routed handshake to `sni`, offering `resume`; the client's session
 * after it (NULL if none) and whether it resumed. */
static SSL_SESSION *
routed_session(struct route_case *rc, const struct cert_route *rt,
    SSL_CTX *cctx, const char *sni, SSL_SESSION *resume, bool *reused)
{
	SSL *c = client(cctx, sni), *s = cert_server_ssl_routed(rc->a, rt);
	SSL_SESSION *sess;

	cr_assert_not_null(s);
	if (resume != NULL)
		cr_assert_eq(SSL_set_session(c, resume), 1);
	cr_assert(handshake(c, s), "%s", sni);
	*reused = SSL_session_reused(c) == 1;
	sess = SSL_get1_session(c);
	SSL_shutdown(c);
	SSL_free(c);
	SSL_free(s);
	return sess;
}

/* Sites with their own ticket keys: OpenSSL opens the ticket before the
 * SNI callback (and TLS 1.2 before parsing the name), so this holds only
 * because the site is routed at the ClientHello. A's ticket resumes on A,
 * on B it is a full handshake that succeeds with B's certificate. */
Test(certs, routed_tickets_per_site)
{
	struct cert_tickets *t = cert_tickets_new(err, sizeof err), *ta, *tb;
	struct route_case rc = { 0 };
	struct cert_route rt = { route_fn, &rc };

	cr_assert_not_null(t, "%s", err);
	ta = cert_tickets_site(t, "a", err, sizeof err);
	tb = cert_tickets_site(t, "b", err, sizeof err);
	cr_assert(ta != NULL && tb != NULL, "%s", err);
	leaf("a", key_ec(), "A", "DNS:a.test");
	leaf("b", key_ec(), "B", "DNS:b.test");
	rc.a = server((const char *[]){ "a" }, 1, ta);
	rc.b = server((const char *[]){ "b" }, 1, tb);
	for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
		SSL_CTX *cctx = client_ctx(v, v);
		SSL_SESSION *s1, *s2;
		bool reused;

		s1 = routed_session(&rc, &rt, cctx, "a.test", NULL, &reused);
		cr_assert_not_null(s1);
		s2 = routed_session(&rc, &rt, cctx, "a.test", s1, &reused);
		cr_expect(reused, "version %x: a's ticket not resumed on a", v);
		SSL_SESSION_free(s2);
		s2 = routed_session(&rc, &rt, cctx, "b.test", s1, &reused);
		cr_expect_not(reused, "version %x: a's ticket resumed on b", v);
		cr_expect_str_eq(SSL_SESSION_get0_hostname(s2), "b.test");
		SSL_SESSION_free(s2);
		SSL_SESSION_free(s1);
		SSL_CTX_free(cctx);
	}
	cert_server_free(rc.a);
	cert_server_free(rc.b);
	cert_tickets_free(ta);
	cert_tickets_free(tb);
	cert_tickets_free(t);
}

/* The CN does not count once there are DNS subjectAltNames (RFC 6125). */
Test(certs, cn_ignored_when_san_present)
{
	struct cert_server *srv;
	SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION);

	leaf("a", key_ec(), "A", "DNS:a.test");
	leaf("b", key_ec(), "b-cn.test", "DNS:b.test");
	srv = server((const char *[]){ "a", "b" }, 2, NULL);
	cr_expect_str_eq(connect_cn(srv, cctx, "b-cn.test"), "A");
	cr_expect_str_eq(connect_cn(srv, cctx, "b.test"), "b-cn.test");
	cert_server_free(srv);
	SSL_CTX_free(cctx);
}

struct type_case {
	int version;
	const char *ciphers;	/* TLS 1.2 */
	const char *sigalgs;	/* TLS 1.3 */
	const char *cn;
};

Test(certs, ecdsa_and_rsa_for_same_names)
{
	static const struct type_case cases[] = {
		{ TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", NULL, "EC" },
		{ TLS1_2_VERSION, "ECDHE-RSA-AES128-GCM-SHA256", NULL, "RSA" },
		{ TLS1_3_VERSION, NULL, "ecdsa_secp256r1_sha256", "EC" },
		{ TLS1_3_VERSION, NULL, "rsa_pss_rsae_sha256", "RSA" },
	};
	struct cert_server *srv;
	size_t i;

	leaf("ec", key_ec(), "EC", "DNS:both.test,DNS:www.both.test");
	leaf("rsa", key_rsa(), "RSA", "DNS:www.both.test,DNS:BOTH.test");
	srv = server((const char *[]){ "ec", "rsa" }, 2, NULL);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		SSL_CTX *cctx = client_ctx(cases[i].version, cases[i].version);

		if (cases[i].ciphers != NULL)
			cr_assert_eq(SSL_CTX_set_cipher_list(cctx,
			    cases[i].ciphers), 1);
		if (cases[i].sigalgs != NULL)
			cr_assert_eq(SSL_CTX_set1_sigalgs_list(cctx,
			    cases[i].sigalgs), 1);
		cr_expect_str_eq(connect_cn(srv, cctx, "both.test"),
		    cases[i].cn, "case %zu", i);
		SSL_CTX_free(cctx);
	}
	cert_server_free(srv);
}

/* The SSL keeps the server alive: a reload may free it mid-handshake. */
Test(certs, server_freed_before_handshake)
{
	struct cert_server *srv;
	SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION);
	SSL *c, *s;

	leaf("a", key_ec(), "A", "DNS:a.test");
	leaf("b", key_ec(), "B", "DNS:b.test");
	srv = server((const char *[]){ "a", "b" }, 2, NULL);
	s = cert_server_ssl(srv);
	cert_server_free(srv);
	c = client(cctx, "b.test");
	cr_assert(handshake(c, s));
	cr_expect_str_eq(peer_cn(c), "B");
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
}

/* ---- protocol versions, ciphers, groups --------------------------------- */

static bool
connect_with(struct cert_server *srv, SSL_CTX *cctx, SSL **cout)
{
	SSL *c = client(cctx, "a.test"), *s = cert_server_ssl(srv);
	bool ok = handshake(c, s);

	SSL_free(s);
	if (cout != NULL)
		*cout = c;
	else
		SSL_free(c);
	return ok;
}

struct version_case {
	int minv, maxv;
	bool ok;
};

Test(certs, versions_12_and_13_only)
{
	static const struct version_case cases[] = {
		{ TLS1_VERSION, TLS1_VERSION, false },
		{ TLS1_1_VERSION, TLS1_1_VERSION, false },
		{ TLS1_VERSION, TLS1_1_VERSION, false },
		{ TLS1_2_VERSION, TLS1_2_VERSION, true },
		{ TLS1_3_VERSION, TLS1_3_VERSION, true },
	};
	struct cert_server *srv;
	size_t i;

	leaf("a", key_ec(), "A", "DNS:a.test");
	srv = server((const char *[]){ "a" }, 1, NULL);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		SSL_CTX *cctx = client_ctx(cases[i].minv, cases[i].maxv);

		cr_expect_eq(connect_with(srv, cctx, NULL), cases[i].ok,
		    "case %zu", i);
		SSL_CTX_free(cctx);
	}
	cert_server_free(srv);
}

static bool
intermediate(const char *name)
{
	static const char *const list[] = {
		"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
		"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
		"ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
		"DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384",
		"DHE-RSA-CHACHA20-POLY1305",
	};
	size_t i;

	for (i = 0; i < sizeof list / sizeof list[0]; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

Test(certs, tls12_default_client_gets_intermediate_cipher)
{
	const char *keys[] = { "ec", "rsa" };
	size_t i;

	leaf("ec", key_ec(), "A", "DNS:a.test");
	leaf("rsa", key_rsa(), "A", "DNS:a.test");
	for (i = 0; i < 2; i++) {
		struct cert_server *srv = server(&keys[i], 1, NULL);
		SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
		SSL *c;

		cr_assert(connect_with(srv, cctx, &c));
		cr_expect(intermediate(SSL_get_cipher_name(c)), "%s: %s",
		    keys[i], SSL_get_cipher_name(c));
		cr_expect_eq(SSL_get_negotiated_group(c), NID_X25519);
		SSL_free(c);
		SSL_CTX_free(cctx);
		cert_server_free(srv);
	}
}

struct cipher_case {
	const char *key;	/* "ec" or "rsa" */
	const char *ciphers;
	bool ok;
};

Test(certs, tls12_cipher_policy)
{
	static const struct cipher_case cases[] = {
		{ "ec", "ECDHE-ECDSA-AES256-GCM-SHA384", true },
		{ "ec", "ECDHE-ECDSA-CHACHA20-POLY1305", true },
		{ "rsa", "ECDHE-RSA-AES256-GCM-SHA384", true },
		{ "rsa", "DHE-RSA-AES128-GCM-SHA256", true },
		{ "rsa", "DHE-RSA-CHACHA20-POLY1305", true },
		{ "ec", "ECDHE-ECDSA-AES128-SHA", false },	/* CBC */
		{ "rsa", "ECDHE-RSA-AES128-SHA256", false },	/* CBC */
		{ "rsa", "AES128-GCM-SHA256", false },	/* no forward secrecy */
		{ "rsa", "DHE-RSA-AES128-SHA", false },
		{ "rsa", "AES256-SHA256", false },
		{ "rsa", "DHE-RSA-AES256-SHA256", false },
		{ "ec", "ECDHE-ECDSA-NULL-SHA", false },
	};
	size_t i;

	leaf("ec", key_ec(), "A", "DNS:a.test");
	leaf("rsa", key_rsa(), "A", "DNS:a.test");
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cert_server *srv = server(&cases[i].key, 1, NULL);
		SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);

		cr_assert_eq(SSL_CTX_set_cipher_list(cctx,
		    cases[i].ciphers), 1, "%s", cases[i].ciphers);
		cr_expect_eq(connect_with(srv, cctx, NULL), cases[i].ok, "%s",
		    cases[i].ciphers);
		SSL_CTX_free(cctx);
		cert_server_free(srv);
	}
}

Test(certs, dhe_uses_ffdhe2048)
{
	struct cert_server *srv;
	SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
	EVP_PKEY *tmp = NULL;
	SSL *c;

	leaf("rsa", key_rsa(), "A", "DNS:a.test");
	srv = server((const char *[]){ "rsa" }, 1, NULL);
	cr_assert_eq(SSL_CTX_set_cipher_list(cctx, "DHE-RSA-AES256-GCM-SHA384"),
	    1);
	cr_assert(connect_with(srv, cctx, &c));
	cr_assert_eq(SSL_get_peer_tmp_key(c, &tmp), 1);
	cr_expect_eq(EVP_PKEY_get_bits(tmp), 2048);
	EVP_PKEY_free(tmp);
	SSL_free(c);
	SSL_CTX_free(cctx);
	cert_server_free(srv);
}

struct group_case {
	const char *groups;
	int nid;		/* expected group, 0 = handshake fails */
};

Test(certs, tls13_groups)
{
	static const struct group_case cases[] = {
		{ "X25519:P-256", NID_X25519 },
		{ "P-256", NID_X9_62_prime256v1 },
		{ "P-384", NID_secp384r1 },
		{ "P-521", 0 },
		{ "X448", 0 },
	};
	struct cert_server *srv;
	size_t i;

	leaf("a", key_ec(), "A", "DNS:a.test");
	srv = server((const char *[]){ "a" }, 1, NULL);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		SSL_CTX *cctx = client_ctx(TLS1_3_VERSION, TLS1_3_VERSION);
		SSL *c;
		bool ok;

		cr_assert_eq(SSL_CTX_set1_groups_list(cctx, cases[i].groups), 1);
		ok = connect_with(srv, cctx, &c);
		cr_expect_eq(ok, cases[i].nid != 0, "%s", cases[i].groups);
		if (ok)
			cr_expect_eq(SSL_get_negotiated_group(c), cases[i].nid,
			    "%s", cases[i].groups);
		SSL_free(c);
		SSL_CTX_free(cctx);
	}
	cert_server_free(srv);
}

Test(certs, tls12_renegotiation_refused)
{
	struct cert_server *srv;
	SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
	SSL *c, *s;
	bool cd = false, sd = false;
	int i;

	leaf("a", key_ec(), "A", "DNS:a.test");
	srv = server((const char *[]){ "a" }, 1, NULL);
	c = client(cctx, "a.test");
	s = cert_server_ssl(srv);
	cr_assert(handshake(c, s));
	cr_assert_eq(SSL_renegotiate(c), 1);
	for (i = 0; i < PUMP_MAX && !(cd && sd); i++) {
		if (!step(c, &cd) || !step(s, &sd))
			break;
	}
	cr_expect_eq(SSL_get_secure_renegotiation_support(c), 1);
	cr_expect(!(cd && sd), "renegotiation completed");
	ERR_clear_error();
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
	cert_server_free(srv);
}

/* ---- ALPN --------------------------------------------------------------- */

struct alpn_case {
	bool smtp;
	const char *offer;	/* wire format; NULL = no ALPN */
	size_t len;
	bool ok;
	const char *selected;	/* NULL = none */
};

Test(certs, alpn)
{
	static const struct alpn_case cases[] = {
		{ false, "\x08http/1.1", 9, true, "http/1.1" },
		{ false, "\x02h2\x08http/1.1", 12, true, "http/1.1" },
		{ false, NULL, 0, true, NULL },
		{ false, "\x02h2", 3, false, NULL },
		{ false, "\x08http/1.0", 9, false, NULL },
		{ false, "\x04smtp", 5, false, NULL },
		{ true, NULL, 0, true, NULL },
		{ true, "\x04smtp", 5, true, "smtp" },
		{ true, "\x08http/1.1", 9, false, NULL },
	};
	struct cert_server *srv;
	size_t i;

	leaf("a", key_ec(), "A", "DNS:a.test");
	srv = server((const char *[]){ "a" }, 1, NULL);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, TLS1_3_VERSION);
		SSL *c = client(cctx, "a.test");
		SSL *s = cases[i].smtp ? cert_server_ssl_smtp(srv) :
		    cert_server_ssl(srv);
		const unsigned char *sel = NULL;
		unsigned int slen = 0;
		bool ok;

		if (cases[i].offer != NULL)
			cr_assert_eq(SSL_set_alpn_protos(c, (const unsigned
			    char *)cases[i].offer, (unsigned)cases[i].len), 0);
		ok = handshake(c, s);
		cr_expect_eq(ok, cases[i].ok, "case %zu", i);
		SSL_get0_alpn_selected(c, &sel, &slen);
		if (ok && cases[i].selected != NULL)
			cr_expect(slen == strlen(cases[i].selected) &&
			    memcmp(sel, cases[i].selected, slen) == 0,
			    "case %zu", i);
		else if (ok)
			cr_expect_eq(slen, 0u, "case %zu", i);
		SSL_free(c);
		SSL_free(s);
		SSL_CTX_free(cctx);
	}
	cert_server_free(srv);
}

/* ---- session tickets ---------------------------------------------------- */

/* Returns the client's session after a handshake (NULL if none). */
static SSL_SESSION *
session_from(struct cert_server *srv, SSL_CTX *cctx, SSL_SESSION *resume,
    bool *reused)
{
	SSL *c = client(cctx, "a.test"), *s = cert_server_ssl(srv);
	SSL_SESSION *sess;

	if (resume != NULL)
		cr_assert_eq(SSL_set_session(c, resume), 1);
	cr_assert(handshake(c, s));
	*reused = SSL_session_reused(c) == 1;
	sess = SSL_get1_session(c);
	if (sess != NULL && !SSL_SESSION_is_resumable(sess)) {
		SSL_SESSION_free(sess);
		sess = NULL;
	}
	/* A clean close: OpenSSL voids sessions of connections freed without
	 * close_notify. */
	SSL_shutdown(c);
	SSL_free(c);
	SSL_free(s);
	return sess;
}

struct rot_case {
	int version;
	int rotations;
	bool reused;
};

Test(certs, ticket_resumption_and_rotation)
{
	static const struct rot_case cases[] = {
		{ TLS1_3_VERSION, 0, true },
		{ TLS1_3_VERSION, 1, true },
		{ TLS1_3_VERSION, 2, false },
		{ TLS1_2_VERSION, 0, true },
		{ TLS1_2_VERSION, 1, true },
		{ TLS1_2_VERSION, 2, false },
	};
	size_t i;

	leaf("a", key_ec(), "A", "DNS:a.test");
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cert_tickets *t = cert_tickets_new(err, sizeof err);
		struct cert_server *srv;
		SSL_CTX *cctx = client_ctx(cases[i].version, cases[i].version);
		SSL_SESSION *s1, *s2;
		bool reused;
		int r;

		cr_assert_not_null(t, "%s", err);
		srv = server((const char *[]){ "a" }, 1, t);
		s1 = session_from(srv, cctx, NULL, &reused);
		cr_assert_not_null(s1, "case %zu: no ticket", i);
		cr_expect(!reused);
		for (r = 0; r < cases[i].rotations; r++)
			cert_tickets_rotate(t);
		s2 = session_from(srv, cctx, s1, &reused);
		cr_expect_eq(reused, cases[i].reused, "case %zu", i);
		SSL_SESSION_free(s1);
		SSL_SESSION_free(s2);
		SSL_CTX_free(cctx);
		cert_server_free(srv);
		cert_tickets_free(t);
	}
}

/* A ticket accepted under the previous key is renewed under the current
 * one, so the client survives the next rotation too. */
Test(certs, ticket_renewed_after_rotation)
{
	struct cert_tickets *t = cert_tickets_new(err, sizeof err);
	struct cert_server *srv;
	SSL_CTX *cctx = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
	SSL_SESSION *s1, *s2, *s3;
	bool reused;

	cr_assert_not_null(t);
	leaf("a", key_ec(), "A", "DNS:a.test");
	srv = server((const char *[]){ "a" }, 1, t);
	s1 = session_from(srv, cctx, NULL, &reused);
	cert_tickets_rotate(t);
	s2 = session_from(srv, cctx, s1, &reused);
	cr_assert(reused);
	cert_tickets_rotate(t);
	s3 = session_from(srv, cctx, s2, &reused);
	cr_expect(reused, "renewed ticket not accepted after next rotation");
	SSL_SESSION_free(s1);
	SSL_SESSION_free(s2);
	SSL_SESSION_free(s3);
	SSL_CTX_free(cctx);
	cert_server_free(srv);
	cert_tickets_free(t);
}

Test(certs, no_tickets_no_resumption)
{
	leaf("a", key_ec(), "A", "DNS:a.test");
	for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
		struct cert_server *srv = server((const char *[]){ "a" }, 1,
		    NULL);
		SSL_CTX *cctx = client_ctx(v, v);
		SSL_SESSION *s1;
		bool reused;

		s1 = session_from(srv, cctx, NULL, &reused);
		if (s1 != NULL) {
			SSL_SESSION *s2 = session_from(srv, cctx, s1, &reused);

			cr_expect(!reused, "version %x resumed", v);
			SSL_SESSION_free(s2);
		}
		SSL_SESSION_free(s1);
		SSL_CTX_free(cctx);
		cert_server_free(srv);
	}
}

/* Resumption also works on a certificate chosen by SNI (after the
 * SSL_CTX switch), in both versions. */
Test(certs, tickets_with_sni_switch)
{
	struct cert_tickets *t = cert_tickets_new(err, sizeof err);
	struct cert_server *srv;

	cr_assert_not_null(t);
	leaf("a", key_ec(), "A", "DNS:a.test");
	leaf("b", key_ec(), "B", "DNS:b.test");
	srv = server((const char *[]){ "a", "b" }, 2, t);
	for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
		SSL_CTX *cctx = client_ctx(v, v);
		SSL_SESSION *sess = NULL;
		int round;

		for (round = 0; round < 2; round++) {
			SSL *c = client(cctx, "b.test"), *s = cert_server_ssl(srv);

			if (sess != NULL)
				SSL_set_session(c, sess);
			cr_assert(handshake(c, s));
			cr_expect_str_eq(peer_cn(c), "B");
			cr_expect_eq(SSL_session_reused(c), round > 0,
			    "version %x round %d", v, round);
			SSL_SESSION_free(sess);
			sess = SSL_get1_session(c);
			SSL_shutdown(c);
			SSL_free(c);
			SSL_free(s);
		}
		SSL_SESSION_free(sess);
		SSL_CTX_free(cctx);
	}
	cert_server_free(srv);
	cert_tickets_free(t);
}

/* Tickets are shared across reloads: a new server resumes old sessions. */
Test(certs, tickets_survive_reload)
{
	struct cert_tickets *t = cert_tickets_new(err, sizeof err);
	struct cert_server *old, *srv;
	SSL_CTX *cctx = client_ctx(TLS1_3_VERSION, TLS1_3_VERSION);
	SSL_SESSION *s1, *s2;
	bool reused;

	cr_assert_not_null(t);
	leaf("a", key_ec(), "A", "DNS:a.test");
	old = server((const char *[]){ "a" }, 1, t);
	s1 = session_from(old, cctx, NULL, &reused);
	cert_server_free(old);
	srv = server((const char *[]){ "a" }, 1, t);
	cert_tickets_free(t);	/* the server keeps its own reference */
	s2 = session_from(srv, cctx, s1, &reused);
	cr_expect(reused);
	SSL_SESSION_free(s1);
	SSL_SESSION_free(s2);
	SSL_CTX_free(cctx);
	cert_server_free(srv);
}

struct hs_thread {
	struct cert_server *srv;
	SSL_SESSION *sess;
	int ok;
};

#define THREAD_HANDSHAKES 40

static void *
hs_worker(void *arg)
{
	struct hs_thread *h = arg;
	SSL_CTX *cctx = client_ctx(TLS1_3_VERSION, TLS1_3_VERSION);
	int i;

	for (i = 0; i < THREAD_HANDSHAKES; i++) {
		SSL *c = SSL_new(cctx), *s = cert_server_ssl(h->srv);

		SSL_set_connect_state(c);
		SSL_set_session(c, h->sess);
		if (handshake(c, s))
			h->ok++;
		SSL_shutdown(c);
		SSL_free(c);
		SSL_free(s);
	}
	SSL_CTX_free(cctx);
	return NULL;
}

/* Worker threads resume while another thread rotates the keys. */
Test(certs, rotation_is_thread_safe)
{
	struct cert_tickets *t = cert_tickets_new(err, sizeof err);
	struct hs_thread h[2];
	pthread_t th[2];
	SSL_CTX *cctx = client_ctx(TLS1_3_VERSION, TLS1_3_VERSION);
	struct cert_server *srv;
	bool reused;
	int i;

	cr_assert_not_null(t);
	leaf("a", key_ec(), "A", "DNS:a.test");
	srv = server((const char *[]){ "a" }, 1, t);
	for (i = 0; i < 2; i++) {
		h[i].srv = srv;
		h[i].ok = 0;
		h[i].sess = session_from(srv, cctx, NULL, &reused);
		cr_assert_not_null(h[i].sess);
		cr_assert_eq(pthread_create(&th[i], NULL, hs_worker, &h[i]), 0);
	}
	for (i = 0; i < 200; i++)
		cert_tickets_rotate(t);
	for (i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(h[i].ok, THREAD_HANDSHAKES);
		SSL_SESSION_free(h[i].sess);
	}
	SSL_CTX_free(cctx);
	cert_server_free(srv);
	cert_tickets_free(t);
}

/* ---- upstream client ---------------------------------------------------- */

/* CA "ca" signs "up" for up.test and 127.0.0.1; "other" is an unrelated CA. */
static void
upstream_pki(void)
{
	struct spec ca = { "Test CA", NULL, -DAY, 365 * DAY, true };
	struct spec oca = { "Other CA", NULL, -DAY, 365 * DAY, true };
	struct spec up = { "up", "DNS:up.test,DNS:*.wild.test,IP:127.0.0.1,"
	    "IP:::1", -DAY, 90 * DAY, false };
	EVP_PKEY *cak = key_ec(), *ok = key_ec(), *k = key_ec();
	X509 *cax = make_cert(cak, &ca, NULL, NULL);
	X509 *ox = make_cert(ok, &oca, NULL, NULL);
	X509 *x = make_cert(k, &up, cax, cak);

	write_pair("ca", cax, NULL, cak);
	write_pair("other", ox, NULL, ok);
	write_pair("up", x, NULL, k);
	X509_free(cax);
	X509_free(ox);
	X509_free(x);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(ok);
	EVP_PKEY_free(k);
}

struct verify_case {
	const char *ca;		/* file name in dir, NULL = system store */
	bool verify;
	const char *host;
	bool ok;
};

Test(certs, client_verifies_upstream)
{
	static const struct verify_case cases[] = {
		{ "ca.pem", true, "up.test", true },
		{ "ca.pem", true, "UP.TEST", true },
		{ "ca.pem", true, "x.wild.test", true },
		{ "ca.pem", true, "y.x.wild.test", false },
		{ "ca.pem", true, "127.0.0.1", true },
		{ "ca.pem", true, "[::1]", true },
		{ "ca.pem", true, "::1", true },
		{ "ca.pem", true, "127.0.0.2", false },
		{ "ca.pem", true, "other.test", false },
		{ "other.pem", true, "up.test", false },
		{ NULL, true, "up.test", false },
		{ "up.pem", true, "up.test", true },	/* pinned leaf */
		{ "up.pem", true, "other.test", false },
		{ "self.pem", true, "up.test", false },
		{ "other.pem", false, "up.test", true },
		{ NULL, false, "other.test", true },
	};
	struct cert_server *srv;
	size_t i;

	upstream_pki();
	leaf("self", key_ec(), "up.test", "DNS:up.test");
	srv = server((const char *[]){ "up" }, 1, NULL);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cert_client *cc = cert_client_new(cases[i].ca ?
		    path(cases[i].ca) : NULL, cases[i].verify, err, sizeof err);
		SSL *c, *s;

		cr_assert_not_null(cc, "case %zu: %s", i, err);
		c = cert_client_ssl(cc, cases[i].host);
		cr_assert_not_null(c, "case %zu", i);
		s = cert_server_ssl(srv);
		cr_expect_eq(handshake(c, s), cases[i].ok, "case %zu: %s", i,
		    cases[i].host);
		SSL_free(c);
		SSL_free(s);
		cert_client_free(cc);
	}
	cert_server_free(srv);
}

struct sni_sent_case {
	const char *host;
	const char *sni;	/* NULL: none sent */
};

/* The PBX's own self-signed certificate (what certs/mkdemo makes) works as
 * upstream_ca. */
Test(certs, client_accepts_self_signed_pinned)
{
	struct cert_server *srv;
	struct cert_client *cc;
	SSL *c, *s;

	leaf("self", key_ec(), "localhost", "DNS:localhost,IP:127.0.0.1");
	srv = server((const char *[]){ "self" }, 1, NULL);
	cc = cert_client_new(path("self.pem"), true, err, sizeof err);
	cr_assert_not_null(cc, "%s", err);
	c = cert_client_ssl(cc, "127.0.0.1");
	s = cert_server_ssl(srv);
	cr_expect(handshake(c, s));
	SSL_free(c);
	SSL_free(s);
	cert_client_free(cc);
	cert_server_free(srv);
}

Test(certs, client_sni_not_for_ip_literals)
{
	static const struct sni_sent_case cases[] = {
		{ "up.test", "up.test" },
		{ "Up.Test", "up.test" },
		{ "127.0.0.1", NULL },
		{ "[::1]", NULL },
	};
	struct cert_server *srv;
	struct cert_client *cc;
	size_t i;

	upstream_pki();
	srv = server((const char *[]){ "up" }, 1, NULL);
	cc = cert_client_new(path("ca.pem"), true, err, sizeof err);
	cr_assert_not_null(cc, "%s", err);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		SSL *c = cert_client_ssl(cc, cases[i].host);
		SSL *s = cert_server_ssl(srv);
		const char *got;

		cr_assert(handshake(c, s), "case %zu", i);
		got = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
		if (cases[i].sni == NULL)
			cr_expect_null(got, "case %zu: %s", i, got);
		else
			cr_expect_str_eq(got, cases[i].sni);
		SSL_free(c);
		SSL_free(s);
	}
	cert_client_free(cc);
	cert_server_free(srv);
}

Test(certs, client_bad_hosts_rejected)
{
	static const char *const hosts[] = {
		"", "[up.test]", "[::1", "a b", "host\x01", "up.test:443",
		"fe80::1%eth0", "[127.0.0.1]", NULL,
	};
	struct cert_client *cc = cert_client_new(NULL, false, err, sizeof err);
	size_t i;

	cr_assert_not_null(cc, "%s", err);
	for (i = 0; i < sizeof hosts / sizeof hosts[0]; i++)
		cr_expect_null(cert_client_ssl(cc, hosts[i]), "case %zu", i);
	cert_client_free(cc);
}

Test(certs, client_missing_ca_file_is_error)
{
	char want[512];

	cr_assert_null(cert_client_new(path("none.pem"), true, err,
	    sizeof err));
	snprintf(want, sizeof want, "upstream_ca %s/none.pem: cannot open: "
	    "No such file or directory: fix the path or the file's "
	    "permissions", dir);
	cr_assert_str_eq(err, want);
}

Test(certs, client_garbage_ca_file_is_error)
{
	write_file("junk.pem", "junk\n");
	cr_assert_null(cert_client_new(path("junk.pem"), true, err,
	    sizeof err));
	cr_assert_not_null(strstr(err, "no usable CA certificate"), "%s", err);
}

Test(certs, client_resumes_upstream_sessions)
{
	struct cert_tickets *t = cert_tickets_new(err, sizeof err);
	struct cert_server *srv;
	struct cert_client *cc;
	int i;

	cr_assert_not_null(t);
	upstream_pki();
	srv = server((const char *[]){ "up" }, 1, t);
	cc = cert_client_new(path("ca.pem"), true, err, sizeof err);
	cr_assert_not_null(cc, "%s", err);
	for (i = 0; i < 3; i++) {
		SSL *c = cert_client_ssl(cc, "up.test");
		SSL *s = cert_server_ssl(srv);

		cr_assert(handshake(c, s));
		cr_expect_eq(SSL_session_reused(c), i > 0, "round %d", i);
		SSL_free(c);
		SSL_free(s);
	}
	/* A session for up.test is never offered to another name. */
	{
		SSL *c = cert_client_ssl(cc, "127.0.0.1");
		SSL *s = cert_server_ssl(srv);

		cr_assert(handshake(c, s));
		cr_expect_eq(SSL_session_reused(c), 0);
		SSL_free(c);
		SSL_free(s);
	}
	cert_client_free(cc);
	cert_server_free(srv);
	cert_tickets_free(t);
}

Test(certs, client_offers_http11_alpn)
{
	struct cert_server *srv;
	struct cert_client *cc;
	const unsigned char *sel;
	unsigned int len;
	SSL *c, *s;

	upstream_pki();
	srv = server((const char *[]){ "up" }, 1, NULL);
	cc = cert_client_new(path("ca.pem"), true, err, sizeof err);
	cr_assert_not_null(cc, "%s", err);
	c = cert_client_ssl(cc, "up.test");
	s = cert_server_ssl(srv);
	cr_assert(handshake(c, s));
	SSL_get0_alpn_selected(c, &sel, &len);
	cr_expect(len == 8 && memcmp(sel, "http/1.1", 8) == 0);
	cr_expect_geq(SSL_version(c), TLS1_2_VERSION);
	SSL_free(c);
	SSL_free(s);
	cert_client_free(cc);
	cert_server_free(srv);
}

/* ---- files that are not regular files ----------------------------------
 * The config checks each path when it is parsed, but certs reads the files
 * again when it builds the contexts (at start and on every reload): a path
 * swapped for a FIFO in between used to block OpenSSL's fopen forever. Each
 * kind is refused by certs itself, before any read. */

static void
make_fifo(const char *name)
{
	cr_assert_eq(mkfifo(path(name), 0600), 0);
}

static void
expect_err(const char *kw, const char *file, const char *why)
{
	char want[512];

	snprintf(want, sizeof want, "%s %s: %s: name a regular PEM file", kw,
	    file, why);
	cr_assert_str_eq(err, want);
}

Test(certs, cert_file_fifo_refused)
{
	struct cert_pair p = pair("f");

	leaf("f", key_ec(), "a.test", "DNS:a.test");
	cr_assert_eq(unlink(p.cert_file), 0);
	make_fifo("f.pem");
	cr_assert_null(cert_server_new(&p, 1, NULL, err, sizeof err));
	expect_err("tls_cert", p.cert_file, "not a regular file (fifo)");
}

Test(certs, key_file_fifo_refused)
{
	struct cert_pair p = pair("f");

	leaf("f", key_ec(), "a.test", "DNS:a.test");
	cr_assert_eq(unlink(p.key_file), 0);
	make_fifo("f.key");
	cr_assert_null(cert_server_new(&p, 1, NULL, err, sizeof err));
	expect_err("tls_key", p.key_file, "not a regular file (fifo)");
}

Test(certs, cert_file_dev_zero_refused)
{
	struct cert_pair p = { "/dev/zero", "/dev/zero" };

	cr_assert_null(cert_server_new(&p, 1, NULL, err, sizeof err));
	expect_err("tls_cert", "/dev/zero",
	    "not a regular file (character device)");
}

Test(certs, key_file_directory_refused)
{
	struct cert_pair p = pair("f");

	leaf("f", key_ec(), "a.test", "DNS:a.test");
	p.key_file = dir;
	cr_assert_null(cert_server_new(&p, 1, NULL, err, sizeof err));
	expect_err("tls_key", dir, "not a regular file (directory)");
}

Test(certs, client_ca_fifo_refused)
{
	make_fifo("ca.pem");
	cr_assert_null(cert_client_new(path("ca.pem"), true, err, sizeof err));
	expect_err("upstream_ca", path("ca.pem"), "not a regular file (fifo)");
}

Test(certs, client_ca_dev_zero_refused)
{
	cr_assert_null(cert_client_new("/dev/zero", true, err, sizeof err));
	expect_err("upstream_ca", "/dev/zero",
	    "not a regular file (character device)");
}

Test(certs, days_left_fifo_refused)
{
	make_fifo("d.pem");
	cr_assert_eq(cert_file_days_left(path("d.pem"), err, sizeof err),
	    INT_MIN);
	expect_err("tls_cert", path("d.pem"), "not a regular file (fifo)");
}

/* The bound on what is read: a 5 MiB "certificate" is refused unread. */
Test(certs, cert_file_too_large_refused)
{
	struct cert_pair p = pair("big");
	FILE *fp = fopen(p.cert_file, "w");

	cr_assert_not_null(fp);
	cr_assert_eq(ftruncate(fileno(fp), 5 << 20), 0);
	fclose(fp);
	cr_assert_null(cert_server_new(&p, 1, NULL, err, sizeof err));
	expect_err("tls_cert", p.cert_file, "larger than 4194304 bytes");
}

/* ---- the ClientHello's server_name extension (cert_sni.c) ---- */

/* The extension body for one host_name entry naming `name` (n bytes). */
static size_t
sni_ext(unsigned char *out, const char *name, size_t n)
{
	out[0] = (unsigned char)((n + 3) >> 8);
	out[1] = (unsigned char)(n + 3);
	out[2] = 0;
	out[3] = (unsigned char)(n >> 8);
	out[4] = (unsigned char)n;
	memcpy(out + 5, name, n);
	return n + 5;
}

static int
sni(const unsigned char *p, size_t len, char *host)
{
	memset(host, 'x', 256);
	return cert_sni_parse(p, len, host, 256);
}

Test(sni, one_host_name_read)
{
	unsigned char e[300];
	char host[256];

	cr_assert_eq(sni(e, sni_ext(e, "PBX.Example.", 12), host), 1);
	cr_expect_str_eq(host, "PBX.Example.");	/* folded by the caller */
}

Test(sni, longest_name_read)
{
	unsigned char e[300];
	char name[255], host[256];

	memset(name, 'a', sizeof(name));
	cr_assert_eq(sni(e, sni_ext(e, name, 255), host), 1);
	cr_expect_eq(strlen(host), 255);
}

Test(sni, name_over_255_bytes_refused)
{
	unsigned char e[300];
	char name[256], host[256];

	memset(name, 'a', sizeof(name));
	cr_expect_eq(sni(e, sni_ext(e, name, 256), host), -1);
}

Test(sni, empty_name_refused)
{
	unsigned char e[8];
	char host[256];

	cr_expect_eq(sni(e, sni_ext(e, "", 0), host), -1);
}

Test(sni, nul_in_name_refused)
{
	unsigned char e[32];
	char host[256];

	cr_expect_eq(sni(e, sni_ext(e, "a\0b.example", 11), host), -1);
}

Test(sni, other_name_type_refused)
{
	unsigned char e[32];
	char host[256];
	size_t n = sni_ext(e, "pbx.example", 11);

	e[2] = 1;
	cr_expect_eq(sni(e, n, host), -1);
}

Test(sni, second_entry_refused)
{
	static const unsigned char second[] = { 0, 0, 9, 'b', '.', 'e', 'x',
	    'a', 'm', 'p', 'l', 'e' };
	unsigned char e[64];
	char host[256];
	size_t n = sni_ext(e, "a.example", 9);

	/* a second host_name entry after the first, list length covering both */
	memcpy(e + n, second, sizeof(second));
	n += sizeof(second);
	e[0] = (unsigned char)((n - 2) >> 8);
	e[1] = (unsigned char)(n - 2);
	cr_expect_eq(sni(e, n, host), -1);
}

Test(sni, list_length_short_of_the_extension_refused)
{
	unsigned char e[32];
	char host[256];
	size_t n = sni_ext(e, "pbx.example", 11);

	e[1]--;
	cr_expect_eq(sni(e, n, host), -1);
}

Test(sni, list_length_past_the_extension_refused)
{
	unsigned char e[32];
	char host[256];
	size_t n = sni_ext(e, "pbx.example", 11);

	e[1]++;
	cr_expect_eq(sni(e, n, host), -1);
}

Test(sni, name_length_past_the_extension_refused)
{
	unsigned char e[32];
	char host[256];
	size_t n = sni_ext(e, "pbx.example", 11);

	e[4]++;
	cr_expect_eq(sni(e, n, host), -1);
}

Test(sni, truncated_header_refused)
{
	static const unsigned char e[4] = { 0, 2, 0, 0 };
	char host[256];

	for (size_t len = 0; len <= sizeof(e); len++)
		cr_expect_eq(sni(e, len, host), -1, "length %zu", len);
}

Test(sni, name_longer_than_the_buffer_refused)
{
	unsigned char e[32];
	char host[8];

	cr_expect_eq(cert_sni_parse(e, sni_ext(e, "pbx.example", 11), host,
	    sizeof(host)), -1);
}
