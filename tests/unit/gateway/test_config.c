/* test_config.c -- the gateway config parser: every keyword, every error
 * with its exact FILE:LINE:COL message, includes, and runtime building. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "gateway/config_priv.h"	/* the keyword table, for doc checks */
#include "gateway/gateway.h"

#define MAXMSG 64

struct msgs {
	int  n;
	bool warn[MAXMSG];
	char m[MAXMSG][1024];
};

static char dir[64];
static void assert_path(const char *got_path, const char *rel);
static struct msgs got;

static void
collect(void *arg, bool warning, const char *msg)
{
	struct msgs *m = arg;

	if (m->n == MAXMSG)
		return;
	m->warn[m->n] = warning;
	snprintf(m->m[m->n++], sizeof(m->m[0]), "%s", msg);
}

static void
wfile(const char *name, const char *content)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f, "cannot create %s", path);
	fputs(content, f);
	fclose(f);
}

/* DIR/fifo and DIR/sock: files no loader may open (a blocking open of
 * the FIFO would hang the test until its timeout). */
static int sock_fd = -1;

static void
make_specials(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/sock", dir);
	sock_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_geq(sock_fd, 0);
	cr_assert_eq(bind(sock_fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/fifo", dir);
	cr_assert_eq(mkfifo(sun.sun_path, 0600), 0);
}

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/pbxgate-cfg-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	memset(&got, 0, sizeof(got));
	wfile("cert.pem", "not parsed without runtime\n");
	wfile("key.pem", "not parsed without runtime\n");
	make_specials();
}

static void
teardown(void)
{
	char cmd[128];

	if (sock_fd >= 0)
		close(sock_fd);
	sock_fd = -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(config, .init = setup, .fini = teardown, .timeout = 30);

/* The smallest valid file: four lines; tests append their line 5. */
#define BASE "listen 127.0.0.1:8443\n" \
	"tls_cert cert.pem\n" \
	"tls_key key.pem\n" \
	"upstream http://127.0.0.1:5000\n"

static struct gw_config *
load_text(const char *text)
{
	char path[256];

	wfile("main.conf", text);
	snprintf(path, sizeof(path), "%s/main.conf", dir);
	return gw_config_load(path, false, collect, &got);
}

/* Expected text: "{D}" stands for the temp dir. */
static void
expand(char *out, size_t outlen, const char *tmpl)
{
	size_t n = 0;

	for (; *tmpl != '\0' && n + 1 < outlen; tmpl++) {
		if (strncmp(tmpl, "{D}", 3) == 0) {
			n += (size_t)snprintf(out + n, outlen - n, "%s", dir);
			tmpl += 2;
		} else
			out[n++] = *tmpl;
		if (n >= outlen)
			n = outlen - 1;
	}
	out[n] = '\0';
}

/* Asserts exactly one message, an error unless `warning`, equal to
 * "DIR/main.conf:" followed by `tail`. */
static void
expect_one(bool warning, const char *tail)
{
	char want[1200], t[1024];
	int i;

	expand(t, sizeof(t), tail);
	snprintf(want, sizeof(want), "%s/main.conf:%s", dir, t);
	for (i = 0; i < got.n; i++)
		cr_log_info("got: %s", got.m[i]);
	cr_assert_eq(got.n, 1, "expected 1 message, got %d", got.n);
	cr_assert_str_eq(got.m[0], want);
	cr_assert_eq(got.warn[0], warning);
}

/* One test per bad line 5 appended to BASE: refused, exactly one error. */
#define BAD_LINE(name, line, tail)					\
Test(config, name)							\
{									\
	struct gw_config *c = load_text(BASE line "\n");		\
	expect_one(false, tail);					\
	cr_assert_null(c);						\
}

#define BASE_NOUP "listen 127.0.0.1:8443\n" \
	"tls_cert cert.pem\n" \
	"tls_key key.pem\n"

/* Same for a bad upstream URL on line 4 (the base has none). */
#define BAD_URL(name, url, tail)					\
Test(config, name)							\
{									\
	struct gw_config *c = load_text(BASE_NOUP "upstream " url "\n");\
	expect_one(false, "4:10: upstream: " tail);			\
	cr_assert_null(c);						\
}

/* ---- keyword dispatch ---- */
BAD_LINE(unknown_keyword, "lisen 127.0.0.1:8444",
    "5:1: unknown keyword \"lisen\"")
BAD_LINE(unknown_keyword_indented, "  \tfoo bar",
    "5:4: unknown keyword \"foo\"")
BAD_LINE(missing_value, "admin_listen",
    "5:1: admin_listen: missing value; usage: admin_listen ADDR:PORT")
BAD_LINE(missing_value_comment_only, "workers # none",
    "5:1: workers: missing value; usage: workers N|auto")
BAD_LINE(extra_value, "admin_listen 127.0.0.1:9000 extra",
    "5:29: admin_listen: unexpected extra value \"extra\"; usage: "
    "admin_listen ADDR:PORT")
BAD_LINE(duplicate_upstream, "upstream http://127.0.0.1:5001",
    "5:1: duplicate \"upstream\" (first set at {D}/main.conf:4)")
BAD_LINE(duplicate_workers, "workers 2\nworkers 3",
    "6:1: duplicate \"workers\" (first set at {D}/main.conf:5)")

/* ---- addresses ---- */
BAD_LINE(port_zero, "admin_listen 127.0.0.1:0",
    "5:14: admin_listen: bad port \"0\" in \"127.0.0.1:0\": expected a "
    "number from 1 to 65535")
BAD_LINE(port_65536, "admin_listen 127.0.0.1:65536",
    "5:14: admin_listen: bad port \"65536\" in \"127.0.0.1:65536\": "
    "expected a number from 1 to 65535")
BAD_LINE(port_abc, "admin_listen 127.0.0.1:abc",
    "5:14: admin_listen: bad port \"abc\" in \"127.0.0.1:abc\": expected "
    "a number from 1 to 65535")
BAD_LINE(port_signed, "admin_listen 127.0.0.1:+80",
    "5:14: admin_listen: bad port \"+80\" in \"127.0.0.1:+80\": expected "
    "a number from 1 to 65535")
BAD_LINE(port_empty, "admin_listen 127.0.0.1:",
    "5:14: admin_listen: bad port \"\" in \"127.0.0.1:\": expected "
    "a number from 1 to 65535")
BAD_LINE(address_short_v4, "listen 1.2.3:8443",
    "5:8: listen: bad address \"1.2.3:8443\": \"1.2.3\" is not a numeric "
    "IPv4 (or *) address")
BAD_LINE(address_hostname, "listen localhost:8443",
    "5:8: listen: bad address \"localhost:8443\": \"localhost\" is not a "
    "numeric IPv4 (or *) address")
BAD_LINE(address_no_port, "listen 127.0.0.2",
    "5:8: listen: bad address \"127.0.0.2\": expected ADDR:PORT (IPv6 in "
    "brackets: [::1]:PORT)")
BAD_LINE(address_v6_unbracketed, "listen ::1:8443",
    "5:8: listen: bad address \"::1:8443\": expected ADDR:PORT (IPv6 in "
    "brackets: [::1]:PORT)")
BAD_LINE(address_v6_no_port, "listen [::1]8443",
    "5:8: listen: bad address \"[::1]8443\": expected [IPV6]:PORT")
BAD_LINE(address_v4_in_brackets, "listen [127.0.0.1]:8443",
    "5:8: listen: bad address \"[127.0.0.1]:8443\": \"127.0.0.1\" is not "
    "a numeric IPv6 address")
BAD_LINE(address_v6_zone, "listen [fe80::1%eth0]:8443",
    "5:8: listen: bad address \"[fe80::1%eth0]:8443\": \"fe80::1%eth0\" "
    "is not a numeric IPv6 address")
BAD_LINE(listen_duplicate, "listen 127.0.0.1:8443",
    "5:8: listen: 127.0.0.1:8443 is already listed at {D}/main.conf:1")
BAD_LINE(admin_equals_listen, "admin_listen 127.0.0.1:8443",
    "5:14: admin_listen 127.0.0.1:8443 overlaps listen 127.0.0.1:8443 at "
    "{D}/main.conf:1: use another port")
BAD_LINE(admin_under_wildcard, "listen *:9000\nadmin_listen 127.0.0.1:9000",
    "6:14: admin_listen 127.0.0.1:9000 overlaps listen *:9000 at "
    "{D}/main.conf:5: use another port")

BAD_LINE(smtp_listen_on_https_port, "smtp_listen 127.0.0.1:8443",
    "1:8: listen 127.0.0.1:8443 overlaps smtp_listen 127.0.0.1:8443: use "
    "another port")

/* ---- upstream URL forms ---- */
BAD_URL(url_scheme, "ftp://pbx",
    "\"ftp://pbx\" must start with http:// or https://")
BAD_URL(url_no_scheme, "127.0.0.1:5000",
    "\"127.0.0.1:5000\" must start with http:// or https://")
BAD_URL(url_path, "http://pbx/webclient",
    "path \"/webclient\" is not supported: give only scheme, host and port")
BAD_URL(url_userinfo, "http://admin:pw@pbx",
    "user info (user@) is not allowed in \"http://admin:pw@pbx\"")
BAD_URL(url_query, "http://pbx/?a=b",
    "a query or fragment is not allowed in \"http://pbx/?a=b\"")
BAD_URL(url_fragment, "\"http://pbx#x\"",
    "a query or fragment is not allowed in \"http://pbx#x\"")
BAD_URL(url_empty_host, "http://:5000", "missing host")
BAD_URL(url_empty, "https://", "missing host")
BAD_URL(url_v6_unbracketed, "http://::1:5000",
    "an IPv6 address must be in brackets: http://[::1]:5000")
BAD_URL(url_v6_unclosed, "http://[::1:5000", "missing ']' after IPv6 address")
BAD_URL(url_v6_bad, "http://[zz::1]:5000", "\"zz::1\" is not an IPv6 address")
BAD_URL(url_v6_junk, "http://[::1]x", "':' expected after ']'")
BAD_URL(url_port_zero, "http://pbx:0",
    "bad port \"0\": expected a number from 1 to 65535")
BAD_URL(url_port_big, "http://pbx:70000",
    "bad port \"70000\": expected a number from 1 to 65535")
BAD_URL(url_port_empty, "http://pbx:",
    "bad port \"\": expected a number from 1 to 65535")
BAD_URL(url_bad_v4, "http://300.1.1.1", "\"300.1.1.1\" is not an IPv4 address")
BAD_URL(url_bad_hostname, "http://pbx_1.example",
    "\"pbx_1.example\" is not a valid host name")
BAD_URL(url_hyphen_label, "http://-pbx.example",
    "\"-pbx.example\" is not a valid host name")

Test(config, url_forms_fill_upstream)
{
	static const struct {
		const char *url, *host, *hostport;
		uint16_t port;
		bool tls;
	} cases[] = {
		{ "http://127.0.0.1:5000", "127.0.0.1", "127.0.0.1:5000", 5000, false },
		{ "http://pbx.example", "pbx.example", "pbx.example:80", 80, false },
		{ "https://pbx.example/", "pbx.example", "pbx.example:443", 443, true },
		{ "HTTPS://pbx.example:5001", "pbx.example", "pbx.example:5001", 5001, true },
		{ "https://[::1]:5001/", "::1", "[::1]:5001", 5001, true },
		{ "http://[2001:db8::5]", "2001:db8::5", "[2001:db8::5]:80", 80, false },
	};
	char text[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gw_config *c;

		memset(&got, 0, sizeof(got));
		snprintf(text, sizeof(text), BASE_NOUP "upstream %s\n",
		    cases[i].url);
		c = load_text(text);
		cr_assert_not_null(c, "%s refused: %s", cases[i].url, got.m[0]);
		cr_assert_str_eq(c->upstream.url, cases[i].url);
		cr_assert_str_eq(c->upstream.host, cases[i].host);
		cr_assert_str_eq(c->upstream.sni, cases[i].host);
		cr_assert_str_eq(c->upstream.hostport, cases[i].hostport);
		cr_assert_eq(c->upstream.port, cases[i].port);
		cr_assert_eq(c->upstream.tls, cases[i].tls);
		cr_assert(c->upstream.verify);
		gw_config_unref(c);
	}
}

/* ---- numbers ---- */
#define DUR_HINT "; use whole numbers with d, h, m, s or ms, largest " \
	"unit first (e.g. 30s, 1h30m, 250ms)"
BAD_LINE(timeout_unit, "header_timeout 10x",
    "5:16: header_timeout: bad duration \"10x\": unknown unit \"x\""
    DUR_HINT)
/* days are a unit of every duration; this one is bounded to an hour */
BAD_LINE(timeout_unit_days, "idle_timeout 1d",
    "5:14: idle_timeout: 1d is out of range (100ms to 1h)")
BAD_LINE(timeout_negative, "body_timeout -5",
    "5:14: body_timeout: bad duration \"-5\": unexpected \"-\"" DUR_HINT)
BAD_LINE(timeout_range, "header_timeout 2h",
    "5:16: header_timeout: 2h is out of range (100ms to 1h)")
BAD_LINE(timeout_zero, "upstream_timeout 0",
    "5:18: upstream_timeout: 0 is out of range (100ms to 1d)")
BAD_LINE(timeout_overflow, "upstream_timeout 99999999999999999999h",
    "5:18: upstream_timeout: bad duration \"99999999999999999999h\": too "
    "large")
BAD_LINE(timeout_unit_overflow, "upstream_timeout 9999999999999999h",
    "5:18: upstream_timeout: bad duration \"9999999999999999h\": too large")
BAD_LINE(size_overflow, "max_body_size 99999999999999999999",
    "5:15: max_body_size: bad size \"99999999999999999999\": too large")
BAD_LINE(size_unit_overflow, "max_body_size 17179869184g",
    "5:15: max_body_size: bad size \"17179869184g\": too large")
BAD_LINE(size_unit, "max_header_size 8kb",
    "5:17: max_header_size: bad size \"8kb\": use a number of bytes with "
    "an optional k, m or g (powers of 1024)")
BAD_LINE(size_range, "max_request_line 1m",
    "5:18: max_request_line: 1m is out of range (256 to 64k)")
BAD_LINE(count_with_unit, "max_headers 1k",
    "5:13: max_headers: bad number \"1k\": use digits only, no sign or "
    "unit")
BAD_LINE(count_range, "max_headers 0",
    "5:13: max_headers: 0 is out of range (1 to 1000)")
BAD_LINE(header_bigger_than_head, "max_header_size 64k",
    "5:17: max_header_size (65536) is larger than max_headers_size (32768)")
BAD_LINE(workers_zero, "workers 0",
    "5:9: workers: 0 is out of range (1 to 64, or auto)")
BAD_LINE(workers_65, "workers 65",
    "5:9: workers: 65 is out of range (1 to 64, or auto)")
BAD_LINE(workers_word, "workers many",
    "5:9: workers: \"many\" is not a number; use 1 to 64 or auto")
BAD_LINE(hsts_bool, "hsts maybe",
    "5:6: hsts: expected on or off, not \"maybe\"")

/* ---- one value grammar for every module's keywords (issue 13) ----
 * Each line below was refused, or parsed by another grammar, before the
 * gateway, auth and mail keywords shared policy/policy_value.c. */
#define GOOD_LINE(name, line, check)					\
Test(config, name)							\
{									\
	struct gw_config *c = load_text(BASE line "\n");		\
	cr_assert_eq(got.n, 0, "%s", got.m[0]);				\
	cr_assert_not_null(c);						\
	cr_expect(check);						\
	gw_config_unref(c);						\
}

GOOD_LINE(gateway_duration_days, "upstream_timeout 1d",
    c->to.upstream == 86400000)
GOOD_LINE(gateway_duration_combined, "upstream_timeout 1h30m",
    c->to.upstream == 5400000)
GOOD_LINE(auth_duration_combined, "session_max_lifetime 1h30m",
    c->auth.session_max == 5400)
GOOD_LINE(auth_duration_ms_whole_seconds, "login_ban_time 2000ms",
    c->auth.login_ban_time == 2)
GOOD_LINE(mail_duration_hours, "smtp_timeout 1h", c->mail.timeout_ms == 3600000)
GOOD_LINE(mail_duration_combined, "smtp_relay_timeout 1m30s",
    c->mail.relay_timeout_ms == 90000)
GOOD_LINE(mail_duration_days, "smtp_timeout 1d",
    c->mail.timeout_ms == 86400000)
GOOD_LINE(gateway_size_unit, "max_body_size 1g", c->lim.body == 1ull << 30)
GOOD_LINE(mail_size_unit, "smtp_max_line 2k", c->mail.max_line == 2048)
GOOD_LINE(mail_size_unit_upper, "smtp_max_size 10M",
    c->mail.max_size == 10ull << 20)
GOOD_LINE(gateway_bool_no, "hsts no", !c->hsts)
GOOD_LINE(gateway_bool_yes, "hsts yes", c->hsts)
GOOD_LINE(auth_bool_on, "mfa_self_enrol on", c->auth.mfa_self_enrol)
GOOD_LINE(mail_bool_no, "smtp_relay_verify no", !c->mail.relay_verify)

BAD_LINE(auth_duration_ms_below_bound, "session_idle_timeout 500ms",
    "5:22: session_idle_timeout: 500ms is out of range (1m to 7d)")
BAD_LINE(auth_duration_part_second, "login_ban_time 1500ms",
    "5:16: login_ban_time: 1500ms is not a whole number of seconds")
BAD_LINE(auth_duration_unit, "session_idle_timeout 10x",
    "5:22: session_idle_timeout: bad duration \"10x\": unknown unit "
    "\"x\"" DUR_HINT)
BAD_LINE(mail_duration_unit, "smtp_timeout 5k",
    "5:14: smtp_timeout: bad duration \"5k\": unknown unit \"k\"" DUR_HINT)
BAD_LINE(mail_duration_range, "smtp_timeout 2d",
    "5:14: smtp_timeout: 2d is out of range (1ms to 1d)")
BAD_LINE(mail_size_range, "smtp_max_size 2g",
    "5:15: smtp_max_size: 2g is out of range (1k to 1g)")
BAD_LINE(mail_count_unit, "smtp_max_recipients 1k",
    "5:21: smtp_max_recipients: bad number \"1k\": use digits only, no "
    "sign or unit")
BAD_LINE(auth_count_range, "totp_skew 4",
    "5:11: totp_skew: 4 is out of range (0 to 3)")
BAD_LINE(mail_bool_word, "smtp_relay_verify maybe",
    "5:19: smtp_relay_verify: expected on or off, not \"maybe\"")
BAD_LINE(auth_missing_value, "login_threads",
    "5:1: login_threads: missing value; usage: login_threads COUNT")
BAD_LINE(mail_extra_value, "smtp_timeout 5s 6s",
    "5:17: smtp_timeout: unexpected extra value \"6s\"; usage: "
    "smtp_timeout DURATION")

/* ---- other values ---- */
BAD_LINE(user_missing, "user no-such-user-pbxgate",
    "5:6: user: no such user \"no-such-user-pbxgate\"")
BAD_LINE(server_name_bad, "server_name pbx..example",
    "5:13: server_name: \"pbx..example\" is not a valid host name")
BAD_LINE(policy_missing, "policy nope.policy",
    "5:8: policy: {D}/nope.policy: cannot open: No such file or directory")
BAD_LINE(policy_directory, "policy /tmp",
    "5:8: policy: /tmp: not a regular file (directory)")
BAD_LINE(log_dir_missing, "access_log nodir/access.log",
    "5:12: access_log: directory {D}/nodir does not exist")
BAD_LINE(error_log_off, "error_log off",
    "5:11: error_log cannot be off: give a PATH or - for the standard stream")
BAD_LINE(empty_quoted_path, "policy \"\"", "5:8: policy: empty path")

/* ---- CIDR ---- */
BAD_LINE(cidr_bad_address, "trusted_proxy 10.0.0/8",
    "5:15: trusted_proxy: bad address '10.0.0/8' (expected an IPv4 or IPv6 "
    "address, optionally with /LEN)")
BAD_LINE(cidr_v4_plen, "trusted_proxy 10.0.0.0/33",
    "5:15: trusted_proxy: bad prefix length in '10.0.0.0/33' (IPv4 takes /0 "
    "to /32, no leading zeros)")
BAD_LINE(cidr_v6_plen, "trusted_proxy ::/129",
    "5:15: trusted_proxy: bad prefix length in '::/129' (IPv6 takes /0 to "
    "/128, no leading zeros)")
BAD_LINE(cidr_empty_plen, "trusted_proxy 10.0.0.0/",
    "5:15: trusted_proxy: bad prefix length in '10.0.0.0/' (IPv4 takes /0 "
    "to /32, no leading zeros)")
/* Host bits: an error, as in smtp_allow, policies and lockdowns. */
BAD_LINE(cidr_host_bits, "trusted_proxy 10.1.2.3/8",
    "5:15: trusted_proxy: '10.1.2.3/8' has host bits set: write 10.0.0.0/8 "
    "for the network, or 10.1.2.3 alone for the one address")
BAD_LINE(proxy_protocol_untrusted, "proxy_protocol on",
    "5:16: proxy_protocol on needs at least one trusted_proxy: PROXY "
    "headers are only read from them")

Test(config, cidr_match)
{
	static const struct {
		const char *cidr, *addr;
		bool match;
	} cases[] = {
		{ "10.0.0.0/8", "10.200.1.1", true },
		{ "10.0.0.0/8", "11.0.0.1", false },
		{ "10.0.0.0/8", "::ffff:10.0.0.1", true },
		{ "192.168.1.7", "192.168.1.7", true },
		{ "192.168.1.7", "192.168.1.8", false },
		{ "0.0.0.0/0", "203.0.113.9", true },
		{ "0.0.0.0/0", "2001:db8::1", false },
		{ "2001:db8::/32", "2001:db8:ffff::1", true },
		{ "2001:db8::/32", "2001:db9::1", false },
		{ "::/0", "2001:db8::1", true },
		{ "172.16.0.0/12", "172.31.255.255", true },
		{ "172.16.0.0/12", "172.32.0.0", false },
		{ "fe80::/10", "febf::1", true },
		{ "fe80::/10", "fec0::1", false },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET };
		struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
		const struct sockaddr *sa;
		struct pol_cidr cidr;
		char err[256];

		cr_assert_eq(pol_cidr_parse(cases[i].cidr, &cidr, err,
		    sizeof(err)), 0, "%s: %s", cases[i].cidr, err);
		if (inet_pton(AF_INET, cases[i].addr, &sin.sin_addr) == 1)
			sa = (const struct sockaddr *)&sin;
		else {
			cr_assert_eq(inet_pton(AF_INET6, cases[i].addr,
			    &sin6.sin6_addr), 1);
			sa = (const struct sockaddr *)&sin6;
		}
		cr_assert_eq(pol_cidr_list_contains(&cidr, 1, sa),
		    cases[i].match, "%s in %s", cases[i].addr, cases[i].cidr);
	}
	cr_assert_not(pol_cidr_list_contains(NULL, 0, NULL));
}

Test(config, too_many_listens)
{
	char text[2048] = BASE;
	struct gw_config *c;
	int i;

	for (i = 1; i <= GW_MAX_LISTEN; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
		    "listen 127.0.0.2:%d\n", 9000 + i);
	c = load_text(text);
	expect_one(false, "20:1: listen: too many listen lines (max 16)");
	cr_assert_null(c);
}

/* ---- cross-checks ---- */
Test(config, listen_missing)
{
	struct gw_config *c = load_text("tls_cert cert.pem\ntls_key key.pem\n"
	    "upstream http://127.0.0.1:5000\n");

	expect_one(false, "1:1: no listen address: add e.g. \"listen "
	    "127.0.0.1:8443\"");
	cr_assert_null(c);
}

Test(config, upstream_missing)
{
	struct gw_config *c = load_text(BASE_NOUP);

	expect_one(false, "1:1: no upstream: add e.g. \"upstream "
	    "http://127.0.0.1:5000\"");
	cr_assert_null(c);
}

Test(config, certs_missing)
{
	struct gw_config *c = load_text("listen 127.0.0.1:8443\n"
	    "upstream http://127.0.0.1:5000\n");

	expect_one(false, "1:1: no tls_cert/tls_key pair: pbxgate serves "
	    "HTTPS only; add tls_cert FILE and tls_key FILE");
	cr_assert_null(c);
}

BAD_LINE(tls_cert_without_key, "tls_cert cert.pem",
    "5:10: tls_cert {D}/cert.pem has no matching tls_key (certificates and "
    "keys pair in order)")
BAD_LINE(tls_key_without_cert, "tls_key key.pem",
    "5:9: tls_key {D}/key.pem has no matching tls_cert (certificates and "
    "keys pair in order)")
BAD_LINE(tls_cert_missing_file, "tls_cert nope.pem",
    "5:10: tls_cert: {D}/nope.pem: cannot open: No such file or directory")
BAD_LINE(upstream_ca_with_http, "upstream_ca cert.pem",
    "5:13: upstream_ca is set but upstream http://127.0.0.1:5000 does not "
    "use TLS")

Test(config, upstream_plain_http_to_network_warns)
{
	struct gw_config *c = load_text(BASE_NOUP
	    "upstream http://192.0.2.10:5000\n");

	expect_one(true, "4:10: upstream http://192.0.2.10:5000 is plain HTTP "
	    "to another host: logins cross the network in clear; use https:// "
	    "unless the link is private");
	cr_assert_not_null(c);
	gw_config_unref(c);
}

Test(config, upstream_plain_http_to_loopback_silent)
{
	static const char *const urls[] = { "http://localhost:5000",
	    "http://127.0.0.2", "http://[::1]:5000" };
	char text[256];
	size_t i;

	for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		struct gw_config *c;

		snprintf(text, sizeof(text), BASE_NOUP "upstream %s\n", urls[i]);
		c = load_text(text);
		cr_assert_eq(got.n, 0, "%s: %s", urls[i], got.m[0]);
		gw_config_unref(c);
	}
}

