/* test_mail_scrub.c -- the scrubber: each rule kind, action, transfer
 * encoding and charset, HTML tricks, and the corpus in tests/data/mail. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "mail/mail.h"
#include "mail/mail_html.h"

#define NOTICE "[REMOVED]"

static struct mail_rules *
rules(const char *text)
{
	char err[1024];
	struct mail_rules *r = mail_rules_parse(text, strlen(text), "t.rules",
	    NOTICE, err, sizeof(err));

	cr_assert_not_null(r, "rules did not parse: %s", err);
	return r;
}

/* Every text part decoded to UTF-8 (HTML also as its tag-stripped view),
 * every other part's decoded bytes, and the decoded Subject: what a reader
 * of the message could see. */
static void
collect(GMimeObject *o, GString *out)
{
	if (GMIME_IS_MULTIPART(o)) {
		for (int i = 0; i < g_mime_multipart_get_count(GMIME_MULTIPART(o));
		    i++)
			collect(g_mime_multipart_get_part(GMIME_MULTIPART(o), i),
			    out);
		return;
	}
	if (GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *m = g_mime_message_part_get_message(
		    GMIME_MESSAGE_PART(o));
		if (m == NULL)
			return;
		if (g_mime_message_get_subject(m))
			g_string_append(out, g_mime_message_get_subject(m));
		collect(g_mime_message_get_mime_part(m), out);
		return;
	}
	if (GMIME_IS_TEXT_PART(o)) {
		char *t = g_mime_text_part_get_text(GMIME_TEXT_PART(o));
		struct mail_view v;
		bool toobig;
		g_string_append(out, t);
		g_string_append(out, "\n");
		if (mail_html_view(t, strlen(t), &v, &toobig) == 0) {
			g_string_append_len(out, v.text, (gssize)v.len);
			mail_view_free(&v);
		}
		g_free(t);
		return;
	}
	if (GMIME_IS_PART(o)) {
		GMimeStream *st = g_mime_stream_mem_new();
		GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(o));
		if (w != NULL) {
			g_mime_data_wrapper_write_to_stream(w, st);
			GByteArray *ba = g_mime_stream_mem_get_byte_array(
			    GMIME_STREAM_MEM(st));
			g_string_append_len(out, (const char *)ba->data,
			    (gssize)ba->len);
		}
		g_object_unref(st);
	}
}

static char *
visible(const char *msg, size_t len)
{
	GMimeStream *st = g_mime_stream_mem_new_with_buffer(msg, len);
	GMimeParser *p = g_mime_parser_new_with_stream(st);
	GMimeMessage *m = g_mime_parser_construct_message(p, NULL);
	GString *out = g_string_new("");

	cr_assert_not_null(m, "output does not parse as MIME");
	if (g_mime_message_get_subject(m))
		g_string_append(out, g_mime_message_get_subject(m));
	g_string_append(out, "\n");
	if (g_mime_message_get_mime_part(m))
		collect(g_mime_message_get_mime_part(m), out);
	g_object_unref(m);
	g_object_unref(p);
	g_object_unref(st);
	return g_string_free(out, FALSE);
}

struct run {
	enum mail_verdict        v;
	struct mail_scrub_result res;
	char                    *seen;	/* visible(): g_free */
	const char              *raw;
	size_t                   rawlen;
	char                     err[512];
};

static void
scrub(struct run *r, const char *rules_text, const char *msg)
{
	struct mail_rules *rs = rules(rules_text);

	r->v = mail_scrub(rs, msg, strlen(msg), 0, &r->res, r->err,
	    sizeof(r->err));
	mail_rules_free(rs);
	r->raw = r->v == MAIL_SCRUB_CHANGED ? r->res.out : msg;
	r->rawlen = r->v == MAIL_SCRUB_CHANGED ? r->res.outlen : strlen(msg);
	r->seen = r->v <= MAIL_SCRUB_CHANGED ? visible(r->raw, r->rawlen) :
	    NULL;
}

static void
gone(const struct run *r, const char *secret)
{
	cr_expect_null(memmem(r->raw, r->rawlen, secret, strlen(secret)),
	    "'%s' survives in the raw output:\n%.*s", secret, (int)r->rawlen,
	    r->raw);
	if (r->seen != NULL)
		cr_expect_null(strstr(r->seen, secret),
		    "'%s' survives in the decoded output:\n%s", secret, r->seen);
}

