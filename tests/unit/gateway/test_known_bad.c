/* test_known_bad.c -- the known_bad list parser (sha256sum format): every
 * malformed line with its exact FILE:LINE:COL message, the lookup, the
 * shipped list, and which paths the default covers. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_priv.h"

#define H64 "aa124a4b4df12b34e74ee7f6c683b2ebec4ce9a8edcf9be345823b4fdcf5d868"

static char last[1024];
static int nmsg;

static void
collect(void *arg, const char *msg)
{
	(void)arg;
	nmsg++;
	snprintf(last, sizeof(last), "%s", msg);
}

static struct gw_knownbad *
parse(const char *text, int *rc)
{
	struct gw_knownbad *kb = gw_knownbad_new();

	cr_assert_not_null(kb);
	nmsg = 0;
	last[0] = '\0';
	*rc = gw_knownbad_parse(kb, "list", text, strlen(text), collect, NULL);
	gw_knownbad_seal(kb);
	return kb;
}

static void
unhex(const char *h, uint8_t *out)
{
	for (int i = 0; i < GW_SHA256_LEN; i++) {
		unsigned v;
		cr_assert_eq(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

struct good_case {
	const char *text;
	size_t      count;
};

static const struct good_case goods[] = {
	{ "", 0 },
	{ "# only a comment\n\n   \n", 0 },
	{ H64 "  installer.msi\n", 1 },
	{ H64 " *installer.msi\n", 1 },		/* binary mode */
	{ "\\" H64 "  odd\\\\name\n", 1 },		/* GNU escaped name */
	{ H64 "  no-final-newline", 1 },
	{ H64 "  crlf\r\n", 1 },
	{ "AA124A4B4DF12B34E74EE7F6C683B2EBEC4CE9A8EDCF9BE345823B4FDCF5D868  upper\n", 1 },
	{ H64 "  a\n" H64 "  twice\n", 1 },	/* deduplicated */
	{ "  # indented comment\n" H64 "  x\n", 1 },
};

Test(known_bad, good_lists)
{
	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		int rc;
		struct gw_knownbad *kb = parse(goods[i].text, &rc);
		cr_expect_eq(rc, 0, "case %zu: %s", i, last);
		cr_expect_eq(nmsg, 0, "case %zu: %s", i, last);
		cr_expect_eq(gw_knownbad_count(kb), goods[i].count, "case %zu", i);
		gw_knownbad_free(kb);
	}
}

struct bad_case {
	const char *text;
	const char *msg;
};

static const struct bad_case bads[] = {
	{ "aa124a4b\n", "list:1:9: expected the 64 hex digits of a SHA-256, "
	    "found the line's end after 8" },
	{ "zz124a4b4df12b34e74ee7f6c683b2ebec4ce9a8edcf9be345823b4fdcf5d868  x\n",
	    "list:1:1: expected the 64 hex digits of a SHA-256, found another "
	    "character after 0" },
	{ "# c\n" H64 "\n", "list:2:65: expected two spaces (or a space and "
	    "'*') and the file's name after the hash, as sha256sum writes them" },
	{ H64 "  \n", "list:1:65: expected two spaces (or a space and '*') "
	    "and the file's name after the hash, as sha256sum writes them" },
	{ H64 "\tx\n", "list:1:65: expected two spaces (or a space and '*') "
	    "and the file's name after the hash, as sha256sum writes them" },
	{ H64 "0  x\n", "list:1:65: expected two spaces (or a space and '*') "
	    "and the file's name after the hash, as sha256sum writes them" },
	{ "SHA256 (x) = " H64 "\n", "list:1:1: expected the 64 hex digits of "
	    "a SHA-256, found another character after 0" },	/* BSD style */
	{ "\n\n  " H64 "x  y\n", "list:3:67: expected two spaces (or a space "
	    "and '*') and the file's name after the hash, as sha256sum writes "
	    "them" },
};

Test(known_bad, each_bad_line_its_message)
{
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		int rc;
		struct gw_knownbad *kb = parse(bads[i].text, &rc);
		cr_expect_eq(rc, -1, "case %zu", i);
		cr_expect_eq(nmsg, 1, "case %zu: %d messages", i, nmsg);
		cr_expect_str_eq(last, bads[i].msg, "case %zu", i);
		gw_knownbad_free(kb);
	}
}

Test(known_bad, nul_byte_is_an_error)
{
	static const char text[] = H64 "  a\0b\n";
	struct gw_knownbad *kb = gw_knownbad_new();
	int rc = gw_knownbad_parse(kb, "list", text, sizeof(text) - 1, collect,
	    NULL);

	cr_assert_eq(rc, -1);
	cr_expect_str_eq(last, "list:1:68: NUL byte: not a text file");
	gw_knownbad_free(kb);
}

Test(known_bad, every_error_of_a_file_reported)
{
	int rc;
	struct gw_knownbad *kb = parse("x\n" H64 "  ok\ny\n", &rc);

	cr_expect_eq(rc, -1);
	cr_expect_eq(nmsg, 2);
	cr_expect_str_eq(last, "list:3:1: expected the 64 hex digits of a "
	    "SHA-256, found another character after 0");
	gw_knownbad_free(kb);
}

Test(known_bad, lookup_names_file_and_line)
{
	int rc;
	uint8_t sha[GW_SHA256_LEN];
	const char *file = NULL;
	unsigned line = 0;
	struct gw_knownbad *kb = parse("# x\n"
	    "59e1edf4d82fae4978e97512b0331b7eb21dd4b838b850ba46794d9c7a2c0983  a\n"
	    "# y\n" H64 "  b\n", &rc);

	cr_assert_eq(rc, 0);
	unhex(H64, sha);
	cr_assert(gw_knownbad_find(kb, sha, &file, &line));
	cr_expect_str_eq(file, "list");
	cr_expect_eq(line, 4);
	sha[31] ^= 1;
	cr_expect_not(gw_knownbad_find(kb, sha, NULL, NULL));
	cr_expect_not(gw_knownbad_find(NULL, sha, NULL, NULL));
	gw_knownbad_free(kb);
}