Test(config, world_writable_file_warns)
{
	char path[256];
	struct gw_config *c;

	wfile("main.conf", BASE);
	snprintf(path, sizeof(path), "%s/main.conf", dir);
	cr_assert_eq(chmod(path, 0666), 0);
	c = gw_config_load(path, false, collect, &got);
	cr_assert_not_null(c);
	cr_assert_eq(got.n, 1);
	cr_assert(got.warn[0]);
	{
		char want[600];
		snprintf(want, sizeof(want), "%s: %s is writable by every user: "
		    "chmod o-w", path, path);
		cr_assert_str_eq(got.m[0], want);
	}
	gw_config_unref(c);
}

Test(config, too_many_values_on_a_line)
{
	char text[1024] = BASE "server_name";
	struct gw_config *c;
	int i;

	for (i = 0; i < 64; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), " x");
	snprintf(text + strlen(text), sizeof(text) - strlen(text), "\n");
	c = load_text(text);
	/* keyword + 63 values fit; the 64th value starts at column 139 */
	expect_one(false, "5:139: too many values on one line (max 63)");
	cr_assert_null(c);
}

Test(config, upstream_verify_off_warns)
{
	struct gw_config *c = load_text(BASE_NOUP "upstream https://pbx.example\n"
	    "upstream_verify off\n");

	expect_one(true, "5:17: upstream_verify off: the certificate of "
	    "https://pbx.example is not checked, anyone on the path can "
	    "impersonate it");
	cr_assert_not_null(c);
	cr_assert_not(c->upstream.verify);
	gw_config_unref(c);
}