static void
kept(const struct run *r, const char *text)
{
	cr_assert_not_null(r->seen);
	cr_expect_not_null(strstr(r->seen, text),
	    "'%s' was lost:\n%s", text, r->seen);
}

static void
done(struct run *r)
{
	mail_scrub_result_free(&r->res);
	g_free(r->seen);
}

#define HDR "From: pbx@example.com\nTo: a@example.com\n" \
	"Subject: Welcome to extension 100\nMessage-ID: <t1@example.com>\n" \
	"MIME-Version: 1.0\n"

static const char *LABEL_RULE =
	"rule pw\n kind text\n"
	" pattern (?i)password\\s*[:：]\\s*(?<secret>\\S+)\nend\n";

/* ---- rule kinds and actions ---- */

Test(scrub_kind, label_keeps_label_and_surroundings)
{
	struct run r;

	scrub(&r, LABEL_RULE, HDR "Content-Type: text/plain\n\n"
	    "Hello.\nPassword: Abc123xyz\nBye.\n");
	cr_assert_eq(r.v, MAIL_SCRUB_CHANGED);
	gone(&r, "Abc123xyz");
	kept(&r, "Hello.");
	kept(&r, "Password: " NOTICE);
	kept(&r, "Bye.");
	cr_expect_str_eq(r.res.hits[0].rule, "pw");
	cr_expect_str_eq(r.res.hits[0].part, "1");
	cr_expect_str_eq(r.res.message_id, "t1@example.com");
	done(&r);
}

Test(scrub_kind, no_secret_group_replaces_whole_match)
{
	struct run r;

	scrub(&r, "rule s\n pattern token-[0-9]+\nend\n",
	    HDR "\nBefore token-12345 after.\n");
	cr_assert_eq(r.v, MAIL_SCRUB_CHANGED);
	gone(&r, "token-12345");
	kept(&r, "Before " NOTICE " after.");
	done(&r);
}

/* Invisible format characters split no label in plain text either
 * (issue 12 #17); the secret goes with any such character inside it. */
Test(scrub_kind, format_characters_do_not_split_a_plain_label)
{
	static const char *const label[] = {
		"Pass\u200bword", "Pass\u00adword", "Pass\u200dword",
		"Pass\u2060word", "Pass\ufeffword", "Pass\u202eword",
	};

	for (size_t i = 0; i < sizeof(label) / sizeof(label[0]); i++) {
		char msg[512];
		struct run r;

		snprintf(msg, sizeof(msg), HDR "Content-Type: text/plain; "
		    "charset=utf-8\n\nHello.\n%s:\u00a0Fc3\u200bSecret\nBye.\n",
		    label[i]);
		scrub(&r, LABEL_RULE, msg);
		cr_assert_eq(r.v, MAIL_SCRUB_CHANGED, "%s", label[i]);
		gone(&r, "Fc3");
		gone(&r, "Secret");
		kept(&r, "Hello.");
		kept(&r, "Bye.");
		done(&r);
	}
}

/* Markup built to blow up gumbo's tree (each new paragraph re-opens every
 * distinct formatting element the previous one closed: 1500 x 3000 clones)
 * hits the memory budget and the part is refused, never passed unchecked. */
Test(scrub_html, tree_blowup_fails_closed, .timeout = 60)
{
	GString *h = g_string_new(HDR "Content-Type: text/html\n\n");
	struct run r;

	g_string_append(h, "<p>");
	for (int i = 0; i < 1500; i++)
		g_string_append_printf(h, "<b id=%d>", i);
	for (int i = 0; i < 3000; i++)
		g_string_append(h, "</p><p>x");
	g_string_append(h, "Password: Bl34\n");
	scrub(&r, LABEL_RULE, h->str);
	cr_expect_eq(r.v, MAIL_SCRUB_ERROR);
	cr_expect_not_null(strstr(r.err, "HTML too large or too deeply nested"),
	    "%s", r.err);
	done(&r);
	g_string_free(h, TRUE);
}

Test(scrub_kind, clean_message_is_untouched)
{
	struct run r;

	scrub(&r, LABEL_RULE, HDR "\nNothing to see.\n");
	cr_expect_eq(r.v, MAIL_SCRUB_CLEAN);
	cr_expect_null(r.res.out);
	cr_expect_eq(r.res.nhits, 0);
	done(&r);
}

