/* test_tickets.c -- unit tests for ticket keys derived from a shared secret
 * (cert_ticket_keys.c, the derived side of cert_tickets.c): the derivation
 * pinned by known answers, window boundaries, which windows' tickets open,
 * and the secret file's checks. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "certs/cert_priv.h"

#define PERIOD 1000u		/* ms */

static char err[1024];
static unsigned char secret_a[32], secret_b[32];

static void
setup(void)
{
	for (size_t i = 0; i < sizeof secret_a; i++) {
		secret_a[i] = (unsigned char)i;
		secret_b[i] = (unsigned char)(i + 1);
	}
}

TestSuite(tickets, .init = setup);

static struct cert_tickets *
tickets(const unsigned char *secret, uint64_t now)
{
	struct cert_tickets *t = cert_tickets_from_secret(secret, 32, PERIOD,
	    now, err, sizeof err);

	cr_assert_not_null(t, "%s", err);
	return t;
}

/* Runs the ticket callback's body at `now`: enc makes a ticket and fills
 * name; !enc opens the ticket called `name`. Returns its result. */
static int
crypt_at(struct cert_tickets *t, uint64_t now, unsigned char name[16], int enc)
{
	unsigned char iv[EVP_MAX_IV_LENGTH] = { 0 };
	EVP_CIPHER_CTX *cctx = EVP_CIPHER_CTX_new();
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *hctx = EVP_MAC_CTX_new(mac);
	int r;

	cr_assert(cctx != NULL && hctx != NULL);
	r = cert_tickets_crypt_at(t, now, name, iv, cctx, hctx, enc);
	EVP_MAC_CTX_free(hctx);
	EVP_MAC_free(mac);
	EVP_CIPHER_CTX_free(cctx);
	return r;
}

static void
name_at(struct cert_tickets *t, uint64_t now, unsigned char name[16])
{
	cr_assert_eq(crypt_at(t, now, name, 1), 1);
}

/* Known answers (openssl kdf HKDF, SHA256, no salt): other builds and
 * versions of pbxgate must derive the same keys from the same file. */
Test(tickets, derivation_known_answer)
{
	static const unsigned char zero_w5[16] = { 0x30, 0x86, 0xb5, 0x1f,
	    0x09, 0x93, 0x40, 0x4d, 0x79, 0x87, 0x79, 0x63, 0x5b, 0xf6, 0x77,
	    0xfc };
	static const unsigned char seq_w[16] = { 0xdb, 0xd4, 0xcb, 0x80, 0x0a,
	    0x6a, 0xce, 0x2e, 0x52, 0x07, 0x92, 0x01, 0xa0, 0x8d, 0x11, 0x70 };
	unsigned char zero[32] = { 0 }, out[CERT_TICKET_KEYLEN];

	cr_assert(cert_ticket_derive(zero, sizeof zero, 5, out));
	cr_expect_arr_eq(out, zero_w5, sizeof zero_w5);
	cr_expect_eq(out[79], 0x43);
	cr_assert(cert_ticket_derive(secret_a, sizeof secret_a,
	    0x0000000100000002ull, out));
	cr_expect_arr_eq(out, seq_w, sizeof seq_w);
}

Test(tickets, same_input_same_key)
{
	unsigned char k1[CERT_TICKET_KEYLEN], k2[CERT_TICKET_KEYLEN];

	cr_assert(cert_ticket_derive(secret_a, 32, 42, k1));
	cr_assert(cert_ticket_derive(secret_a, 32, 42, k2));
	cr_expect_arr_eq(k1, k2, sizeof k1);
	cr_assert(cert_ticket_derive(secret_a, 32, 43, k2));
	cr_expect_arr_neq(k1, k2, sizeof k1);
	cr_assert(cert_ticket_derive(secret_b, 32, 42, k2));
	cr_expect_arr_neq(k1, k2, sizeof k1);
}

/* Two gateways with the same secret and clock name their tickets alike. */
Test(tickets, two_instances_agree)
{
	struct cert_tickets *a = tickets(secret_a, 5000), *b = tickets(secret_a,
	    5000);
	unsigned char na[16], nb[16];

	name_at(a, 5500, na);
	name_at(b, 5500, nb);
	cr_expect_arr_eq(na, nb, sizeof na);
	cr_expect_eq(crypt_at(b, 5500, na, 0), 1);
	cert_tickets_free(a);
	cert_tickets_free(b);
}

Test(tickets, window_boundaries)
{
	struct cert_tickets *t = tickets(secret_a, 0);
	unsigned char n4999[16], n5000[16], n5999[16], n6000[16];

	name_at(t, 4999, n4999);
	name_at(t, 5000, n5000);
	name_at(t, 5999, n5999);
	name_at(t, 6000, n6000);
	cr_expect_arr_neq(n4999, n5000, 16);
	cr_expect_arr_eq(n5000, n5999, 16);
	cr_expect_arr_neq(n5999, n6000, 16);
	cert_tickets_free(t);
}