/* ---- file syntax ---- */
static void
mkdir_in(const char *sub)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	cr_assert_eq(mkdir(path, 0700), 0);
}

Test(config, quoted_strings)
{
	struct gw_config *c;
	char want[256];

	mkdir_in("my dir");
	wfile("my dir/a \"b\" \\c.pem", "x\n");
	c = load_text(BASE "policy \"my dir/a \\\"b\\\" \\\\c.pem\"   # q\n");
	cr_assert_eq(got.n, 0, "%s", got.m[0]);
	cr_assert_not_null(c);
	snprintf(want, sizeof(want), "%s/my dir/a \"b\" \\c.pem", dir);
	cr_assert_str_eq(c->policy_file, want);
	gw_config_unref(c);
}

BAD_LINE(quote_unterminated, "server_name \"pbx",
    "5:13: unterminated quoted string")
BAD_LINE(quote_bad_escape, "server_name \"p\\nbx\"",
    "5:15: unknown escape \"\\n\" in quoted string (only \\\" and \\\\)")
BAD_LINE(quote_glued, "server_name \"pbx\"x",
    "5:18: blank expected after closing quote")
BAD_LINE(quote_inside_value, "server_name pb\"x\"",
    "5:15: '\"' inside a value: quote the whole value")
BAD_LINE(hash_inside_value, "server_name pbx#1",
    "5:16: '#' inside a value: quote the whole value or put a blank before "
    "the comment")
BAD_LINE(hash_quoted_is_data, "server_name \"pbx#1\"",
    "5:13: server_name: \"pbx#1\" is not a valid host name")

Test(config, comments_and_blanks)
{
	struct gw_config *c = load_text("# a comment\n\n   \t\n"
	    "listen 127.0.0.1:8443   # trailing comment\n"
	    "tls_cert cert.pem\t#tab then comment\n"
	    "tls_key key.pem #\n"
	    "   # indented comment\n"
	    "upstream http://127.0.0.1:5000 #\"unbalanced quote in comment\n"
	    "workers 3 # three\n"
	    "#");

	cr_assert_eq(got.n, 0, "%s", got.m[0]);
	cr_assert_not_null(c);
	cr_assert_eq(c->workers, 3);
	cr_assert_eq(c->nlisten, 1);
	gw_config_unref(c);
}

Test(config, crlf_accepted)
{
	struct gw_config *c = load_text("listen 127.0.0.1:8443\r\n"
	    "tls_cert cert.pem\r\ntls_key key.pem\r\n"
	    "upstream http://127.0.0.1:5000\r\nworkers 3\r\n");

	cr_assert_eq(got.n, 0, "%s", got.m[0]);
	cr_assert_not_null(c);
	cr_assert_eq(c->workers, 3);
	gw_config_unref(c);
}

Test(config, nul_byte)
{
	static const char text[] = BASE "workers 2\0x\n";
	char path[256];
	struct gw_config *c;
	int fd;

	snprintf(path, sizeof(path), "%s/main.conf", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, sizeof(text) - 1),
	    (ssize_t)sizeof(text) - 1);
	close(fd);
	c = gw_config_load(path, false, collect, &got);
	expect_one(false, "5:10: NUL byte in the configuration");
	cr_assert_null(c);
}

BAD_LINE(invalid_utf8, "server_name caf\xc3\x28",
    "5:16: invalid UTF-8 in the configuration")
BAD_LINE(overlong_utf8, "# \xc0\xaf", "5:3: invalid UTF-8 in the configuration")
BAD_LINE(surrogate_utf8, "# \xed\xa0\x80",
    "5:3: invalid UTF-8 in the configuration")
