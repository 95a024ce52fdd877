/* mail_sniff.c -- what a MIME leaf part really is, judged by its content
 * and its name as well as its declared type: text to scan (in which
 * charset), HTML, an embedded message, a known media file, or something
 * that cannot be checked (TNEF, archives, encrypted data, unknown binary),
 * which the scrubber refuses rather than relays unread. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <glib.h>

#include "mail/mail_priv.h"

static bool
has_prefix(const unsigned char *d, size_t len, const void *magic, size_t n)
{
	return len >= n && memcmp(d, magic, n) == 0;
}

/* Archives and compound files: their content is out of our sight. */
static const char *
container(const unsigned char *d, size_t len)
{
	static const struct {
		const char *magic;
		size_t      n;
		const char *what;
	} m[] = {
		{ "\x78\x9f\x3e\x22", 4, "TNEF (winmail.dat)" },
		{ "PK\x03\x04", 4, "a ZIP archive (or an Office file)" },
		{ "PK\x05\x06", 4, "a ZIP archive" },
		{ "PK\x07\x08", 4, "a ZIP archive" },
		{ "\x1f\x8b", 2, "a gzip file" },
		{ "BZh", 3, "a bzip2 file" },
		{ "\xfd" "7zXZ\x00", 6, "an xz file" },
		{ "7z\xbc\xaf\x27\x1c", 6, "a 7-Zip archive" },
		{ "Rar!\x1a\x07", 6, "a RAR archive" },
		{ "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8,
		    "an OLE compound file (.msg, .doc, .xls)" },
		{ "MSCF", 4, "a cabinet archive" },
		{ "\x28\xb5\x2f\xfd", 4, "a zstd file" },
		{ "-----BEGIN PGP MESSAGE-----", 27, "PGP-encrypted data" },
	};

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (has_prefix(d, len, m[i].magic, m[i].n))
			return m[i].what;
	if (len >= 262 && memcmp(d + 257, "ustar", 5) == 0)
		return "a tar archive";
	return NULL;
}

/* Media files we relay unread: they carry pictures and sound, and a
 * picture that logs in (the QR code) is the attachment rules' job. */
static bool
media(const unsigned char *d, size_t len)
{
	static const struct {
		const char *magic;
		size_t      n;
	} m[] = {
		{ "\x89PNG\r\n\x1a\n", 8 }, { "\xff\xd8\xff", 3 },
		{ "GIF87a", 6 }, { "GIF89a", 6 }, { "BM", 2 },
		{ "II*\x00", 4 }, { "MM\x00*", 4 }, { "%PDF-", 5 },
		{ "ID3", 3 }, { "\xff\xfb", 2 }, { "\xff\xf3", 2 },
		{ "\xff\xf2", 2 }, { "OggS", 4 }, { "fLaC", 4 },
		{ "\x00\x00\x01\x00", 4 },	/* .ico */
	};

	if (len >= 12 && memcmp(d, "RIFF", 4) == 0 &&
	    (memcmp(d + 8, "WAVE", 4) == 0 || memcmp(d + 8, "WEBP", 4) == 0))
		return true;
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (has_prefix(d, len, m[i].magic, m[i].n))
			return true;
	return false;
}

bool
mail_sniff_converts(const unsigned char *d, size_t len, const char *from)
{
	gsize in = 0, out = 0;
	gchar *u = g_convert((const gchar *)d, (gssize)len, "UTF-8", from, &in,
	    &out, NULL);

	g_free(u);
	return u != NULL && in == len;
}

/* ISO-2022-JP is 7-bit: ASCII plus escape sequences that switch to JIS. */
static bool
iso2022jp(const unsigned char *d, size_t len)
{
	bool esc = false;

	for (size_t i = 0; i < len; i++) {
		if (d[i] >= 0x80)
			return false;
		if (d[i] == 0x1b && i + 2 < len &&
		    ((d[i + 1] == '$' && (d[i + 2] == 'B' || d[i + 2] == '@' ||
		    d[i + 2] == '(')) || (d[i + 1] == '(' && (d[i + 2] == 'B' ||
		    d[i + 2] == 'J' || d[i + 2] == 'I'))))
			esc = true;
	}
	return esc;
}

