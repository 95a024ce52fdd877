/* test_mail_sniff.c -- what a leaf part is, by content and name (issue 12
 * #16): one line per case, with the class and charset or reason expected. */
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "mail/mail_priv.h"

struct sniff_case {
	const char *name;
	const char *ctype;
	const char *fname;
	bool        textual;
	const char *data;
	size_t      len;
	enum mail_part_class want;
	const char *charset_or_why;	/* charset (text), reason (refused) */
};

#define D(s) s, sizeof(s) - 1

static const struct sniff_case cases[] = {
	{ "txt_name", "application/octet-stream", "a.txt", false,
	    D("Password: x\n"), MAIL_PART_TEXT, "UTF-8" },
	{ "csv_name_latin1", "application/octet-stream", "u.CSV", false,
	    D("caf\xe9,\x01\x02\x03\n"), MAIL_PART_TEXT, "ISO-8859-1" },
	{ "3cxconfig_name", "application/octet-stream", "1001.3cxconfig", false,
	    D("<x/>"), MAIL_PART_TEXT, "UTF-8" },
	{ "html_name", "application/octet-stream", "w.htm", false,
	    D("<p>x</p>"), MAIL_PART_HTML, "UTF-8" },
	{ "html_by_content", "application/octet-stream", NULL, false,
	    D("  <!DOCTYPE html><p>x</p>"), MAIL_PART_HTML, "UTF-8" },
	{ "eml_name", "application/octet-stream", "fwd.eml", false,
	    D("Subject: x\n\nbody\n"), MAIL_PART_MESSAGE, NULL },
	{ "utf8_no_name", "application/octet-stream", NULL, false,
	    D("\xe3\x83\x91\xe3\x82\xb9\n"), MAIL_PART_TEXT, "UTF-8" },
	{ "iso2022jp", "application/octet-stream", NULL, false,
	    D("\x1b$B%Q%9\x1b(B\n"), MAIL_PART_TEXT, "ISO-2022-JP" },
	{ "shift_jis", "application/octet-stream", NULL, false,
	    D("\x83\x70\x83\x58\x83\x8f\x81\x5b\x83\x68\n"), MAIL_PART_TEXT,
	    "Shift_JIS" },
	{ "text_declared_binary_content", "text/plain", NULL, true,
	    D("\x01\x02\x03\x04\xff\xfe"), MAIL_PART_TEXT, "ISO-8859-1" },
	{ "png", "image/png", "qr.png", false,
	    D("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"), MAIL_PART_MEDIA, NULL },
	{ "jpeg", "image/jpeg", NULL, false, D("\xff\xd8\xff\xe0\x00\x10JFIF"),
	    MAIL_PART_MEDIA, NULL },
	{ "wav", "audio/wav", "vm.wav", false,
	    D("RIFF\x24\x08\x00\x00WAVEfmt \x10\x00"), MAIL_PART_MEDIA, NULL },
	{ "pdf", "application/pdf", "fax.pdf", false,
	    D("%PDF-1.7\n%\xe2\xe3\xcf\xd3\x00"), MAIL_PART_MEDIA, NULL },
	{ "tnef_type", "application/ms-tnef", NULL, false, D("xx"),
	    MAIL_PART_UNSCANNABLE, "TNEF (winmail.dat)" },
	{ "tnef_vnd_type", "application/vnd.ms-tnef", NULL, false, D("xx"),
	    MAIL_PART_UNSCANNABLE, "TNEF (winmail.dat)" },
	{ "tnef_name", "application/octet-stream", "WINMAIL.DAT", false,
	    D("xx"), MAIL_PART_UNSCANNABLE, "TNEF (winmail.dat)" },
	{ "tnef_magic", "application/octet-stream", NULL, false,
	    D("\x78\x9f\x3e\x22\x01\x00"), MAIL_PART_UNSCANNABLE,
	    "TNEF (winmail.dat)" },
	{ "smime", "application/pkcs7-mime", "smime.p7m", false, D("0\x80"),
	    MAIL_PART_UNSCANNABLE, "encrypted or enveloped data" },
	{ "pgp_type", "application/pgp-encrypted", NULL, false,
	    D("Version: 1\n"), MAIL_PART_UNSCANNABLE,
	    "encrypted or enveloped data" },
	{ "pgp_armor_as_text", "text/plain", NULL, true,
	    D("-----BEGIN PGP MESSAGE-----\n"), MAIL_PART_UNSCANNABLE,
	    "PGP-encrypted data" },
	{ "zip_as_text", "text/plain", "a.txt", true, D("PK\x03\x04\x14\x00"),
	    MAIL_PART_UNSCANNABLE, "a ZIP archive (or an Office file)" },
	{ "gzip", "application/gzip", NULL, false, D("\x1f\x8b\x08\x00"),
	    MAIL_PART_UNSCANNABLE, "a gzip file" },
	{ "7z", "application/x-7z-compressed", NULL, false,
	    D("7z\xbc\xaf\x27\x1c\x00\x04"), MAIL_PART_UNSCANNABLE,
	    "a 7-Zip archive" },
	{ "rar", "application/vnd.rar", NULL, false, D("Rar!\x1a\x07\x01\x00"),
	    MAIL_PART_UNSCANNABLE, "a RAR archive" },
	{ "ole", "application/msword", "a.doc", false,
	    D("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00"), MAIL_PART_UNSCANNABLE,
	    "an OLE compound file (.msg, .doc, .xls)" },
	{ "unknown_binary", "application/octet-stream", "x.bin", false,
	    D("\x00\x01\x02\x03\x80\x81\xfe\xff\x00"), MAIL_PART_UNSCANNABLE,
	    "unknown binary content" },
	{ "image_that_is_binary_junk", "image/png", "x.png", false,
	    D("\x00\x01\x02\x03\x80\x81\xfe\xff"), MAIL_PART_UNSCANNABLE,
	    "unknown binary content" },
	{ "image_that_is_text", "image/png", "x.png", false,
	    D("Password: x\n"), MAIL_PART_TEXT, "UTF-8" },
	{ "empty", "application/octet-stream", NULL, false, D(""),
	    MAIL_PART_TEXT, NULL },
};

static size_t idx_sniff_each[64];

ParameterizedTestParameters(sniff, each)
{
	size_t n = sizeof(cases) / sizeof(cases[0]);

	for (size_t i = 0; i < n; i++)
		idx_sniff_each[i] = i;
	return cr_make_param_array(size_t, idx_sniff_each, n);
}

ParameterizedTest(size_t *ix, sniff, each)
{
	const struct sniff_case *c = &cases[*ix];
	const char *cs = "unset", *why = "unset";
	enum mail_part_class k = mail_part_classify(c->ctype, c->fname,
	    c->textual, (const unsigned char *)c->data, c->len, &cs, &why);

	cr_assert_eq(k, c->want, "%s: class %d", c->name, k);
	if (k == MAIL_PART_UNSCANNABLE)
		cr_expect_str_eq(why, c->charset_or_why, "%s", c->name);
	else if (k == MAIL_PART_TEXT || k == MAIL_PART_HTML) {
		if (c->charset_or_why == NULL)
			cr_expect_null(cs, "%s: %s", c->name, cs);
		else
			cr_expect_str_eq(cs, c->charset_or_why, "%s", c->name);
	}
}