/* A ticket of window 5: current in 5 (1), previous or next window's key
 * in 6 or 4 (2: accepted and renewed), unknown anywhere else (0). */
Test(tickets, previous_and_next_window_accepted_others_not)
{
	static const struct {
		uint64_t now;
		int want;
	} cases[] = {
		{ 5000, 1 }, { 5999, 1 }, { 6000, 2 }, { 6999, 2 },
		{ 4999, 2 }, { 4000, 2 }, { 7000, 0 }, { 3999, 0 },
		{ 100000, 0 }, { 0, 0 },
	};
	struct cert_tickets *t = tickets(secret_a, 5000);
	unsigned char name[16], n[16];

	name_at(t, 5000, name);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memcpy(n, name, sizeof n);
		cr_expect_eq(crypt_at(t, cases[i].now, n, 0), cases[i].want,
		    "at %llu ms", (unsigned long long)cases[i].now);
	}
	cert_tickets_free(t);
}

Test(tickets, other_secret_unknown)
{
	struct cert_tickets *a = tickets(secret_a, 5000), *b = tickets(secret_b,
	    5000);
	unsigned char name[16];

	name_at(a, 5000, name);
	cr_expect_eq(crypt_at(b, 5000, name, 0), 0);
	cert_tickets_free(a);
	cert_tickets_free(b);
}

/* Derived keys follow the clock only: the hourly timer changes nothing. */
Test(tickets, rotate_leaves_derived_keys)
{
	struct cert_tickets *t = tickets(secret_a, 5000);
	unsigned char name[16];

	name_at(t, 5000, name);
	cert_tickets_rotate(t);
	cr_expect_eq(crypt_at(t, 5000, name, 0), 1);
	cert_tickets_free(t);
}

Test(tickets, short_secret_or_no_period_refused)
{
	cr_expect_null(cert_tickets_from_secret(secret_a, 31, PERIOD, 0, err,
	    sizeof err));
	cr_expect_null(cert_tickets_from_secret(secret_a, 32, 0, 0, err,
	    sizeof err));
}

static const char *
secret_file(mode_t mode, size_t len)
{
	static char path[64];
	unsigned char buf[2048] = { 1 };
	int fd;

	snprintf(path, sizeof path, "/tmp/test_tickets.XXXXXX");
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
	cr_assert_eq(chmod(path, mode), 0);
	return path;
}

/* (mode, size, accepted) */
Test(tickets, secret_file_checks)
{
	static const struct {
		mode_t mode;
		size_t len;
		bool ok;
	} cases[] = {
		{ 0600, 32, true }, { 0400, 32, true }, { 0640, 32, true },
		{ 0600, 1024, true }, { 0600, 31, false }, { 0600, 0, false },
		{ 0600, 1025, false }, { 0644, 32, false }, { 0660, 32, false },
		{ 0602, 32, false }, { 0601, 32, false }, { 0610, 32, false },
	};
	unsigned char buf[CERT_TICKET_SECRET_MAX];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *p = secret_file(cases[i].mode, cases[i].len);
		size_t len = 0;
		int r = cert_ticket_secret_read(p, buf, sizeof buf, &len, err,
		    sizeof err);

		cr_expect_eq(r == 0, cases[i].ok, "mode %o, %zu bytes: %s",
		    (unsigned)cases[i].mode, cases[i].len, r == 0 ? "ok" : err);
		if (r == 0)
			cr_expect_eq(len, cases[i].len);
		unlink(p);
	}
}

/* Per-site keys: the same key and site give the same key (every gateway
 * with the file agrees), another site or key an unrelated one, and no
 * site name reproduces the window key itself. */
Test(tickets, site_derivation)
{
	unsigned char k[CERT_TICKET_KEYLEN], a1[CERT_TICKET_KEYLEN],
	    a2[CERT_TICKET_KEYLEN], b[CERT_TICKET_KEYLEN],
	    o[CERT_TICKET_KEYLEN];
	char longname[CERT_TICKET_SITE_MAX + 2];

	cr_assert(cert_ticket_derive(secret_a, 32, 42, k));
	cr_assert(cert_ticket_site_derive(k, "alpha", a1));
	cr_assert(cert_ticket_site_derive(k, "alpha", a2));
	cr_expect_arr_eq(a1, a2, sizeof a1);
	cr_assert(cert_ticket_site_derive(k, "beta", b));
	cr_expect_arr_neq(a1, b, 16, "other site, same key name");
	cr_expect_arr_neq(a1 + 16, b + 16, 64, "other site, same keys");
	cr_expect_arr_neq(a1, k, sizeof a1);
	cr_assert(cert_ticket_derive(secret_a, 32, 43, o));
	cr_assert(cert_ticket_site_derive(o, "alpha", a2));
	cr_expect_arr_neq(a1, a2, sizeof a1);
	cr_expect_not(cert_ticket_site_derive(k, "", o));
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	cr_expect_not(cert_ticket_site_derive(k, longname, o));
	longname[CERT_TICKET_SITE_MAX] = '\0';
	cr_expect(cert_ticket_site_derive(k, longname, o));
}

