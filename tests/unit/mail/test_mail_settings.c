/* test_mail_settings.c -- the smtp_* and scrub_* keywords: each accepted
 * form and each bad value with its message and bad argument index. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/mail.h"
#include "policy/policy.h"

static int
kw(struct mail_settings *s, const char *k, int argc, const char *const *argv,
    int *bad, char *err)
{
	return pol_kw_run(&mail_kwtab, s, "/etc/pbxgate", k, argc,
	    (char **)argv, bad, err, 256);
}

Test(settings, defaults)
{
	struct mail_settings s;

	mail_settings_defaults(&s);
	cr_expect_eq(s.relay_tls, MAIL_RELAY_STARTTLS);
	cr_expect(s.relay_verify);
	cr_expect_eq(s.max_size, 50ull * 1024 * 1024);
	cr_expect_eq(s.max_recipients, 100);
	cr_expect_eq(s.nlisten, 0);
}

Test(settings, not_mine)
{
	struct mail_settings s;
	char err[256];
	int bad;
	const char *v[] = { "x" };

	mail_settings_defaults(&s);
	cr_expect_eq(kw(&s, "listen", 1, v, &bad, err), 1);
}

Test(settings, listen_relay_and_paths)
{
	struct mail_settings s;
	char err[256];
	int bad;
	const char *l[] = { "127.0.0.1:2525" }, *l6[] = { "[::1]:2526" };
	const char *r[] = { "192.0.2.10:587" }, *ca[] = { "ca.pem" };
	const char *rules[] = { "/abs/scrub.rules" };

	mail_settings_defaults(&s);
	cr_assert_eq(kw(&s, "smtp_listen", 1, l, &bad, err), 0, "%s", err);
	cr_assert_eq(kw(&s, "smtp_listen", 1, l6, &bad, err), 0, "%s", err);
	cr_expect_eq(s.nlisten, 2);
	cr_expect_str_eq(s.listen_text[1], "[::1]:2526");
	cr_expect_eq(s.listen[1].ss_family, AF_INET6);
	cr_assert_eq(kw(&s, "smtp_relay", 1, r, &bad, err), 0, "%s", err);
	cr_expect_str_eq(s.relay_host, "192.0.2.10");
	cr_assert_eq(kw(&s, "smtp_relay_ca", 1, ca, &bad, err), 0);
	cr_expect_str_eq(s.relay_ca, "/etc/pbxgate/ca.pem");
	cr_assert_eq(kw(&s, "scrub_rules", 1, rules, &bad, err), 0);
	cr_expect_str_eq(s.scrub_rules, "/abs/scrub.rules");
	mail_settings_free(&s);
}

Test(settings, allow_cidrs)
{
	struct mail_settings s;
	char err[256];
	int bad;
	const char *a[] = { "192.0.2.0/24" }, *b[] = { "2001:db8::/32" };
	struct sockaddr_in in = { .sin_family = AF_INET };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };

	mail_settings_defaults(&s);
	inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
	cr_expect(mail_settings_allowed(&s, (struct sockaddr *)&in,
	    sizeof(in)), "loopback allowed by default");
	inet_pton(AF_INET, "192.0.2.77", &in.sin_addr);
	cr_expect(!mail_settings_allowed(&s, (struct sockaddr *)&in,
	    sizeof(in)), "others refused by default");
	cr_assert_eq(kw(&s, "smtp_allow", 1, a, &bad, err), 0, "%s", err);
	cr_assert_eq(kw(&s, "smtp_allow", 1, b, &bad, err), 0, "%s", err);
	cr_expect(mail_settings_allowed(&s, (struct sockaddr *)&in,
	    sizeof(in)));
	inet_pton(AF_INET, "192.0.3.1", &in.sin_addr);
	cr_expect(!mail_settings_allowed(&s, (struct sockaddr *)&in,
	    sizeof(in)));
	inet_pton(AF_INET6, "::ffff:192.0.2.5", &in6.sin6_addr);
	cr_expect(mail_settings_allowed(&s, (struct sockaddr *)&in6,
	    sizeof(in6)), "v4-mapped matches the v4 network");
	inet_pton(AF_INET6, "2001:db8:1::1", &in6.sin6_addr);
	cr_expect(mail_settings_allowed(&s, (struct sockaddr *)&in6,
	    sizeof(in6)));
	inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
	cr_expect(!mail_settings_allowed(&s, (struct sockaddr *)&in,
	    sizeof(in)), "an explicit list replaces the loopback default");
}

/* One address vocabulary: an entry written IPv4-mapped is the IPv4
 * network, and ::/0 covers IPv4 peers, as in trusted_proxy and policies. */