Test(scrub_kind, url_rule_in_text_and_html_attribute)
{
	struct run r;

	scrub(&r, "rule prov\n kind url\n"
	    " pattern /provisioning/(?<secret>[^/\\s\"'<>]+)\nend\n",
	    HDR "Content-Type: text/html\n\n"
	    "<a href=\"https://pbx/provisioning/s3cr3tPath/x.xml\">Link</a>"
	    " https://pbx/provisioning/s3cr3tOther/\n");
	cr_assert_eq(r.v, MAIL_SCRUB_CHANGED);
	gone(&r, "s3cr3tPath");
	gone(&r, "s3cr3tOther");
	kept(&r, "https://pbx/provisioning/");
	kept(&r, "Link");
	done(&r);
}

static const char *MIXED =
	HDR "Content-Type: multipart/mixed; boundary=\"b\"\n\n"
	"--b\nContent-Type: text/plain\n\nBody text stays.\n"
	"--b\nContent-Type: application/octet-stream\n"
	"Content-Disposition: attachment; filename=\"100.3cxconfig\"\n"
	"Content-Transfer-Encoding: base64\n\n"
	"PENvbmZpZz5DZmdTZWNyZXQ5OTwvQ29uZmlnPg==\n"	/* <Config>CfgSecret99</Config> */
	"--b\nContent-Type: image/png\n"
	"Content-Disposition: inline; filename=\"qr.png\"\n\n"
	"QRDATAQRDATA\n--b--\n";

Test(scrub_kind, attachment_by_filename_is_dropped)
{
	struct run r;

	scrub(&r, "rule cfg\n kind attachment\n filename \\.3cxconfig$\nend\n",
	    MIXED);
	cr_assert_eq(r.v, MAIL_SCRUB_CHANGED);
	gone(&r, "CfgSecret99");
	gone(&r, "100.3cxconfig");
	kept(&r, "Body text stays.");
	kept(&r, "QRDATA");
	cr_expect_eq(r.res.hits[0].action, MAIL_ACT_DROP);
	cr_expect_str_eq(r.res.hits[0].part, "2");
	done(&r);
}

Test(scrub_kind, attachment_by_type_replaced_with_notice)
{
	struct run r;

	scrub(&r, "rule qr\n kind attachment\n content_type ^image/\n"
	    " action replace\n notice QR code removed\nend\n", MIXED);
	cr_assert_eq(r.v, MAIL_SCRUB_CHANGED);
	gone(&r, "QRDATA");
	kept(&r, "QR code removed");
	kept(&r, "CfgSecret99");
	done(&r);
}

Test(scrub_kind, attachment_by_min_size)
{
	struct run r;

	scrub(&r, "rule big\n kind attachment\n content_type ^application/\n"
	    " min_size 20\nend\n", MIXED);
	cr_assert_eq(r.v, MAIL_SCRUB_CHANGED);
	gone(&r, "CfgSecret99");	/* 28 bytes decoded */
	done(&r);
	scrub(&r, "rule big\n kind attachment\n content_type ^application/\n"
	    " min_size 29\nend\n", MIXED);
	cr_expect_eq(r.v, MAIL_SCRUB_CLEAN);
	done(&r);
}

Test(scrub_kind, reject_action)
{
	struct run r;

	scrub(&r, "rule no\n pattern (?i)tunnel password\n action reject\nend\n",
	    HDR "\nYour Tunnel Password: x\n");
	cr_expect_eq(r.v, MAIL_SCRUB_REJECT);
	cr_expect_str_eq(r.res.reject_rule, "no");
	done(&r);
}

Test(scrub_kind, drop_action_on_text_drops_the_part)
{
	struct run r;

	scrub(&r, "rule d\n pattern SIPSECRET\n action drop\nend\n",
	    HDR "Content-Type: multipart/mixed; boundary=\"b\"\n\n"
	    "--b\nContent-Type: text/plain\n\nKeep me.\n"
	    "--b\nContent-Type: text/plain\n\nSIPSECRET here\n--b--\n");
	cr_assert_eq(r.v, MAIL_SCRUB_CHANGED);
	gone(&r, "SIPSECRET");
	kept(&r, "Keep me.");
	done(&r);
}

Test(scrub_kind, header_condition_limits_the_rule)
{
	const char *rule = "rule h\n header Subject (?i)welcome\n"
	    " pattern (?i)code:\\s*(?<secret>\\S+)\nend\n";
	struct run r;

	scrub(&r, rule, HDR "\nCode: 9911\n");
	cr_expect_eq(r.v, MAIL_SCRUB_CHANGED);
	done(&r);
	scrub(&r, rule, "Subject: Invoice\n\nCode: 9911\n");
	cr_expect_eq(r.v, MAIL_SCRUB_CLEAN);
	done(&r);
}

