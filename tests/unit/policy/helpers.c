/* helpers.c -- policy test helpers: temp dirs, files, loading with collected diagnostics. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

char th_diags[8192];
static char dir[256];

const char *
th_dir(void)
{
	if (dir[0] == '\0') {
		snprintf(dir, sizeof dir, "/tmp/pbxgate-poltest-XXXXXX");
		cr_assert_not_null(mkdtemp(dir));
	}
	return dir;
}

void
th_cleanup(void)
{
	char cmd[300];

	if (dir[0] == '\0')
		return;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
	dir[0] = '\0';
}

const char *
th_write(const char *name, const char *text)
{
	static char paths[8][512];
	static int slot;
	char *path = paths[slot++ % 8];
	FILE *f;

	snprintf(path, 512, "%s/%s", th_dir(), name);
	cr_assert_not_null(f = fopen(path, "w"), "%s", path);
	cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
	cr_assert_eq(fclose(f), 0);
	return path;
}

static void
collect(void *arg, bool warning, const char *msg)
{
	size_t dl = strlen(dir), n = strlen(th_diags);
	char line[2048], *o = line;

	(void)arg;
	*o++ = warning ? 'W' : 'E';
	*o++ = ' ';
	for (const char *s = msg; *s != '\0' && o < line + sizeof line - 8;) {
		if (strncmp(s, dir, dl) == 0) {
			memcpy(o, "DIR", 3);
			o += 3;
			s += dl;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
	snprintf(th_diags + n, sizeof th_diags - n, "%s%s", n > 0 ? "\n" : "",
	    line);
}

struct pol_policy *
th_load_path(const char *path, const char *geoip_db)
{
	th_diags[0] = '\0';
	return pol_load(path, geoip_db, collect, NULL);
}

struct pol_policy *
th_load_bytes(const char *bytes, size_t len, const char *geoip_db)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/p.policy", th_dir());
	cr_assert_not_null(f = fopen(path, "w"));
	cr_assert_eq(fwrite(bytes, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
	return th_load_path(path, geoip_db);
}

struct pol_policy *
th_load(const char *text, const char *geoip_db)
{
	return th_load_bytes(text, strlen(text), geoip_db);
}

const char *
th_mmdb(void)
{
	static char out[512];
	char cmd[1200];
	const char *script = getenv("POL_GEOIP_SCRIPT");

	cr_assert_not_null(script, "POL_GEOIP_SCRIPT not set (run via meson test)");
	snprintf(out, sizeof out, "%s/test.mmdb", th_dir());
	snprintf(cmd, sizeof cmd, "perl '%s' '%s'", script, out);
	cr_assert_eq(system(cmd), 0, "%s failed: is libmaxmind-db-writer-perl "
	    "installed?", cmd);
	return out;
}

struct pol_request
th_req(const char *ip, const char *path)
{
	static struct sockaddr_storage ss[4];
	static char norm[4][1024];
	static int slot;
	struct pol_request r = { 0 };
	struct sockaddr_in *in = (struct sockaddr_in *)&ss[slot];
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss[slot];
	char err[256];

	memset(&ss[slot], 0, sizeof ss[slot]);
	if (inet_pton(AF_INET, ip, &in->sin_addr) == 1)
		in->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1)
		in6->sin6_family = AF_INET6;
	else
		cr_assert_fail("bad test address %s", ip);
	cr_assert_eq(pol_normalise_path(path, strlen(path), norm[slot],
	    sizeof norm[slot], err, sizeof err), 0, "%s: %s", path, err);
	r.peer = (struct sockaddr *)&ss[slot];
	r.path = norm[slot];
	r.method = "GET";
	slot = (slot + 1) % 4;
	return r;
}