BAD_LINE(truncated_utf8, "# \xe2\x82", "5:3: invalid UTF-8 in the configuration")
BAD_LINE(control_char, "workers\x1b 2",
    "5:8: control character 0x1b in the configuration")
BAD_LINE(valid_utf8_bad_name, "server_name \xc3\xbc # \xc3\xa9",
    "5:13: server_name: \"\xc3\xbc\" is not a valid host name")

static char *
long_line_file(size_t comment_len)
{
	size_t base = strlen(BASE);
	char *text = malloc(base + 2 + comment_len + 2);

	cr_assert_not_null(text);
	memcpy(text, BASE "# ", base + 2);
	memset(text + base + 2, 'x', comment_len);
	text[base + 2 + comment_len] = '\n';
	text[base + 2 + comment_len + 1] = '\0';
	return text;
}

Test(config, long_line)
{
	char *text = long_line_file(4095);	/* 4097 bytes */
	struct gw_config *c = load_text(text);

	free(text);
	expect_one(false, "5:4097: line longer than 4096 bytes");
	cr_assert_null(c);
}

Test(config, line_of_exactly_4096_bytes)
{
	char *text = long_line_file(4094);
	struct gw_config *c = load_text(text);

	free(text);
	cr_assert_eq(got.n, 0, "%s", got.m[0]);
	cr_assert_not_null(c);
	gw_config_unref(c);
}

/* 1 MiB of comment lines is accepted; one byte more is refused. */
static struct gw_config *
load_sized(size_t size)
{
	char path[256], line[64];
	struct gw_config *c;
	size_t n = strlen(BASE);
	FILE *f;

	snprintf(path, sizeof(path), "%s/main.conf", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(BASE, f);
	memset(line, 'x', sizeof(line));
	line[0] = '#';
	line[sizeof(line) - 1] = '\n';
	for (; n + sizeof(line) <= size; n += sizeof(line))
		fwrite(line, 1, sizeof(line), f);
	for (; n < size; n++)
		fputc('\n', f);
	fclose(f);
	c = gw_config_load(path, false, collect, &got);
	return c;
}

Test(config, file_of_exactly_1mib)
{
	struct gw_config *c = load_sized(1024 * 1024);

	cr_assert_eq(got.n, 0, "%s", got.m[0]);
	cr_assert_not_null(c);
	gw_config_unref(c);
}

Test(config, file_over_1mib)
{
	struct gw_config *c = load_sized(1024 * 1024 + 1);
	char want[300];

	cr_assert_null(c);
	cr_assert_eq(got.n, 1);
	snprintf(want, sizeof(want), "%s/main.conf: larger than 1048576 "
	    "bytes", dir);
	cr_assert_str_eq(got.m[0], want);
}

Test(config, every_error_reported)
{
	struct gw_config *c = load_text(BASE "foo\nworkers 0\nbar 1\n"
	    "header_timeout 1x\n");
	char want[256];

	cr_assert_null(c);
	cr_assert_eq(got.n, 4);
	snprintf(want, sizeof(want), "%s/main.conf:8:16: header_timeout: bad "
	    "duration \"1x\": unknown unit \"x\"" DUR_HINT, dir);
	cr_assert_str_eq(got.m[3], want);
}

/* ---- include ---- */
Test(config, include_relative_path)
{
	struct gw_config *c;
	char want[256];

	mkdir_in("conf.d");
	wfile("conf.d/tls.conf", "tls_cert ../cert.pem\ntls_key ../key.pem\n"
	    "include more.conf\n");
	wfile("conf.d/more.conf", "geoip_db geo.mmdb\npolicy geo.mmdb\n");
	wfile("conf.d/geo.mmdb", "x");
	c = load_text("listen 127.0.0.1:8443\ninclude conf.d/tls.conf\n"
	    "upstream http://127.0.0.1:5000\n");
	cr_assert_eq(got.n, 0, "%s", got.m[0]);
	cr_assert_not_null(c);
	snprintf(want, sizeof(want), "%s/conf.d/../cert.pem", dir);
	cr_assert_str_eq(c->certs[0].cert_file, want);
	snprintf(want, sizeof(want), "%s/conf.d/geo.mmdb", dir);
	cr_assert_str_eq(c->geoip_db, want);
	cr_assert_eq(c->ncerts, 1);
	gw_config_unref(c);
}

Test(config, include_error_names_included_file)
{
	struct gw_config *c;
	char want[256];

	wfile("inc.conf", "\n  bogus 1\n");
	c = load_text(BASE "include inc.conf\n");
	cr_assert_null(c);
	cr_assert_eq(got.n, 1);
	snprintf(want, sizeof(want), "%s/inc.conf:2:3: unknown keyword "
	    "\"bogus\"", dir);
	cr_assert_str_eq(got.m[0], want);
}

BAD_LINE(include_missing, "include nope.conf",
    "5:9: {D}/nope.conf: cannot open: No such file or directory")
BAD_LINE(include_directory, "include /tmp",
    "5:9: /tmp: not a regular file (directory)")
/* Every file the config names: a FIFO, a socket, a directory and a
 * character device are refused at the path, before any read (a FIFO used
 * to block the loader forever). */
#define NOT_REGULAR(name, kw, col, prefix)				\
BAD_LINE(name##_fifo, kw " fifo",					\
    "5:" col ": " prefix "{D}/fifo: not a regular file (fifo)")	\
BAD_LINE(name##_socket, kw " sock",					\
    "5:" col ": " prefix "{D}/sock: not a regular file (socket)")	\
BAD_LINE(name##_dir, kw " /tmp",					\
    "5:" col ": " prefix "/tmp: not a regular file (directory)")	\
BAD_LINE(name##_dev_zero, kw " /dev/zero",				\
    "5:" col ": " prefix "/dev/zero: not a regular file (character "	\
    "device)")
NOT_REGULAR(include_not_regular, "include", "9", "")
NOT_REGULAR(tls_cert_not_regular, "tls_cert", "10", "tls_cert: ")
NOT_REGULAR(tls_key_not_regular, "tls_key", "9", "tls_key: ")
NOT_REGULAR(policy_not_regular, "policy", "8", "policy: ")
NOT_REGULAR(geoip_db_not_regular, "geoip_db", "10", "geoip_db: ")
NOT_REGULAR(user_db_not_regular, "user_db", "9", "user_db: ")
NOT_REGULAR(secret_key_not_regular, "secret_key", "12", "secret_key: ")
NOT_REGULAR(scrub_rules_not_regular, "scrub_rules", "13", "scrub_rules: ")
NOT_REGULAR(upstream_ca_not_regular, "upstream_ca", "13", "upstream_ca: ")
NOT_REGULAR(smtp_auth_not_regular, "smtp_auth u", "13", "smtp_auth: ")
NOT_REGULAR(smtp_relay_auth_not_regular, "smtp_relay_auth u", "19",
    "smtp_relay_auth: ")
BAD_LINE(include_self, "include main.conf",
    "5:9: include loop: {D}/main.conf is already being read")

Test(config, include_loop)
{
	struct gw_config *c;
	char want[256];

	wfile("a.conf", "include b.conf\n");
	wfile("b.conf", "\ninclude a.conf\n");
	c = load_text(BASE "include a.conf\n");
	cr_assert_null(c);
	cr_assert_eq(got.n, 1);
	snprintf(want, sizeof(want), "%s/b.conf:2:9: include loop: "
	    "%s/a.conf is already being read", dir, dir);
	cr_assert_str_eq(got.m[0], want);
}

Test(config, include_too_deep)
{
	struct gw_config *c;
	char name[32], body[64], want[256];
	int i;

	for (i = 0; i < GW_MAX_INCLUDE_DEPTH; i++) {
		snprintf(name, sizeof(name), "d%d.conf", i);
		snprintf(body, sizeof(body), "include d%d.conf\n", i + 1);
		wfile(name, body);
	}
	snprintf(name, sizeof(name), "d%d.conf", GW_MAX_INCLUDE_DEPTH);
	wfile(name, "workers 2\n");
	c = load_text(BASE "include d0.conf\n");
	cr_assert_null(c);
	cr_assert_eq(got.n, 1);
	snprintf(want, sizeof(want), "%s/d%d.conf:1:1: include: nested more "
	    "than %d deep", dir, GW_MAX_INCLUDE_DEPTH - 1, GW_MAX_INCLUDE_DEPTH);
	cr_assert_str_eq(got.m[0], want);
}

Test(config, relative_main_path_stored_absolute)
{
	char cwd[256], want[300];
	struct gw_config *c;

	wfile("main.conf", BASE);
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	cr_assert_eq(chdir(dir), 0);
	c = gw_config_load("main.conf", false, collect, &got);
	cr_assert_eq(chdir(cwd), 0);
	cr_assert_not_null(c, "%s", got.m[0]);
	snprintf(want, sizeof(want), "%s/main.conf", dir);
	cr_assert_str_eq(c->path, want);
	assert_path(c->certs[0].cert_file, "cert.pem");
	gw_config_unref(c);
}

Test(config, unreadable_main_file)
{
	char path[256], want[300];

	snprintf(path, sizeof(path), "%s/none.conf", dir);
	cr_assert_null(gw_config_load(path, false, collect, &got));
	cr_assert_eq(got.n, 1);
	snprintf(want, sizeof(want), "%s: cannot open: No such file or "
	    "directory", path);
	cr_assert_str_eq(got.m[0], want);
}

Test(config, buffer_refuses_include)
{
	static const char text[] = "\n\n\n\ninclude x.conf\n";
	struct gw_config *c = gw_config_parse_buffer("buf", text,
	    sizeof(text) - 1, collect, &got);

	cr_assert_null(c);
	cr_assert_eq(got.n, 1);
	cr_assert_str_eq(got.m[0], "buf:5:1: include: not available here");
}

/* ---- a full valid file ---- */
Test(config, defaults)
{
	struct gw_config c;

	gw_config_defaults(&c);
	cr_assert_eq(c.to.header, 10000);
	cr_assert_eq(c.to.body, 30000);
	cr_assert_eq(c.to.idle, 60000);
	cr_assert_eq(c.to.upstream_connect, 5000);
	cr_assert_eq(c.to.upstream, 60000);
	cr_assert_eq(c.to.ws_idle, 3600000);
	cr_assert_eq(c.to.shutdown, 10000);
	cr_assert_eq(c.to.tls_handshake, 10000);
	cr_assert_eq(c.lim.request_line, 8192);
	cr_assert_eq(c.lim.header_size, 8192);
	cr_assert_eq(c.lim.header_total, 32768);
	cr_assert_eq(c.lim.headers, 100);
	cr_assert_eq(c.lim.body, 100ull << 20);
	cr_assert_eq(c.lim.connections, 10000);
	cr_assert_eq(c.lim.connections_per_ip, 256);
	cr_assert_eq(c.lim.upstream_keepalive, 64);
	cr_assert_eq(c.lim.requests_per_conn, 1000);
	cr_assert(c.hsts);
	cr_assert_eq(c.hsts_max_age, 31536000);
	cr_assert(c.upstream.verify);
	cr_assert_geq(c.workers, 1);
	cr_assert_leq(c.workers, 64);
	cr_assert_null(c.access_log);
	auth_settings_free(&c.auth);
	mail_settings_free(&c.mail);
}

static const char full_text[] =
    "listen 127.0.0.1:8443\n"
    "listen [::1]:8443\n"
    "listen *:9443\n"
    "listen [::]:10443\n"
    "admin_listen 127.0.0.1:9100\n"
    "tls_cert cert.pem\ntls_key key.pem\n"
    "tls_cert c2.pem\ntls_key k2.pem\n"
    "upstream https://pbx.example:5001/\n"
    "upstream_ca ca.pem\n"
    "upstream_verify on\n"
    "trusted_proxy 10.0.0.0/8\n"
    "trusted_proxy 2001:db8::/32\n"
    "proxy_protocol on\n"
    "workers 4\n"
    "user root\n"
    "access_log -\n"
    "error_log logs/err.log\n"
    "audit_log off\n"
    "server_name pbx.example.com\n"
    "hsts off\n"
    "hsts_max_age 600\n"
    "header_timeout 250ms\n"
    "body_timeout 20s\n"
    "idle_timeout 2m\n"
    "upstream_connect_timeout 3\n"
    "upstream_timeout 1h\n"
    "websocket_idle_timeout 2h\n"
    "shutdown_timeout 0\n"
    "tls_handshake_timeout 5s\n"
    "max_request_line 4k\n"
    "max_header_size 4096\n"
    "max_headers_size 1m\n"
    "max_headers 50\n"
    "max_body_size 0\n"
    "max_connections 500\n"
    "max_connections_per_ip 20\n"
    "upstream_keepalive 0\n"
    "max_requests_per_connection 10\n"
    "policy p.policy\n"
    "geoip_db geo.mmdb\n";

static void
check_full_addresses(const struct gw_config *c)
{
	const struct sockaddr_in6 *s6;
	const struct sockaddr_in *s4;

	cr_assert_eq(c->nlisten, 4);
	s4 = (const struct sockaddr_in *)&c->listen[0].ss;
	cr_assert_eq(s4->sin_family, AF_INET);
	cr_assert_eq(ntohs(s4->sin_port), 8443);
	cr_assert_eq(ntohl(s4->sin_addr.s_addr), INADDR_LOOPBACK);
	cr_assert_eq(c->listen[0].sslen, sizeof(struct sockaddr_in));
	s6 = (const struct sockaddr_in6 *)&c->listen[1].ss;
	cr_assert_eq(s6->sin6_family, AF_INET6);
	cr_assert(IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr));
	cr_assert_eq(c->listen[1].sslen, sizeof(struct sockaddr_in6));
	s4 = (const struct sockaddr_in *)&c->listen[2].ss;
	cr_assert_eq(s4->sin_addr.s_addr, htonl(INADDR_ANY));
	cr_assert_str_eq(c->listen[2].text, "*:9443");
	s6 = (const struct sockaddr_in6 *)&c->listen[3].ss;
	cr_assert(IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr));
	cr_assert_eq(ntohs(s6->sin6_port), 10443);
	cr_assert(c->has_admin);
	cr_assert_str_eq(c->admin_listen.text, "127.0.0.1:9100");
	cr_assert_eq(c->ntrusted, 2);
	cr_assert_eq(c->trusted[0].len, 104);
	cr_assert_eq(c->trusted[1].len, 32);
}