Test(settings, allow_mapped_entry_matches_ipv4_peer)
{
	struct mail_settings s;
	char err[256];
	int bad;
	const char *a[] = { "::ffff:192.0.2.0/120" }, *all[] = { "::/0" };
	struct sockaddr_in in = { .sin_family = AF_INET };

	mail_settings_defaults(&s);
	cr_assert_eq(kw(&s, "smtp_allow", 1, a, &bad, err), 0, "%s", err);
	inet_pton(AF_INET, "192.0.2.5", &in.sin_addr);
	cr_expect(mail_settings_allowed(&s, (struct sockaddr *)&in,
	    sizeof(in)), "IPv4 peer in a mapped entry");
	inet_pton(AF_INET, "192.0.3.5", &in.sin_addr);
	cr_expect(!mail_settings_allowed(&s, (struct sockaddr *)&in,
	    sizeof(in)));
	mail_settings_defaults(&s);
	cr_assert_eq(kw(&s, "smtp_allow", 1, all, &bad, err), 0, "%s", err);
	cr_expect(mail_settings_allowed(&s, (struct sockaddr *)&in,
	    sizeof(in)), "::/0 covers IPv4");
}

Test(settings, default_loopback_includes_mapped)
{
	struct mail_settings s;
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };

	mail_settings_defaults(&s);
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr);
	cr_expect(mail_settings_allowed(&s, (struct sockaddr *)&in6,
	    sizeof(in6)));
	inet_pton(AF_INET6, "::1", &in6.sin6_addr);
	cr_expect(mail_settings_allowed(&s, (struct sockaddr *)&in6,
	    sizeof(in6)));
	inet_pton(AF_INET6, "::2", &in6.sin6_addr);
	cr_expect(!mail_settings_allowed(&s, (struct sockaddr *)&in6,
	    sizeof(in6)));
}

struct bad {
	const char *kw;
	int         argc;
	const char *argv[3];
	int         badarg;
	const char *error;
};

static const struct bad bad_cases[] = {
	{ "smtp_listen", 1, { "127.0.0.1" }, 0, "'127.0.0.1': expected HOST:PORT" },
	{ "smtp_listen", 1, { "127.0.0.1:0" }, 0, "'127.0.0.1:0': port must" },
	{ "smtp_listen", 1, { "127.0.0.1:70000" }, 0, "'127.0.0.1:70000': port" },
	{ "smtp_listen", 1, { "::1:25" }, 0, "'::1:25': expected HOST:PORT" },
	{ "smtp_listen", 2, { "127.0.0.1:25", "x" }, 1, "unexpected extra value "
	    "\"x\"; usage: smtp_listen HOST:PORT" },
	{ "smtp_listen", 0, { NULL }, -1, "missing value; usage: smtp_listen "
	    "HOST:PORT" },
	{ "smtp_relay_tls", 1, { "ssl" }, 0, "'ssl': expected starttls, tls" },
	{ "smtp_relay_verify", 1, { "maybe" }, 0, "expected on or off, not "
	    "\"maybe\"" },
	{ "smtp_relay_verify", 1, { "yes" }, -1, NULL },
	{ "smtp_allow", 1, { "10.0.0.1/8" }, 0, "'10.0.0.1/8' has host bits set: write 10.0.0.0/8 for the network, or 10.0.0.1 alone for the one address" },
	{ "smtp_allow", 1, { "10.0.0.0/33" }, 0, "bad prefix length in '10.0.0.0/33' (IPv4 takes /0 to /32, no leading zeros)" },
	{ "smtp_allow", 1, { "example.com" }, 0, "bad address 'example.com' (expected an IPv4 or IPv6 address, optionally with /LEN)" },
	{ "smtp_max_size", 1, { "10" }, 0, "10 is out of range (1k to 1g)" },
	{ "smtp_max_size", 1, { "2g" }, 0, "2g is out of range (1k to 1g)" },
	{ "smtp_max_line", 1, { "100" }, 0, "100 is out of range (1000 to 1m)" },
	{ "smtp_max_recipients", 1, { "0" }, 0, "0 is out of range (1 to 10000)" },
	{ "smtp_timeout", 1, { "0" }, 0, "0 is out of range (1ms to 1d)" },
	{ "smtp_timeout", 1, { "25h" }, 0, "25h is out of range (1ms to 1d)" },
	{ "smtp_timeout", 1, { "5h" }, -1, NULL },
	{ "smtp_hostname", 1, { "bad host!" }, 0, "'bad host!': not a host" },
	/* smtp_auth takes the gateway's own rules for a hash (issue 12 #19):
	 * Argon2id v=19 only, cost at least m=19456 KiB, t=2. */
	{ "smtp_auth", 2, { "pbx", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$"
	    "RYTSaq5wR1vyiFOpAFcPZ7GF1vb83OZ55tHW2rcQ8LA" }, -1, NULL },
	{ "smtp_auth", 2, { "pbx", "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$"
	    "V4H3HtTOx/OSF1MH0AOC7qYPwyx7EScAQXWSGhaLb7Q" }, 1,
	    "Argon2id cost m=8,t=1 is too weak" },
	{ "smtp_auth", 2, { "pbx", "$argon2id$v=19$m=19456,t=1,p=1$c2FsdHNhbHQ$"
	    "1rqh8tPZLKQkqeqRRkiwAU8zUWOX4EeFsPgLKuXJyE0" }, 1,
	    "Argon2id cost m=19456,t=1 is too weak" },
	{ "smtp_auth", 2, { "pbx", "$argon2id$v=19$m=19455,t=2,p=1$c2FsdHNhbHQ$"
	    "ehTKwFic7iNYol9rCLBcXWQrmkP5nu3utDEwiNmQqTo" }, 1,
	    "Argon2id cost m=19455,t=2 is too weak" },
	{ "smtp_auth", 2, { "pbx", "$argon2i$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$"
	    "dQnDqauPCqDw3dyXWZYY2phLkZCWIGZAqEVJJjwNzJ8" }, 1,
	    "not an Argon2id hash" },
	{ "smtp_auth", 2, { "pbx", "$argon2d$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$"
	    "cUTIN94G5hA9srkiuf1VOmA4SvcgnahgYzpEob9UrLA" }, 1,
	    "not an Argon2id hash" },
	{ "smtp_auth", 2, { "pbx", "$argon2id$v=16$m=65536,t=3,p=4$c2FsdHNhbHQ$"
	    "cUTIN94G5hA9srkiuf1VOmA4SvcgnahgYzpEob9UrLA" }, 1,
	    "not an Argon2id hash" },
	{ "smtp_auth", 2, { "pbx", "$argon2id$v=19$m=8388608,t=3,p=4$"
	    "c2FsdHNhbHQ$cUTIN94G5hA9srkiuf1VOmA4SvcgnahgYzpEob9UrLA" }, 1,
	    "Argon2id cost m=8388608,t=3,p=4 is above" },
	{ "smtp_auth", 2, { "pbx", "/nonexistent/hash" }, 1,
	    "/nonexistent/hash: cannot open" },
	{ "smtp_auth", 2, { "p bx", "$argon2id$" }, 0, "'p bx': user names" },
	{ "smtp_relay_auth", 2, { "u", "/nonexistent/pw" }, 1,
	    "/nonexistent/pw: cannot open" },
};