Test(scrub_kind, only_one_notice_for_overlapping_rules)
{
	struct run r;

	scrub(&r, "rule a\n pattern (?i)password:\\s*(?<secret>\\S+)\nend\n"
	    "rule b\n pattern Zz9\\w+\nend\n", HDR "\nPassword: Zz9abc end\n");
	cr_assert_eq(r.v, MAIL_SCRUB_CHANGED);
	kept(&r, "Password: " NOTICE " end");
	done(&r);
}

/* ---- transfer encodings ---- */

struct enc_case {
	const char *name;
	const char *cte;
	const char *body;	/* encodes "Hi.\nPassword: EncSecret1\nBye.\n" */
};

static const struct enc_case enc_cases[] = {
	{ "7bit", "7bit", "Hi.\nPassword: EncSecret1\nBye.\n" },
	{ "8bit", "8bit", "Hi.\nPassword: EncSecret1\nBye.\n" },
	{ "base64", "base64",
	    "SGkuClBhc3N3b3JkOiBFbmNTZWNyZXQxCkJ5ZS4K\n" },
	{ "qp", "quoted-printable", "Hi.\nPassword: Enc=53ecret1\nBye.\n" },
	{ "qp_soft_break", "quoted-printable",
	    "Hi.\nPassword: EncSe=\ncret1\nBye.\n" },
};

static size_t idx_scrub_encoding_each[64];

ParameterizedTestParameters(scrub_encoding, each)
{
	size_t n = sizeof(enc_cases) / sizeof(enc_cases[0]);

	for (size_t i = 0; i < n; i++)
		idx_scrub_encoding_each[i] = i;
	return cr_make_param_array(size_t, idx_scrub_encoding_each, n);
}

ParameterizedTest(size_t *ix, scrub_encoding, each)
{
	const struct enc_case *c = &enc_cases[*ix];
	char msg[512];
	struct run r;

	snprintf(msg, sizeof(msg), HDR "Content-Type: text/plain; "
	    "charset=utf-8\nContent-Transfer-Encoding: %s\n\n%s", c->cte,
	    c->body);
	scrub(&r, LABEL_RULE, msg);
	cr_assert_eq(r.v, MAIL_SCRUB_CHANGED, "%s", c->name);
	gone(&r, "EncSecret1");
	kept(&r, "Hi.");
	kept(&r, "Bye.");
	if (strcmp(c->cte, "base64") == 0 || strcmp(c->cte,
	    "quoted-printable") == 0)
		cr_expect_not_null(strstr(r.raw, c->cte), "%s: encoding "
		    "changed", c->name);
	done(&r);
}

/* ---- charsets: decoded, scrubbed, written back in the same charset ---- */

struct cs_case {
	const char *charset;
	const char *cte;
	const char *body;	/* パスワード：CsSecret7 / 山田様 / 以上 */
	const char *keep;
};

static const struct cs_case cs_cases[] = {
	{ "UTF-8", "base64",
	    "5bGx55Sw5qeYCuODkeOCueODr+ODvOODie+8mkNzU2VjcmV0Nwrku6XkuIoK\n",
	    "山田様" },
	{ "ISO-2022-JP", "7bit",
	    "\x1b$B;3EDMM\x1b(B\n\x1b$B%Q%9%o!<%I!'\x1b(BCsSecret7\n"
	    "\x1b$B0J>e\x1b(B\n", "山田様" },
	{ "Shift_JIS", "base64", "jlKTY5dsCoNwg1iDj4Fbg2iBRkNzU2VjcmV0NwqIyI/jCg==\n",
	    "山田様" },
	{ "EUC-JP", "quoted-printable",
	    "=BB=B3=C5=C4=CD=CD\n=A5=D1=A5=B9=A5=EF=A1=BC=A5=C9=A1=A7CsSecret7\n"
	    "=B0=CA=BE=E5\n", "山田様" },
	{ "ISO-8859-1", "quoted-printable",
	    "Gr=FC=DFe\nPassword: CsSecret7\nTsch=FCss\n", "Grüße" },
};

static size_t idx_scrub_charset_each[64];

ParameterizedTestParameters(scrub_charset, each)
{
	size_t n = sizeof(cs_cases) / sizeof(cs_cases[0]);

	for (size_t i = 0; i < n; i++)
		idx_scrub_charset_each[i] = i;
	return cr_make_param_array(size_t, idx_scrub_charset_each, n);
}