static void
check_full_numbers(const struct gw_config *c)
{
	cr_assert_eq(c->workers, 4);
	cr_assert_not(c->hsts);
	cr_assert_eq(c->hsts_max_age, 600);
	cr_assert_eq(c->to.header, 250);
	cr_assert_eq(c->to.body, 20000);
	cr_assert_eq(c->to.idle, 120000);
	cr_assert_eq(c->to.upstream_connect, 3000);
	cr_assert_eq(c->to.upstream, 3600000);
	cr_assert_eq(c->to.ws_idle, 7200000);
	cr_assert_eq(c->to.shutdown, 0);
	cr_assert_eq(c->to.tls_handshake, 5000);
	cr_assert_eq(c->lim.request_line, 4096);
	cr_assert_eq(c->lim.header_size, 4096);
	cr_assert_eq(c->lim.header_total, 1048576);
	cr_assert_eq(c->lim.headers, 50);
	cr_assert_eq(c->lim.body, 0);
	cr_assert_eq(c->lim.connections, 500);
	cr_assert_eq(c->lim.connections_per_ip, 20);
	cr_assert_eq(c->lim.upstream_keepalive, 0);
	cr_assert_eq(c->lim.requests_per_conn, 10);
}

static void
assert_path(const char *got_path, const char *rel)
{
	char want[256];

	snprintf(want, sizeof(want), "%s/%s", dir, rel);
	cr_assert_str_eq(got_path, want);
}

Test(config, full_valid)
{
	struct gw_config *c;

	wfile("ca.pem", "x\n");
	wfile("c2.pem", "x\n");
	wfile("k2.pem", "x\n");
	wfile("p.policy", "x\n");
	wfile("geo.mmdb", "x\n");
	mkdir_in("logs");
	c = load_text(full_text);
	cr_assert_eq(got.n, 0, "%s", got.m[0]);
	cr_assert_not_null(c);
	cr_assert_eq(c->refs, 1);
	cr_assert_geq(c->generation, 1);
	check_full_addresses(c);
	check_full_numbers(c);
	cr_assert_eq(c->ncerts, 2);
	assert_path(c->certs[0].cert_file, "cert.pem");
	assert_path(c->certs[1].key_file, "k2.pem");
	cr_assert(c->upstream.tls);
	cr_assert_eq(c->upstream.port, 5001);
	assert_path(c->upstream.ca_file, "ca.pem");
	cr_assert(c->upstream.verify);
	cr_assert(c->proxy_protocol);
	cr_assert_str_eq(c->user, "root");
	cr_assert_str_eq(c->access_log, "-");
	assert_path(c->error_log, "logs/err.log");
	cr_assert_null(c->audit_log);
	cr_assert_str_eq(c->server_name, "pbx.example.com");
	assert_path(c->policy_file, "p.policy");
	assert_path(c->geoip_db, "geo.mmdb");
	cr_assert_null(c->policy);	/* no runtime built */
	cr_assert_null(c->tls);
	cr_assert_null(c->upstream_tls);
	cr_assert_eq(gw_config_ref(c), c);
	cr_assert_eq(c->refs, 2);
	gw_config_unref(c);
	gw_config_unref(c);
}

Test(config, workers_auto)
{
	struct gw_config *c = load_text(BASE "workers auto\n");
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	cr_assert_not_null(c);
	cr_assert_eq(c->workers, n > 64 ? 64 : n < 1 ? 1 : n);
	gw_config_unref(c);
}

Test(config, module_keyword_unknown_to_all)
{
	struct gw_config *c = load_text(BASE "smtp_listenx 127.0.0.1:2525\n");

	expect_one(false, "5:1: unknown keyword \"smtp_listenx\"");
	cr_assert_null(c);
}

/* ---- runtime (real certificates from the openssl CLI) ---- */
static void
make_cert(const char *name)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "cd '%s' && openssl req -x509 -newkey ec "
	    "-pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=%s "
	    "-addext subjectAltName=DNS:%s -keyout %s.key -out %s.crt "
	    ">/dev/null 2>&1", dir, name, name, name, name);
	/* a fixed command line of our own making, in a test */
	cr_assert_eq(system(cmd), 0, "openssl failed");	/* NOLINT(cert-env33-c) */
}

Test(config, runtime_builds_tls)
{
	char path[256];
	struct gw_config *c;

	make_cert("pbx.test");
	wfile("main.conf", "listen 127.0.0.1:8443\ntls_cert pbx.test.crt\n"
	    "tls_key pbx.test.key\nupstream https://127.0.0.1:5001\n"
	    "upstream_ca pbx.test.crt\n");
	snprintf(path, sizeof(path), "%s/main.conf", dir);
	c = gw_config_load(path, true, collect, &got);
	cr_assert_eq(got.n, 0, "%s", got.m[0]);
	cr_assert_not_null(c);
	cr_assert_not_null(c->tls);
	cr_assert_not_null(c->upstream_tls);
	gw_config_unref(c);
}

Test(config, runtime_bad_key_blames_its_line)
{
	char path[256];
	struct gw_config *c;

	make_cert("pbx.test");
	wfile("bad.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n"
	    "-----END PRIVATE KEY-----\n");
	wfile("main.conf", "listen 127.0.0.1:8443\ntls_cert pbx.test.crt\n"
	    "tls_key   bad.key\nupstream http://127.0.0.1:5000\n");
	snprintf(path, sizeof(path), "%s/main.conf", dir);
	c = gw_config_load(path, true, collect, &got);
	cr_assert_null(c);
	cr_assert_eq(got.n, 1);
	{
		char want[256];
		snprintf(want, sizeof(want), "%s/main.conf:3:11: tls_key", dir);
		cr_assert(strncmp(got.m[0], want, strlen(want)) == 0, "%s",
		    got.m[0]);
		cr_assert(strstr(got.m[0], "/bad.key") != NULL, "%s", got.m[0]);
	}
}

/* ---- pbxgate check: exact stderr and exit status ---- */
static void
setup_check(void)
{
	setup();
	cr_redirect_stderr();
}

TestSuite(check, .init = setup_check, .fini = teardown);

static int
run_check(const char *conf_text, char *path, size_t pathlen)
{
	char *argv[] = { "check", NULL };

	snprintf(path, pathlen, "%s/main.conf", dir);
	if (conf_text != NULL)
		wfile("main.conf", conf_text);
	return gw_cmd_check(path, 1, argv);
}