const char *
mail_sniff_charset(const unsigned char *d, size_t len)
{
	size_t ctl = 0;

	if (memchr(d, '\0', len) != NULL)
		return NULL;
	for (size_t i = 0; i < len; i++)
		if (d[i] < 0x20 && d[i] != '\t' && d[i] != '\n' &&
		    d[i] != '\r' && d[i] != '\f' && d[i] != '\v' && d[i] != 0x1b)
			ctl++;
	if (ctl > len / 100)	/* text has few control characters */
		return NULL;
	if (iso2022jp(d, len))
		return "ISO-2022-JP";
	if (g_utf8_validate((const gchar *)d, (gssize)len, NULL))
		return "UTF-8";
	if (mail_sniff_converts(d, len, "SHIFT_JIS"))
		return "Shift_JIS";
	if (mail_sniff_converts(d, len, "EUC-JP"))
		return "EUC-JP";
	return NULL;
}

static bool
name_ends(const char *name, const char *const *ext, size_t n)
{
	size_t nl = name ? strlen(name) : 0;

	for (size_t i = 0; i < n; i++) {
		size_t el = strlen(ext[i]);
		if (nl > el && strcasecmp(name + nl - el, ext[i]) == 0)
			return true;
	}
	return false;
}

/* Does the (ASCII-compatible) text start like an HTML document? */
static bool
looks_html(const unsigned char *d, size_t len)
{
	while (len > 0 && (*d == ' ' || *d == '\t' || *d == '\r' || *d == '\n')) {
		d++;
		len--;
	}
	return (len >= 9 && strncasecmp((const char *)d, "<!doctype", 9) == 0) ||
	    (len >= 5 && strncasecmp((const char *)d, "<html", 5) == 0);
}

static const char *const text_names[] = {
	".txt", ".csv", ".tsv", ".xml", ".3cxconfig", ".3cxcfg", ".cfg",
	".conf", ".ini", ".json", ".yaml", ".yml", ".log", ".vcf", ".ics",
	".md", ".properties", ".provisioning", ".html", ".htm", ".xhtml",
};
static const char *const html_names[] = { ".html", ".htm", ".xhtml" };

enum mail_part_class
mail_part_classify(const char *ctype, const char *fname, bool textual,
    const unsigned char *d, size_t len, const char **charset,
    const char **why)
{
	static const char *const tnef_types[] = { "application/ms-tnef",
	    "application/vnd.ms-tnef" };
	static const char *const crypt_types[] = { "application/pkcs7-mime",
	    "application/x-pkcs7-mime", "application/pgp-encrypted" };
	bool htmlish = strcasecmp(ctype, "text/html") == 0 ||
	    name_ends(fname, html_names, 3);

	*charset = NULL;
	*why = NULL;
	for (size_t i = 0; i < 2; i++)
		if (strcasecmp(ctype, tnef_types[i]) == 0)
			*why = "TNEF (winmail.dat)";
	if (fname != NULL && strcasecmp(fname, "winmail.dat") == 0)
		*why = "TNEF (winmail.dat)";
	for (size_t i = 0; i < 3; i++)
		if (strcasecmp(ctype, crypt_types[i]) == 0)
			*why = "encrypted or enveloped data";
	if (*why == NULL)
		*why = container(d, len);
	if (*why != NULL)
		return MAIL_PART_UNSCANNABLE;
	if (len == 0)
		return MAIL_PART_TEXT;
	if (name_ends(fname, (const char *const[]){ ".eml" }, 1))
		return MAIL_PART_MESSAGE;
	*charset = mail_sniff_charset(d, len);
	if (textual || name_ends(fname, text_names,
	    sizeof(text_names) / sizeof(text_names[0]))) {
		/* Named or declared text: read it even when it is no known
		 * charset (bytes as Latin-1: every byte is a character). */
		if (*charset == NULL)
			*charset = "ISO-8859-1";
		return htmlish || looks_html(d, len) ? MAIL_PART_HTML :
		    MAIL_PART_TEXT;
	}
	if (*charset != NULL)
		return looks_html(d, len) ? MAIL_PART_HTML : MAIL_PART_TEXT;
	if (media(d, len))
		return MAIL_PART_MEDIA;
	*why = "unknown binary content";
	return MAIL_PART_UNSCANNABLE;
}