ParameterizedTest(size_t *ix, scrub_charset, each)
{
	const struct cs_case *c = &cs_cases[*ix];
	char msg[1024], ct[128];
	struct run r;

	snprintf(msg, sizeof(msg), HDR "Content-Type: text/plain; "
	    "charset=%s\nContent-Transfer-Encoding: %s\n\n%s", c->charset,
	    c->cte, c->body);
	scrub(&r, "rule pw\n pattern (?i)(?:password|パスワード)\\s*[:：]\\s*"
	    "(?<secret>\\S+)\nend\n", msg);
	cr_assert_eq(r.v, MAIL_SCRUB_CHANGED, "%s", c->charset);
	gone(&r, "CsSecret7");
	kept(&r, c->keep);
	kept(&r, NOTICE);
	snprintf(ct, sizeof(ct), "charset=%s", c->charset);
	cr_expect_not_null(strstr(r.raw, ct), "%s not kept:\n%s", ct, r.raw);
	done(&r);
}

Test(scrub_charset, encoded_word_subject)
{
	struct run r;

	/* "Subject: パスワード：SubjSecret8" in a UTF-8 B encoded-word */
	scrub(&r, "rule pw\n pattern (?:パスワード)\\s*[:：]\\s*(?<secret>\\S+)\n"
	    "end\n", "From: a@b\nSubject: =?UTF-8?B?"
	    "44OR44K544Ov44O844OJ77yaU3VialNlY3JldDg=?=\n\nBody.\n");
	cr_assert_eq(r.v, MAIL_SCRUB_CHANGED);
	gone(&r, "SubjSecret8");
	kept(&r, "パスワード：");
	cr_expect_str_eq(r.res.hits[0].part, "header:Subject");
	done(&r);
}

/* ---- HTML ---- */

struct html_case {
	const char *name;
	const char *html;
	const char *secret;	/* as a reader sees it */
	const char *keep;
};

static const struct html_case html_cases[] = {
	{ "tags_inside", "<p>Password: Ab<b>Cd</b><i>Ef</i>123</p><p>Next</p>",
	    "AbCdEf123", "Next" },
	{ "decimal_entities", "<p>Password: &#65;&#66;cd77</p><p>Next</p>",
	    "ABcd77", "Next" },
	{ "hex_entities", "<p>Password&#x3a; &#x41;Bcd88</p><p>Next</p>",
	    "ABcd88", "Next" },
	{ "named_entity_in_secret", "<p>Password: Q&amp;W99</p><p>Next</p>",
	    "Q&W99", "Next" },
	{ "comment_inside", "<p>Password: Xy<!-- hi -->Zw55</p><p>Next</p>",
	    "XyZw55", "Next" },
	{ "value_in_next_cell",
	    "<table><tr><td>Password:</td><td>Cell4455</td></tr></table>Next",
	    "Cell4455", "Next" },
	{ "soft_hyphen", "<p>Password: Sh&shy;y66</p><p>Next</p>", "Shy66",
	    "Next" },
	{ "nbsp_before_value", "<p>Password:&nbsp;Nb12</p><p>Next</p>", "Nb12",
	    "Next" },
	/* What a browser reads and a tag stripper did not (issue 12 #17). */
	{ "numeric_ref_without_semicolon",
	    "<p>&#80assword: Ns13</p><p>Next</p>", "Ns13", "Next" },
	{ "hex_ref_without_semicolon",
	    "<p>Password&#x3a Hs14</p><p>Next</p>", "Hs14", "Next" },
	{ "empty_comment_abrupt", "<!--><p>Password: Ec15</p><p>Next</p>",
	    "Ec15", "Next" },
	{ "empty_comment_abrupt_dash",
	    "<!---><p>Password: Ed16</p><p>Next</p>", "Ed16", "Next" },
	{ "comment_closed_by_bang", "<!-- a --!><p>Password: Cb17</p><p>Next</p>",
	    "Cb17", "Next" },
	{ "quote_in_bogus_comment",
	    "<!x \"><p>Password: Bq18</p><p>\"q</p><p>Next</p>", "Bq18",
	    "Next" },
	{ "quote_in_processing_instruction",
	    "<?x '><p>Password: Pi19</p><p>'q</p><p>Next</p>", "Pi19", "Next" },
	{ "zero_width_space_named",
	    "<p>Pass&ZeroWidthSpace;word: Zw20</p><p>Next</p>", "Zw20", "Next" },
	{ "no_break_named", "<p>Password&NoBreak;: Nb21</p><p>Next</p>", "Nb21",
	    "Next" },
	{ "zwj_numeric", "<p>Pass&#8205;word: Zj22</p><p>Next</p>", "Zj22",
	    "Next" },
	{ "nbsp_in_label", "<p>Web&nbsp;Client&nbsp;Password: Wc23</p><p>Next</p>",
	    "Wc23", "Next" },
	{ "legacy_ref_without_semicolon",
	    "<p>Password: Q&ampW24</p><p>Next</p>", "Q&W24", "Next" },
	{ "rare_named_colon", "<p>Password&colon; Rc25</p><p>Next</p>", "Rc25",
	    "Next" },
	{ "alt_text", "<p><img alt=\"Password: Al26\" src=x></p><p>Next</p>",
	    "Al26", "Next" },
	{ "title_attribute_unquoted",
	    "<p title=Password:Tu27>x</p><p>Next</p>", "Tu27", "Next" },
	{ "comment_text", "<!-- Password: Ct28 --><p>Next</p>", "Ct28", "Next" },
	{ "cr_lf_inside_text", "<p>Password:\r\n Cr29</p><p>Next</p>", "Cr29",
	    "Next" },
	{ "secret_in_script", "<script>var Password= 'x';\nPassword: Sc30\n"
	    "</script><p>Next</p>", "Sc30", "Next" },
	{ "deep_nesting", "<div><div><div><div><div><div><b><i><u><s>"
	    "Password: Dn31</s></u></i></b></div></div></div></div></div></div>"
	    "<p>Next</p>", "Dn31", "Next" },
	{ "table_foster_parented",
	    "<table>Password: Fp32<tr><td>x</td></tr></table><p>Next</p>",
	    "Fp32", "Next" },
};