Test(check, valid_exit_0)
{
	char path[256], want[1024];

	make_cert("pbx.test");
	cr_assert_eq(run_check("listen 127.0.0.1:8443\ntls_cert pbx.test.crt\n"
	    "tls_key pbx.test.key\nupstream http://127.0.0.1:5000\n", path,
	    sizeof(path)), 0);
	fflush(stderr);
	snprintf(want, sizeof(want), "%s: configuration is valid\n", path);
	cr_assert_stderr_eq_str(want);
}

Test(check, warning_still_valid)
{
	char path[256], want[1024];

	make_cert("pbx.test");
	cr_assert_eq(run_check("listen 127.0.0.1:8443\ntls_cert pbx.test.crt\n"
	    "tls_key pbx.test.key\nupstream https://127.0.0.1:5001\n"
	    "upstream_verify off\n", path, sizeof(path)), 0);
	fflush(stderr);
	snprintf(want, sizeof(want), "%s:5:17: warning: upstream_verify off: "
	    "the certificate of https://127.0.0.1:5001 is not checked, anyone "
	    "on the path can impersonate it\n%s: configuration is valid\n",
	    path, path);
	cr_assert_stderr_eq_str(want);
}

Test(check, errors_exit_1)
{
	char path[256], want[1024];

	cr_assert_eq(run_check(BASE "foo\nworkers 0\n", path, sizeof(path)), 1);
	fflush(stderr);
	snprintf(want, sizeof(want), "%s:5:1: error: unknown keyword \"foo\"\n"
	    "%s:6:9: error: workers: 0 is out of range (1 to 64, or auto)\n"
	    "%s: configuration is NOT valid (2 errors)\n", path, path, path);
	cr_assert_stderr_eq_str(want);
}

Test(check, missing_file_exit_1)
{
	char path[256], want[1024];

	cr_assert_eq(run_check(NULL, path, sizeof(path)), 1);
	fflush(stderr);
	snprintf(want, sizeof(want), "%s: error: cannot open: No such file or "
	    "directory\n%s: configuration is NOT valid (1 error)\n", path,
	    path);
	cr_assert_stderr_eq_str(want);
}

/* Without -c, check reads the compiled-in default (absent in the build). */
Test(check, no_file_checks_default_path)
{
	char *argv[] = { "check", NULL };

	if (access(PBXGATE_DEFAULT_CONF, F_OK) == 0)
		cr_skip_test("%s exists on this machine", PBXGATE_DEFAULT_CONF);
	cr_assert_eq(gw_cmd_check(NULL, 1, argv), 1);
	fflush(stderr);
	cr_assert_stderr_eq_str(PBXGATE_DEFAULT_CONF ": error: cannot open: No "
	    "such file or directory\n" PBXGATE_DEFAULT_CONF ": configuration is "
	    "NOT valid (1 error)\n");
}

/* -c is main.c's (take_config): what reaches check is its own words. */
Test(check, usage_extra_argument_exit_2)
{
	char *argv[] = { "check", "b.conf", NULL };

	cr_assert_eq(gw_cmd_check("a.conf", 2, argv), 2);
	fflush(stderr);
	cr_assert_stderr_eq_str("pbxgate check: unexpected argument \"b.conf\"\n");
}

/* ---- runtime: the policy module's own FILE:LINE:COL pass through ---- */
Test(config, runtime_policy_loaded)
{
	char path[256];
	struct gw_config *c;

	make_cert("pbx.test");
	wfile("p.policy", "allow path ^/public/\n");
	wfile("main.conf", "listen 127.0.0.1:8443\ntls_cert pbx.test.crt\n"
	    "tls_key pbx.test.key\nupstream http://127.0.0.1:5000\n"
	    "policy p.policy\n");
	snprintf(path, sizeof(path), "%s/main.conf", dir);
	c = gw_config_load(path, true, collect, &got);
	cr_assert_eq(got.n, 0, "%s", got.m[0]);
	cr_assert_not_null(c);
	cr_assert_not_null(c->policy);
	gw_config_unref(c);
}

Test(config, runtime_policy_errors_keep_their_location)
{
	char path[256], want[256];
	struct gw_config *c;

	make_cert("pbx.test");
	wfile("p.policy", "allow path ^/public/\nallwo path x\n");
	wfile("main.conf", "listen 127.0.0.1:8443\ntls_cert pbx.test.crt\n"
	    "tls_key pbx.test.key\nupstream http://127.0.0.1:5000\n"
	    "policy p.policy\n");
	snprintf(path, sizeof(path), "%s/main.conf", dir);
	c = gw_config_load(path, true, collect, &got);
	cr_assert_null(c);
	cr_assert_eq(got.n, 1, "%d messages", got.n);
	cr_assert_not(got.warn[0]);
	snprintf(want, sizeof(want), "%s/p.policy:2:1: ", dir);
	cr_assert(strncmp(got.m[0], want, strlen(want)) == 0, "%s", got.m[0]);
}

Test(check, policy_error_gets_level_after_its_location)
{
	char path[256], want[512], out[2048] = "";
	size_t n;
	FILE *f;

	make_cert("pbx.test");
	wfile("p.policy", "allwo path x\n");
	cr_assert_eq(run_check("listen 127.0.0.1:8443\ntls_cert pbx.test.crt\n"
	    "tls_key pbx.test.key\nupstream http://127.0.0.1:5000\n"
	    "policy p.policy\n", path, sizeof(path)), 1);
	fflush(stderr);
	f = cr_get_redirected_stderr();
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	snprintf(want, sizeof(want), "%s/p.policy:1:1: error: ", dir);
	cr_assert(strncmp(out, want, strlen(want)) == 0, "%s", out);
	snprintf(want, sizeof(want), "\n%s: configuration is NOT valid (1 "
	    "error)\n", path);
	cr_assert(strstr(out, want) != NULL, "%s", out);
}