static struct cert_tickets *
site(struct cert_tickets *all, const char *name)
{
	struct cert_tickets *t = cert_tickets_site(all, name, err, sizeof err);

	cr_assert_not_null(t, "%s", err);
	return t;
}

/* A site's ticket opens on the same site (of another gateway with the same
 * file too), never on another site nor on the top level, and the other way
 * round. */
Test(tickets, site_tickets_stay_on_their_site)
{
	struct cert_tickets *g1 = tickets(secret_a, 5000), *g2 =
	    tickets(secret_a, 5000);
	struct cert_tickets *a1 = site(g1, "alpha"), *a2 = site(g2, "alpha"),
	    *b2 = site(g2, "beta");
	unsigned char name[16], n[16], top[16];

	name_at(a1, 5000, name);
	memcpy(n, name, 16);
	cr_expect_eq(crypt_at(a1, 5000, n, 0), 1);
	cr_expect_eq(crypt_at(a2, 5000, n, 0), 1);
	cr_expect_eq(crypt_at(a2, 6500, n, 0), 2, "next window: renewed");
	cr_expect_eq(crypt_at(a2, 7000, n, 0), 0);
	cr_expect_eq(crypt_at(b2, 5000, n, 0), 0);
	cr_expect_eq(crypt_at(g2, 5000, n, 0), 0);
	name_at(g1, 5000, top);
	cr_expect_eq(crypt_at(a1, 5000, top, 0), 0);
	cert_tickets_free(a1);
	cert_tickets_free(a2);
	cert_tickets_free(b2);
	cert_tickets_free(g1);
	cert_tickets_free(g2);
}

/* Random keys: the site follows the process's rotation (previous key
 * still opens, then not), and holds its parent alive. */
Test(tickets, site_follows_rotation)
{
	struct cert_tickets *all = cert_tickets_new(err, sizeof err);
	struct cert_tickets *a, *b;
	unsigned char name[16], n[16];

	cr_assert_not_null(all, "%s", err);
	a = site(all, "alpha");
	b = site(all, "beta");
	cert_tickets_free(all);		/* the sites keep it */
	cr_assert_eq(crypt_at(a, 0, name, 1), 1);
	memcpy(n, name, 16);
	cr_expect_eq(crypt_at(a, 0, n, 0), 1);
	cr_expect_eq(crypt_at(b, 0, n, 0), 0);
	cert_tickets_rotate(all);
	cr_expect_eq(crypt_at(a, 0, n, 0), 2);
	cert_tickets_rotate(all);
	cr_expect_eq(crypt_at(a, 0, n, 0), 0);
	cert_tickets_free(a);
	cert_tickets_free(b);
}

Test(tickets, site_bad_name_or_parent_refused)
{
	struct cert_tickets *all = tickets(secret_a, 5000), *a;
	char longname[CERT_TICKET_SITE_MAX + 2];

	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	cr_expect_null(cert_tickets_site(all, "", err, sizeof err));
	cr_expect_null(cert_tickets_site(all, longname, err, sizeof err));
	cr_expect(strstr(err, "1 to 63 bytes") != NULL, "%s", err);
	cr_expect_null(cert_tickets_site(NULL, "alpha", err, sizeof err));
	a = site(all, "alpha");
	cr_expect_null(cert_tickets_site(a, "beta", err, sizeof err),
	    "a site of a site");
	cert_tickets_free(a);
	cert_tickets_free(all);
}

/* The callback's entry point (real clock) puts a site of derived keys in
 * the window of now, as its parent would be: not window 0, which would
 * never rotate (and would drag the parent's keys back to it). */
Test(tickets, site_of_derived_keys_uses_the_clock)
{
	struct timespec ts;
	uint64_t now;
	struct cert_tickets *all, *a;
	unsigned char want[16], got[16], again[16];
	unsigned char iv[EVP_MAX_IV_LENGTH] = { 0 };
	EVP_CIPHER_CTX *cctx = EVP_CIPHER_CTX_new();
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *hctx = EVP_MAC_CTX_new(mac);

	cr_assert(clock_gettime(CLOCK_REALTIME, &ts) == 0);
	now = (uint64_t)ts.tv_sec * 1000u;
	all = cert_tickets_from_secret(secret_a, 32, 3600000, now, err,
	    sizeof err);
	cr_assert_not_null(all, "%s", err);
	a = site(all, "alpha");
	name_at(a, now, want);
	cr_assert_eq(cert_tickets_crypt(a, got, iv, cctx, hctx, 1), 1);
	name_at(a, now + 3600000, again);	/* the hour turned meanwhile */
	cr_expect(memcmp(got, want, 16) == 0 || memcmp(got, again, 16) == 0,
	    "the site's ticket was not made with the current window's key");
	EVP_MAC_CTX_free(hctx);
	EVP_MAC_free(mac);
	EVP_CIPHER_CTX_free(cctx);
	cert_tickets_free(a);
	cert_tickets_free(all);
}