static size_t idx_scrub_html_each[64];

ParameterizedTestParameters(scrub_html, each)
{
	size_t n = sizeof(html_cases) / sizeof(html_cases[0]);

	for (size_t i = 0; i < n; i++)
		idx_scrub_html_each[i] = i;
	return cr_make_param_array(size_t, idx_scrub_html_each, n);
}

ParameterizedTest(size_t *ix, scrub_html, each)
{
	const struct html_case *c = &html_cases[*ix];
	char msg[1024];
	struct run r;

	snprintf(msg, sizeof(msg), HDR "Content-Type: text/html; "
	    "charset=utf-8\n\n%s\n", c->html);
	scrub(&r, LABEL_RULE, msg);
	cr_assert_eq(r.v, MAIL_SCRUB_CHANGED, "%s", c->name);
	gone(&r, c->secret);
	kept(&r, c->keep);
	kept(&r, NOTICE);
	done(&r);
}

Test(scrub_html, notice_is_escaped_in_html)
{
	char err[256];
	struct mail_rules *rs = mail_rules_parse(LABEL_RULE, strlen(LABEL_RULE),
	    "t", "<set it at https://gw/enrol?a=1&b=2>", err, sizeof(err));
	struct mail_scrub_result res;
	const char *msg = HDR "Content-Type: text/html\n\n<p>Password: Zq1</p>\n";

	cr_assert_not_null(rs);
	cr_assert_eq(mail_scrub(rs, msg, strlen(msg), 0, &res, err,
	    sizeof(err)), MAIL_SCRUB_CHANGED);
	cr_expect_not_null(strstr(res.out, "&lt;set it at https://gw/enrol?a=1"
	    "&amp;b=2&gt;"), "%s", res.out);
	mail_scrub_result_free(&res);
	mail_rules_free(rs);
}

/* ---- structure and failure modes ---- */

Test(scrub_structure, encrypted_part_fails_closed)
{
	struct run r;

	scrub(&r, LABEL_RULE, HDR "Content-Type: multipart/encrypted; "
	    "protocol=\"application/pgp-encrypted\"; boundary=\"b\"\n\n"
	    "--b\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n"
	    "--b\nContent-Type: application/octet-stream\n\nxx\n--b--\n");
	cr_expect_eq(r.v, MAIL_SCRUB_ERROR);
	done(&r);
}