/* etc/known-bad.sha256: the ten hashes of the issue, each with a comment. */
Test(known_bad, shipped_list_parses)
{
	static const char *const published[] = {
		"aa124a4b4df12b34e74ee7f6c683b2ebec4ce9a8edcf9be345823b4fdcf5d868",
		"59e1edf4d82fae4978e97512b0331b7eb21dd4b838b850ba46794d9c7a2c0983",
		"5407cda7d3a75e7b1e030b1f33337a56f293578ffa8b3ae19c671051ed314290",
		"92005051ae314d61074ed94a52e76b1c3e21e7f0e8c1d1fdd497a006ce45fa61",
		"b86c695822013483fa4e2dfdf712c5ee777d7b99cbad8c2fa2274b133481eadb",
		"e6bbc33815b9f20b0cf832d7401dd893fbc467c800728b5891336706da0dbcec",
		"dde03348075512796241389dfea5560c20a3d2a2eac95c894e7bbed5e85a0acc",
		"fad482ded2e25ce9e1dd3d3ecc3227af714bdfbbde04347dbc1b21d6a3670405",
		"7986bbaee8940da11ce089383521ab420c443ab7b15ed42aed91fd31ce833896",
		"c485674ee63ec8d4e8fde9800788175a8b02d3f9416d0e763360fff7f8eb4e02",
	};
	const char *src = getenv("PBXGATE_SRCDIR");
	char path[4096];
	struct gw_knownbad *kb = gw_knownbad_new();
	FILE *f;
	char line[512];
	int hashes = 0, comments_before = 0;
	bool prev_comment = false;

	cr_assert_not_null(src, "PBXGATE_SRCDIR not set");
	snprintf(path, sizeof(path), "%s/etc/known-bad.sha256", src);
	nmsg = 0;
	cr_assert_eq(gw_knownbad_load(kb, path, collect, NULL), 0, "%s", last);
	gw_knownbad_seal(kb);
	cr_expect_eq(gw_knownbad_count(kb), 10);
	for (size_t i = 0; i < 10; i++) {
		uint8_t sha[GW_SHA256_LEN];
		unhex(published[i], sha);
		cr_expect(gw_knownbad_find(kb, sha, NULL, NULL), "%s missing",
		    published[i]);
	}
	gw_knownbad_free(kb);
	/* a comment line right before every entry */
	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (line[0] != '#' && line[0] != '\n') {
			hashes++;
			comments_before += prev_comment;
		}
		prev_comment = line[0] == '#';
	}
	fclose(f);
	cr_expect_eq(hashes, 10);
	cr_expect_eq(comments_before, 10);
}

Test(known_bad, unreadable_list_names_the_path)
{
	struct gw_knownbad *kb = gw_knownbad_new();

	nmsg = 0;
	cr_expect_eq(gw_knownbad_load(kb, "/nonexistent/list", collect, NULL),
	    -1);
	cr_expect_eq(nmsg, 1);
	cr_expect(strncmp(last, "/nonexistent/list: ", 19) == 0, "%s", last);
	gw_knownbad_free(kb);
}

struct cover_case {
	const char *path;
	bool        covered;
};

/* The default: the desktop app's download and update paths, any case. */
static const struct cover_case covers[] = {
	{ "/electron/windows/3CXDesktopApp-18.12.416.msi", true },
	{ "/electron/windows/3CXDesktopApp-18.12.416-full.nupkg", true },
	{ "/electron/osx/3CXDesktopApp-18.12.416.dmg", true },
	{ "/electron/osx/3CXDesktopApp-18.12.416-mac.zip", true },
	{ "/Electron/download/windows/x.msi", true },
	{ "/ELECTRON/osx/x.dmg", true },
	{ "/webclient/app.js", false },
	{ "/electron", false },
	{ "/electronics/x", false },
	{ "/", false },
};

Test(known_bad, default_paths)
{
	struct gw_config cfg;
	int rc;

	gw_config_defaults(&cfg);
	cfg.knownbad = parse(H64 "  x\n", &rc);
	for (size_t i = 0; i < sizeof(covers) / sizeof(covers[0]); i++)
		cr_expect_eq(gw_knownbad_covers(&cfg, covers[i].path),
		    covers[i].covered, "%s", covers[i].path);
	gw_knownbad_free(cfg.knownbad);
	/* no list, nothing to hash */
	cfg.knownbad = NULL;
	cr_expect_not(gw_knownbad_covers(&cfg, "/electron/osx/x.dmg"));
}

Test(known_bad, configured_paths_replace_the_default)
{
	struct gw_config cfg;
	char *paths[] = { "/downloads/", "/Updates/win/" };
	int rc;

	gw_config_defaults(&cfg);
	cfg.knownbad = parse(H64 "  x\n", &rc);
	cfg.known_bad_paths = paths;
	cfg.nknown_bad_paths = 2;
	cr_expect(gw_knownbad_covers(&cfg, "/downloads/a.msi"));
	cr_expect(gw_knownbad_covers(&cfg, "/updates/WIN/a.nupkg"));
	cr_expect_not(gw_knownbad_covers(&cfg, "/electron/osx/x.dmg"));
	gw_knownbad_free(cfg.knownbad);
}