static size_t idx_settings_bad_value[64];

ParameterizedTestParameters(settings, bad_value)
{
	size_t n = sizeof(bad_cases) / sizeof(bad_cases[0]);

	for (size_t i = 0; i < n; i++)
		idx_settings_bad_value[i] = i;
	return cr_make_param_array(size_t, idx_settings_bad_value, n);
}

ParameterizedTest(size_t *ix, settings, bad_value)
{
	const struct bad *c = &bad_cases[*ix];
	struct mail_settings s;
	char err[256] = "";
	int bad = -7, r;

	mail_settings_defaults(&s);
	r = kw(&s, c->kw, c->argc, c->argv, &bad, err);
	if (c->error == NULL) {	/* a case that must be accepted */
		cr_expect_eq(r, 0, "%s: %s", c->kw, err);
		mail_settings_free(&s);
		return;
	}
	cr_assert_eq(r, -1, "%s %s accepted", c->kw, c->argv[0]);
	cr_expect_eq(bad, c->badarg, "%s: badarg %d", c->kw, bad);
	cr_expect_eq(strncmp(err, c->error, strlen(c->error)), 0,
	    "%s: got '%s'", c->kw, err);
	mail_settings_free(&s);
}

Test(settings, finish_requires_relay_and_rules)
{
	struct mail_settings s;
	char err[256];
	int bad;
	const char *l[] = { "127.0.0.1:2525" }, *r[] = { "127.0.0.1:25" };

	mail_settings_defaults(&s);
	cr_expect_eq(mail_settings_finish(&s, err, sizeof(err)), 0,
	    "no smtp_listen: nothing required");
	kw(&s, "smtp_listen", 1, l, &bad, err);
	cr_expect_eq(mail_settings_finish(&s, err, sizeof(err)), -1);
	cr_expect_not_null(strstr(err, "smtp_relay is not"), "%s", err);
	kw(&s, "smtp_relay", 1, r, &bad, err);
	cr_expect_eq(mail_settings_finish(&s, err, sizeof(err)), -1);
	cr_expect_not_null(strstr(err, "scrub_rules is not"), "%s", err);
	mail_settings_free(&s);
}

Test(settings, secret_files_read_and_relative)
{
	char dir[] = "/tmp/mailtestXXXXXX", path[300], err[256];
	struct mail_settings s;
	const char *a[] = { "relayuser", "pw.txt" };
	int bad;
	FILE *f;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/pw.txt", dir);
	f = fopen(path, "w");
	fputs("s3cret\n", f);
	fclose(f);
	mail_settings_defaults(&s);
	cr_assert_eq(pol_kw_run(&mail_kwtab, &s, dir, "smtp_relay_auth", 2,
	    (char **)a, &bad, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(s.relay_password, "s3cret");
	mail_settings_free(&s);
	unlink(path);
	rmdir(dir);
}