Test(scrub_structure, nesting_deeper_than_limit_fails_closed)
{
	GString *m = g_string_new(HDR);
	struct run r;

	for (int i = 0; i < 40; i++)
		g_string_append_printf(m, "Content-Type: multipart/mixed; "
		    "boundary=\"b%d\"\n\n--b%d\n", i, i);
	g_string_append(m, "Content-Type: text/plain\n\nPassword: Deep1\n");
	scrub(&r, LABEL_RULE, m->str);
	cr_expect_eq(r.v, MAIL_SCRUB_ERROR);
	done(&r);
	g_string_free(m, TRUE);
}

Test(scrub_structure, crlf_output_flag)
{
	struct mail_rules *rs = rules(LABEL_RULE);
	struct mail_scrub_result res;
	char err[256];
	const char *msg = "Subject: x\r\n\r\nPassword: Crlf1\r\nEnd\r\n";

	cr_assert_eq(mail_scrub(rs, msg, strlen(msg), MAIL_SCRUB_CRLF, &res,
	    err, sizeof(err)), MAIL_SCRUB_CHANGED);
	cr_expect_not_null(strstr(res.out, "Password: " NOTICE "\r\nEnd\r\n"),
	    "%s", res.out);
	mail_scrub_result_free(&res);
	mail_rules_free(rs);
}