/* ---- every table keyword is in the sample and the documentation ---- */
static char *
read_source(const char *rel)
{
	const char *root = getenv("PBXGATE_SRCDIR");
	char path[512], *buf;
	FILE *f;
	size_t n;

	cr_assert_not_null(root, "PBXGATE_SRCDIR is not set (meson sets it)");
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "r");
	cr_assert_not_null(f, "cannot open %s", path);
	buf = calloc(1, 256 * 1024);
	cr_assert_not_null(buf);
	n = fread(buf, 1, 256 * 1024 - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

Test(config, sample_and_docs_cover_every_keyword)
{
	char *sample = read_source("etc/pbxgate.conf");
	char *docs = read_source("docs/configuration.md");
	const struct pol_keyword *kw;
	char a[96], b[96], d[96];
	size_t i;

	for (i = 0; i < gw_kwtab.n; i++) {
		kw = &gw_kwtab.kw[i];
		if (strcmp(kw->name, "include") == 0) {
			cr_assert(strstr(sample, "include FILE") != NULL);
		} else {
			snprintf(a, sizeof(a), "\n%s ", kw->name);
			snprintf(b, sizeof(b), "\n#%s ", kw->name);
			cr_assert(strstr(sample, a) || strstr(sample, b),
			    "etc/pbxgate.conf lacks %s", kw->name);
		}
		snprintf(d, sizeof(d), "`%s`", kw->name);
		snprintf(a, sizeof(a), "### %s", kw->name);
		cr_assert(strstr(docs, d) || strstr(docs, a),
		    "docs/configuration.md lacks %s", kw->name);
	}
	free(sample);
	free(docs);
}

/* ---- error_log: the system logger and the journal are names, not files ---- */
static void
error_log_value(const char *value, const char *want)
{
	char path[256], text[512];
	struct gw_config *c;

	make_cert("pbx.test");
	snprintf(text, sizeof(text), "listen 127.0.0.1:8443\ntls_cert "
	    "pbx.test.crt\ntls_key pbx.test.key\nupstream "
	    "http://127.0.0.1:5000\nerror_log %s\n", value);
	wfile("main.conf", text);
	snprintf(path, sizeof(path), "%s/main.conf", dir);
	c = gw_config_load(path, false, collect, &got);
	cr_assert_eq(got.n, 0, "%s", got.m[0]);
	cr_assert_not_null(c);
	if (want[0] == '/')
		cr_expect_str_eq(c->error_log + strlen(dir), want);
	else
		cr_expect_str_eq(c->error_log, want);
	gw_config_unref(c);
}

Test(config, error_log_syslog_is_the_logger)
{
	error_log_value("syslog", "syslog");
}

Test(config, error_log_journal_is_the_journal)
{
	error_log_value("journal", "journal");
}

Test(config, error_log_dot_slash_syslog_is_a_file)
{
	error_log_value("./syslog", "/./syslog");	/* the config's folder, as written */
}

/* ---- sites: site NAME { ... } ---- */

/* `check`'s entry point: loads a file with sites (gw_config_load refuses
 * them until requests are routed). Messages joined as "LOC: MSG". */
static void
collect_loc(void *arg, bool warning, const char *loc, const char *msg)
{
	char line[1024];

	snprintf(line, sizeof(line), "%s: %s", loc != NULL ? loc : "-", msg);
	collect(arg, warning, line);
}

static struct gw_config *
load_sites(const char *text, bool runtime)
{
	char path[256];

	wfile("main.conf", text);
	snprintf(path, sizeof(path), "%s/main.conf", dir);
	return gw_config_load_loc(path, runtime, NULL, collect_loc, &got);
}

/* Top level without server_name (lines 1-4); sites from line 5. */
#define SITE_A "site a {\n\tserver_name a.example\n}\n"

#define BAD_SITES(name, text, tail)					\
Test(config, name)							\
{									\
	struct gw_config *c = load_sites(BASE text, false);		\
	expect_one(false, tail);					\
	cr_assert_null(c);						\
}

static const struct gw_site *
site_named(const struct gw_config *c, const char *name)
{
	for (size_t i = 0; i < c->nsites; i++)
		if (strcmp(c->sites[i].name, name) == 0)
			return &c->sites[i];
	cr_assert_fail("no site %s", name);
	return NULL;
}

Test(config, sites_inherit_unless_set)
{
	struct gw_config *c = load_sites(BASE "title \"Top\"\n"
	    "site a {\n\tserver_name a.example A2.example\n}\n"
	    "site b {\n\tserver_name b.example\n"
	    "\tupstream http://127.0.0.1:5001\n\ttitle \"PBX B\"\n"
	    "\ttotp_issuer \"Acme B\"\n\tmax_body_size 1k\n}\n"
	    "max_body_size 2k\ndefault_site b\n", false);
	const struct gw_site *a, *b;

	cr_assert_eq(got.n, 0, "%s", got.m[0]);
	cr_assert_not_null(c);
	cr_assert_eq(c->nsites, 2);
	a = site_named(c, "a");
	b = site_named(c, "b");
	cr_assert_str_eq(a->cfg->upstream.url, "http://127.0.0.1:5000");
	cr_assert_str_eq(b->cfg->upstream.url, "http://127.0.0.1:5001");
	cr_assert_str_eq(a->cfg->auth.title, "Top");
	cr_assert_str_eq(b->cfg->auth.title, "PBX B");
	cr_assert_str_eq(a->cfg->auth.totp_issuer, "pbxgate");
	cr_assert_str_eq(b->cfg->auth.totp_issuer, "Acme B");
	/* a top-level line after the blocks counts for every site */
	cr_assert_eq(a->cfg->lim.body, 2048);
	cr_assert_eq(b->cfg->lim.body, 1024);
	cr_assert_eq(a->cfg->ncerts, 1);
	cr_assert_eq(a->cfg->nserver_names, 2);
	cr_assert_str_eq(a->cfg->server_names[1], "a2.example");
	cr_assert_str_eq(a->file + strlen(dir), "/main.conf");
	cr_assert_eq(a->line, 6);
	cr_assert_str_eq(c->default_site, "b");
	/* what the auth module binds into the site's cookies and tokens */
	cr_assert_str_eq(a->cfg->auth.site, "a");
	cr_assert_str_eq(c->auth.site, "");
	gw_config_unref(c);
}

/* A block's lines of a repeatable keyword are its whole list. */
Test(config, site_repeatable_keyword_replaces_the_list)
{
	struct gw_config *c;

	wfile("b.pem", "x\n");
	wfile("b.key", "x\n");
	c = load_sites(BASE "site b {\n\tserver_name b.example\n"
	    "\ttls_cert b.pem\n\ttls_key b.key\n}\n", false);
	cr_assert_eq(got.n, 0, "%s", got.m[0]);
	cr_assert_not_null(c);
	cr_assert_eq(c->sites[0].cfg->ncerts, 1);
	cr_assert_str_eq(c->sites[0].cfg->certs[0].cert_file + strlen(dir),
	    "/b.pem");
	gw_config_unref(c);
}

/* What `run` loads: sites are served (routing by SNI and Host). */
Test(config, sites_accepted_by_run)
{
	struct gw_config *c = load_text(BASE SITE_A);

	cr_assert_eq(got.n, 0, "%s", got.m[0]);
	cr_assert_not_null(c);
	cr_assert_eq(c->nsites, 1);
	gw_config_unref(c);
}

/* The relay beside sites is each site's: a top-level smtp_listen would
 * not know which site's PBX connected, refused at its own line. */
Test(config, top_smtp_listen_beside_sites_refused)
{
	struct gw_config *c;

	wfile("scrub.rules", "rule pw\n  kind text\n  pattern secret\n"
	    "  action replace\nend\n");
	c = load_text(BASE "smtp_listen 127.0.0.1:2525\n"
	    "smtp_relay 127.0.0.1:2526\nscrub_rules scrub.rules\n" SITE_A);
	expect_one(false, "5:13: smtp_listen at the top level is not served "
	    "beside site blocks: the relay would not know which site's PBX "
	    "connected; put smtp_listen inside each site block that relays "
	    "mail");
	cr_assert_null(c);
}

/* A site inherits the top level's mail settings, never its listener:
 * that one is the block's own line. */
Test(config, site_smtp_inherits_all_but_the_listener)
{
	struct gw_config *c;

	wfile("scrub.rules", "rule pw\n  kind text\n  pattern secret\n"
	    "  action replace\nend\n");
	c = load_sites(BASE "smtp_relay 127.0.0.1:2526\n"
	    "scrub_rules scrub.rules\nsmtp_max_recipients 7\n"
	    "site a {\n\tserver_name a.example\n"
	    "\tsmtp_listen 127.0.0.1:2525\n\tsmtp_max_recipients 9\n}\n"
	    "site b {\n\tserver_name b.example\n}\n", false);
	cr_assert_eq(got.n, 0, "%s", got.m[0]);
	cr_assert_not_null(c);
	cr_assert_eq(c->mail.nlisten, 0);
	cr_assert_eq(c->sites[0].cfg->mail.nlisten, 1);
	cr_assert_str_eq(c->sites[0].cfg->mail.listen_text[0],
	    "127.0.0.1:2525");
	cr_assert_eq(c->sites[0].cfg->mail.max_recipients, 9);
	cr_assert_not_null(c->sites[0].cfg->mail.scrub_rules);
	cr_assert_eq(c->sites[1].cfg->mail.nlisten, 0);
	cr_assert_eq(c->sites[1].cfg->mail.max_recipients, 7);
	gw_config_unref(c);
}

/* 64 smtp_listen addresses in all sites (the workers' listener array):
 * the 65th is refused at its line, naming its site. */
Test(config, smtp_listen_past_the_total_refused)
{
	static char text[16384];
	struct gw_config *c;
	size_t off;

	wfile("scrub.rules", "rule pw\n  kind text\n  pattern secret\n"
	    "  action replace\nend\n");
	off = (size_t)snprintf(text, sizeof(text), BASE "smtp_relay "
	    "127.0.0.1:2526\nscrub_rules scrub.rules\n");
	for (int i = 0; i <= GW_MAX_SMTP_LISTEN && off < sizeof(text); i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
		    "site s%d {\n\tserver_name s%d.example\n"
		    "\tsmtp_listen 127.0.0.1:%d\n}\n", i, i, 3000 + i);
	cr_assert_lt(off, sizeof(text));
	c = load_sites(text, false);
	/* site i's smtp_listen is on line 9 + 4 i */
	expect_one(false, "265:14: site \"s64\": more than 64 smtp_listen "
	    "addresses in all sites");
	cr_assert_null(c);
}

/* Without sites too: one address, one listener. */
Test(config, smtp_listen_twice_refused)
{
	struct gw_config *c;

	wfile("scrub.rules", "rule pw\n  kind text\n  pattern secret\n"
	    "  action replace\nend\n");
	c = load_text(BASE "smtp_relay 127.0.0.1:2526\n"
	    "scrub_rules scrub.rules\nsmtp_listen 127.0.0.1:2525\n"
	    "smtp_listen *:2525\n");
	expect_one(false, "8:13: smtp_listen *:2525 overlaps smtp_listen "
	    "127.0.0.1:2525 at {D}/main.conf:7:13: an address has one "
	    "listener; use another port");
	cr_assert_null(c);
}

/* A site's process-wide values are the top level's: a request read
 * under its site meets the limits and timeouts the file sets. */
Test(config, site_inherits_the_process_limits)
{
	struct gw_config *c = load_sites(BASE "max_headers 7\n"
	    "idle_timeout 3s\nmax_body_size 1k\nupstream_timeout 9s\n"
	    "site a {\n\tserver_name a.example\n\tmax_body_size 2k\n}\n"
	    "site b {\n\tserver_name b.example\n}\n", false);

	cr_assert_eq(got.n, 0, "%s", got.m[0]);
	cr_assert_not_null(c);
	cr_assert_eq(c->sites[0].cfg->lim.headers, 7);
	cr_assert_eq(c->sites[0].cfg->to.idle, 3000);
	cr_assert_eq(c->sites[0].cfg->lim.body, 2048);
	cr_assert_eq(c->sites[1].cfg->lim.body, 1024);
	cr_assert_eq(c->sites[0].cfg->to.upstream, 9000);
	gw_config_unref(c);
}

/* No SNI: default_site, else none (the handshake is refused). */
Test(config, site_for_no_name)
{
	struct gw_config *c = load_sites(BASE SITE_A, false);

	cr_assert_not_null(c);
	cr_assert_null(gw_site_for_name(c, NULL));
	gw_config_unref(c);
	c = load_sites(BASE "default_site a\n" SITE_A, false);
	cr_assert_not_null(c);
	cr_assert_str_eq(gw_site_for_name(c, NULL)->name, "a");
	gw_config_unref(c);
}

Test(config, site_builds_its_tls_context)
{
	struct gw_config *c;

	make_cert("pbx.test");
	make_cert("b.test");
	c = load_sites("listen 127.0.0.1:8443\nupstream http://127.0.0.1:5000\n"
	    "tls_cert pbx.test.crt\ntls_key pbx.test.key\n"
	    "site a {\n\tserver_name a.example\n}\n"
	    "site b {\n\tserver_name b.test\n\ttls_cert b.test.crt\n"
	    "\ttls_key b.test.key\n}\n", true);
	cr_assert_eq(got.n, 0, "%s", got.m[0]);
	cr_assert_not_null(c);
	cr_assert_not_null(c->sites[0].cfg->tls);
	cr_assert_not_null(c->sites[1].cfg->tls);
	cr_assert_null(c->tls);		/* the top level serves nothing */
	gw_config_unref(c);
}

Test(config, site_bad_key_blames_the_site_line)
{
	const char *want;
	struct gw_config *c;

	make_cert("pbx.test");
	wfile("bad.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n"
	    "-----END PRIVATE KEY-----\n");
	c = load_sites("listen 127.0.0.1:8443\nupstream http://127.0.0.1:5000\n"
	    "site a {\n\tserver_name a.example\n\ttls_cert pbx.test.crt\n"
	    "\ttls_key bad.key\n}\n", true);
	cr_assert_null(c);
	cr_assert_eq(got.n, 1, "%s", got.m[0]);
	want = "/main.conf:6:10: site \"a\": tls_key ";
	cr_assert(strncmp(got.m[0] + strlen(dir), want, strlen(want)) == 0,
	    "%s", got.m[0]);
}

BAD_SITES(site_missing_name, "site\n",
    "5:1: site: missing name; usage: site NAME {")
BAD_SITES(site_missing_brace, "site a\n",
    "5:6: site: \"{\" expected after the name; usage: site NAME {")
BAD_SITES(site_brace_glued, "site a{\n",
    "5:6: site: \"{\" expected after the name; usage: site NAME {")
BAD_SITES(site_value_after_brace, "site a { upstream\n}\n",
    "5:10: site: unexpected \"upstream\" after \"{\": a site's settings "
    "go on the lines below it")
BAD_SITES(site_name_leading_hyphen, "site -a {\n}\n",
    "5:6: site: \"-a\" is not a valid site name: 1 to 63 letters, digits, "
    "'-' or '_', starting with a letter or digit")
BAD_SITES(site_name_dot, "site a.b {\n}\n",
    "5:6: site: \"a.b\" is not a valid site name: 1 to 63 letters, digits, "
    "'-' or '_', starting with a letter or digit")
BAD_SITES(site_name_64_bytes, "site "
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa {\n}\n",
    "5:6: site: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaa\" is not a valid site name: 1 to 63 letters, digits, '-' or '_', "
    "starting with a letter or digit")
BAD_SITES(site_name_twice, SITE_A "site a {\n\tserver_name b.example\n}\n",
    "8:6: site \"a\" is already defined at {D}/main.conf:5")
BAD_SITES(site_nested, "site a {\n\tsite b {\n\tserver_name a.example\n}\n",
    "6:2: site blocks do not nest: close site \"a\" (opened at "
    "{D}/main.conf:5) with \"}\" first")
BAD_SITES(site_not_closed, "site a {\n\tserver_name a.example\n",
    "5:1: site \"a\" is not closed: add \"}\" after its last line")
BAD_SITES(site_stray_close, SITE_A "}\n",
    "8:1: \"}\" without an open site block")
BAD_SITES(site_close_extra, "site a {\n\tserver_name a.example\n} x\n",
    "7:3: unexpected \"x\" after \"}\"")
BAD_SITES(site_listen_refused, "site a {\n\tserver_name a.example\n"
    "\tlisten 127.0.0.1:9443\n}\n",
    "7:2: \"listen\" applies to the whole gateway, not to a site")
BAD_SITES(site_workers_refused, "site a {\n\tserver_name a.example\n"
    "\tworkers 2\n}\n",
    "7:2: \"workers\" applies to the whole gateway, not to a site")
BAD_SITES(site_smtp_without_relay, "site a {\n\tserver_name a.example\n"
    "\tsmtp_listen 127.0.0.1:2525\n}\n",
    "7:14: site \"a\": smtp_listen is set but smtp_relay is not: add "
    "'smtp_relay HOST:PORT' (the smarthost)")
BAD_SITES(site_login_threads_refused, "site a {\n\tserver_name a.example\n"
    "\tlogin_threads 4\n}\n",
    "7:2: \"login_threads\" applies to the whole gateway, not to a site")
BAD_SITES(site_include_refused, "site a {\n\tserver_name a.example\n"
    "\tinclude other.conf\n}\n",
    "7:2: include is not available inside a site block: include whole "
    "site blocks from the top level")
BAD_SITES(site_unknown_keyword, "site a {\n\tserver_name a.example\n"
    "\tupstrem http://127.0.0.1:1\n}\n",
    "7:2: unknown keyword \"upstrem\"")
BAD_SITES(site_duplicate_keyword, "site a {\n\tserver_name a.example\n"
    "\tupstream http://127.0.0.1:1\n\tupstream http://127.0.0.1:2\n}\n",
    "8:2: site \"a\": duplicate \"upstream\" (first set at "
    "{D}/main.conf:7)")
BAD_SITES(site_bad_value, "site a {\n\tserver_name a.example\n"
    "\tupstream ftp://x\n}\n",
    "7:11: site \"a\": upstream: \"ftp://x\" must start with http:// or "
    "https://")
BAD_SITES(site_missing_file, "site a {\n\tserver_name a.example\n"
    "\tpolicy nope.policy\n}\n",
    "7:9: site \"a\": policy: {D}/nope.policy: cannot open: No such file "
    "or directory")
BAD_SITES(site_without_server_name, "site a {\n}\n",
    "5:1: site \"a\": no server_name: a site serves the names it lists "
    "(TLS SNI and Host); add server_name NAME... inside the block")
BAD_SITES(site_name_overlap, SITE_A
    "site b {\n\tserver_name b.example A.Example\n}\n",
    "9:24: server_name a.example of site \"b\" is also served by site "
    "\"a\" ({D}/main.conf:6): a name belongs to one site")
BAD_SITES(site_top_server_name, "server_name top.example\n" SITE_A,
    "5:13: server_name at the top level does not apply once there are "
    "site blocks: give each site its own")
BAD_SITES(site_default_unknown, SITE_A "default_site b\n",
    "8:14: default_site: no site is named \"b\"")
BAD_SITES(site_default_without_sites, "default_site a\n",
    "5:14: default_site without site blocks: remove it or add site a "
    "{ ... }")
BAD_SITES(site_bad_title, "title "
    "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n",
    "5:7: title: longer than 64 bytes")
BAD_SITES(site_bad_issuer, "totp_issuer a:b\n",
    "5:13: totp_issuer: \"a:b\" is not an issuer: 1 to 32 letters, digits, "
    "blanks, '.', '-' or '_', no blank at either end")
BAD_SITES(site_issuer_trailing_blank, "totp_issuer \"a \"\n",
    "5:13: totp_issuer: \"a \" is not an issuer: 1 to 32 letters, digits, "
    "blanks, '.', '-' or '_', no blank at either end")

/* A setting no level gives is blamed on the site's line. */
Test(config, site_without_upstream_blames_its_line)
{
	struct gw_config *c = load_sites("listen 127.0.0.1:8443\n"
	    "tls_cert cert.pem\ntls_key key.pem\n" SITE_A, false);

	expect_one(false, "4:1: site \"a\": no upstream: add e.g. \"upstream "
	    "http://127.0.0.1:5000\"");
	cr_assert_null(c);
}

/* A bad top-level line is reported once, not once per site. */
Test(config, site_inherited_error_reported_once)
{
	struct gw_config *c = load_sites("listen 127.0.0.1:8443\n"
	    "tls_cert cert.pem\ntls_key key.pem\nupstream ftp://x\n" SITE_A
	    "site b {\n\tserver_name b.example\n}\n", false);

	expect_one(false, "4:10: upstream: \"ftp://x\" must start with "
	    "http:// or https://");
	cr_assert_null(c);
}

Test(config, sites_at_most_1024)
{
	size_t cap = 1100 * 48, n = 0;
	char *text = malloc(cap);
	struct gw_config *c;

	cr_assert_not_null(text);
	n += (size_t)snprintf(text, cap, BASE);
	for (int i = 0; i < 1025; i++)
		n += (size_t)snprintf(text + n, cap - n, "site s%d {\n"
		    "server_name s%d.example\n}\n", i, i);
	c = load_sites(text, false);
	free(text);
	expect_one(false, "3077:1: too many sites (max 1024)");
	cr_assert_null(c);
}

/* ---- which site serves a name (SNI or Host) ---- */

static const char *
site_for(const struct gw_config *c, const char *name)
{
	const struct gw_site *s = gw_site_for_name(c, name);

	return s != NULL ? s->name : "(refused)";
}

Test(config, site_for_name_listed_any_case_else_refused)
{
	struct gw_config *c = load_sites(BASE SITE_A
	    "site b {\n\tserver_name b.example www.b.example\n}\n", false);

	cr_assert_not_null(c, "%s", got.m[0]);
	cr_expect_str_eq(site_for(c, "a.example"), "a");
	cr_expect_str_eq(site_for(c, "WWW.B.Example"), "b");
	cr_expect_str_eq(site_for(c, "b.example"), "b");
	cr_expect_str_eq(site_for(c, "c.example"), "(refused)");
	cr_expect_str_eq(site_for(c, ""), "(refused)");
	cr_expect_str_eq(site_for(c, "a.example."), "(refused)");
	gw_config_unref(c);
}

Test(config, site_for_name_unknown_goes_to_default_site)
{
	struct gw_config *c = load_sites(BASE SITE_A
	    "site b {\n\tserver_name b.example\n}\ndefault_site b\n", false);
	char longname[400];

	cr_assert_not_null(c, "%s", got.m[0]);
	cr_expect_str_eq(site_for(c, "a.example"), "a");
	cr_expect_str_eq(site_for(c, "nobody.example"), "b");
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_expect_str_eq(site_for(c, longname), "(refused)", "over 253 bytes");
	gw_config_unref(c);
}

Test(config, site_for_name_among_1024_sites)
{
	size_t cap = 1100 * 64, n = 0;
	char *text = malloc(cap), name[32];
	struct gw_config *c;

	cr_assert_not_null(text);
	n += (size_t)snprintf(text, cap, BASE);
	for (int i = 0; i < 1024; i++)
		n += (size_t)snprintf(text + n, cap - n, "site s%d {\n"
		    "server_name s%d.example x%d.example\n}\n", i, i, i);
	c = load_sites(text, false);
	free(text);
	cr_assert_not_null(c, "%s", got.m[0]);
	cr_assert_eq(c->nsite_names, 2048);
	for (int i = 0; i < 1024; i += 97) {
		char want[16];

		snprintf(name, sizeof(name), "x%d.example", i);
		snprintf(want, sizeof(want), "s%d", i);
		cr_expect_str_eq(site_for(c, name), want, "%s", name);
	}
	cr_expect_str_eq(site_for(c, "s1023.example"), "s1023");
	gw_config_unref(c);
}

/* A refused block before them must not shift which lines are blamed. */
Test(config, site_name_overlap_after_a_refused_block)
{
	struct gw_config *c = load_sites(BASE "site -x {\n}\n" SITE_A
	    "site b {\n\tserver_name b.example A.Example\n}\n", false);
	char want[1024];

	cr_assert_null(c);
	cr_assert_eq(got.n, 2, "%s", got.m[0]);
	snprintf(want, sizeof(want), "%s/main.conf:11:24: server_name "
	    "a.example of site \"b\" is also served by site \"a\" "
	    "(%s/main.conf:8): a name belongs to one site", dir, dir);
	cr_assert_str_eq(got.m[1], want);
}

/* Enrolment links of a site must lead to one of its own names. */
Test(config, site_public_url_of_another_name_warns)
{
	struct gw_config *c = load_sites(BASE
	    "public_url https://top.example\n" SITE_A
	    "site b {\n\tserver_name b.example\n"
	    "\tpublic_url https://B.example:8443/\n}\n", false);
	char want[1024];

	cr_assert_not_null(c, "%s", got.m[0]);
	cr_assert_eq(got.n, 1, "%s", got.m[1]);
	cr_assert(got.warn[0]);
	snprintf(want, sizeof(want), "%s/main.conf:5:12: site \"a\": "
	    "public_url https://top.example is not one of the site's "
	    "server_name: its enrolment links would lead to another site; set "
	    "public_url in the site's block", dir);
	cr_assert_str_eq(got.m[0], want);
	gw_config_unref(c);
}