/* ---- the corpus with the shipped rules ---- */

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert_not_null(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static const char *corpus[] = {
	"en_plain_7bit", "en_next_line_b64", "en_sentence_qp",
	"en_reminder_8bit", "en_qp_soft_break", "en_html_split",
	"ja_utf8_b64", "ja_iso2022jp_7bit", "ja_sjis_b64", "ja_eucjp_qp",
	"latin1_qp", "subject_encoded_word", "attachments_mixed",
	"nested_forward", "ja_html_related_iso2022jp", "en_reminder_html_b64",
	"en_html_browser_view", "en_wording_quotes", "en_wording_separators",
	"en_wording_separators_utf8", "en_wording_labels", "en_wording_partial",
	"en_wording_partial_html", "ja_wording_utf8_b64", "ja_wording_iso2022jp",
};

static size_t idx_corpus_shipped_rules[64];

ParameterizedTestParameters(corpus, shipped_rules)
{
	size_t n = sizeof(corpus) / sizeof(corpus[0]);

	for (size_t i = 0; i < n; i++)
		idx_corpus_shipped_rules[i] = i;
	return cr_make_param_array(size_t, idx_corpus_shipped_rules, n);
}

ParameterizedTest(size_t *ix, corpus, shipped_rules)
{
	const char **name = &corpus[*ix];
	char path[1024], err[1024], line[512];
	size_t len, explen;
	struct mail_rules *rs = mail_rules_load(MAIL_RULES_FILE, NOTICE, err,
	    sizeof(err));
	struct run r = { 0 };
	struct mail_scrub_result again;
	char *msg, *exp;
	unsigned secrets = 0, keeps = 0;

	cr_assert_not_null(rs, "%s", err);
	snprintf(path, sizeof(path), "%s/%s.eml", MAIL_CORPUS_DIR, *name);
	msg = slurp(path, &len);
	r.v = mail_scrub(rs, msg, len, MAIL_SCRUB_CRLF, &r.res, err,
	    sizeof(err));
	cr_assert_eq(r.v, MAIL_SCRUB_CHANGED, "%s: verdict %d %s", *name, r.v,
	    err);
	r.raw = r.res.out;
	r.rawlen = r.res.outlen;
	r.seen = visible(r.raw, r.rawlen);
	snprintf(path, sizeof(path), "%s/%s.expect", MAIL_CORPUS_DIR, *name);
	exp = slurp(path, &explen);
	for (char *save = NULL, *l = strtok_r(exp, "\n", &save); l != NULL;
	    l = strtok_r(NULL, "\n", &save)) {
		snprintf(line, sizeof(line), "%s", l + 7);
		if (strncmp(l, "secret ", 7) == 0) {
			gone(&r, line);
			secrets++;
		} else if (strncmp(l, "keep ", 5) == 0) {
			kept(&r, l + 5);
			keeps++;
		}
	}
	cr_expect_gt(secrets, 0);
	cr_expect_gt(keeps, 0);
	/* Scrubbing is idempotent: the notice itself matches no rule. */
	cr_expect_eq(mail_scrub(rs, r.res.out, r.res.outlen, MAIL_SCRUB_CRLF,
	    &again, err, sizeof(err)), MAIL_SCRUB_CLEAN, "%s: second pass "
	    "changed it again", *name);
	mail_scrub_result_free(&again);
	free(exp);
	free(msg);
	done(&r);
	mail_rules_free(rs);
}

Test(scrub_structure, multipart_prologue_and_epilogue)
{
	struct run r;

	scrub(&r, LABEL_RULE, HDR "Content-Type: multipart/mixed; "
	    "boundary=\"b\"\n\nPreamble. Password: Pre1Secret\n"
	    "--b\nContent-Type: text/plain\n\nBody.\n--b--\n"
	    "Epilogue. Password: Epi1Secret\n");
	cr_assert_eq(r.v, MAIL_SCRUB_CHANGED);
	gone(&r, "Pre1Secret");
	gone(&r, "Epi1Secret");
	kept(&r, "Body.");
	cr_expect_not_null(strstr(r.raw, "Preamble. Password: " NOTICE));
	done(&r);
}

Test(scrub_structure, application_xml_part_is_scanned)
{
	struct run r;

	scrub(&r, "rule x\n pattern <AuthPassword>(?<secret>[^<]+)<\nend\n",
	    HDR "Content-Type: multipart/mixed; boundary=\"b\"\n\n"
	    "--b\nContent-Type: text/plain\n\nSee attached.\n"
	    "--b\nContent-Type: application/xml\n"
	    "Content-Transfer-Encoding: base64\n\n"
	    "PEM+PEF1dGhQYXNzd29yZD5YbWwxU2VjcmV0PC9BdXRoUGFzc3dvcmQ+PC9DPg==\n"
	    "--b--\n");	/* <C><AuthPassword>Xml1Secret</AuthPassword></C> */
	cr_assert_eq(r.v, MAIL_SCRUB_CHANGED);
	gone(&r, "Xml1Secret");
	kept(&r, "</AuthPassword></C>");
	done(&r);
}

/* An empty part: GMime's buffer has no data pointer (fuzz_scrub found
 * memcpy from NULL under UBSan). */
Test(scrub_structure, empty_parts_are_fine)
{
	struct run r;

	scrub(&r, LABEL_RULE, HDR "Content-Type: multipart/mixed; "
	    "boundary=\"b\"\n\n--b\nContent-Type: application/octet-stream\n"
	    "Content-Transfer-Encoding: base64\n\n\n--b\nContent-Type: "
	    "text/plain; charset=iso-2022-jp\n\n\n--b--\n");
	cr_expect_eq(r.v, MAIL_SCRUB_CLEAN, "%s", r.err);
	done(&r);
}

Test(scrub_structure, nul_byte_does_not_hide_the_rest)
{
	static const char msg[] = HDR "Content-Type: text/plain\n"
	    "Content-Transfer-Encoding: base64\n\n"
	    "aGkAClBhc3N3b3JkOiBOdWwxU2VjcmV0Cg==\n"; /* "hi\0\nPassword: Nul1Secret\n" */
	struct run r;

	scrub(&r, LABEL_RULE, msg);
	cr_assert_eq(r.v, MAIL_SCRUB_CHANGED);
	gone(&r, "Nul1Secret");
	done(&r);
}

/* ---- the shipped rules leave ordinary wording alone ---- */

static const char *const benign[] = {
	"If you forgot your password, use the link below.",
	"Password reset requested for extension 1001.",
	"Your PIN code is required when you call voicemail.",
	"Passwords must be at least 12 characters long.",
	"パスワードを変更してください。",
	"パスワードは管理者にお問い合わせください。",
	"Download: https://pbx.example.com:5001/electron/windows/app.msi",
};

Test(corpus, shipped_rules_leave_ordinary_text_alone)
{
	char err[1024], msg[512];
	struct mail_rules *rs = mail_rules_load(MAIL_RULES_FILE, NOTICE, err,
	    sizeof(err));
	struct mail_scrub_result res;

	cr_assert_not_null(rs, "%s", err);
	for (size_t i = 0; i < sizeof(benign) / sizeof(benign[0]); i++) {
		snprintf(msg, sizeof(msg), "Subject: Welcome to extension 1001\n"
		    "Content-Type: text/plain; charset=utf-8\n\n%s\n", benign[i]);
		cr_expect_eq(mail_scrub(rs, msg, strlen(msg), 0, &res, err,
		    sizeof(err)), MAIL_SCRUB_CLEAN, "scrubbed: %s (rule %s)",
		    benign[i], res.nhits ? res.hits[0].rule : "-");
		mail_scrub_result_free(&res);
	}
	mail_rules_free(rs);
}
