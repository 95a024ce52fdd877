/* fuzz_cookie.c -- libFuzzer target: Cookie headers into the session unsealer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/auth_priv.h"
#include "policy/policy.h"

static struct auth_ctx *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/tmp/pbxgate-fuzz-cookie-XXXXXX";
	struct auth_settings s;
	char err[512], *v[] = { "m=8", "t=1", "p=1" }, *db[] = { "users.db" };
	int bad;

	if (mkdtemp(dir) == NULL)
		abort();
	auth_settings_defaults(&s);
	pol_kw_run(&auth_kwtab, &s, dir, "argon2", 3, v, &bad, err,
	    sizeof(err));
	pol_kw_run(&auth_kwtab, &s, dir, "user_db", 1, db, &bad, err,
	    sizeof(err));
	if (auth_settings_finish(&s, err, sizeof(err)) < 0 ||
	    (ctx = auth_open(&s, NULL, NULL, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz_cookie: %s\n", err);
		abort();
	}
	auth_settings_free(&s);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auth_identity id;
	char *copy = malloc(size ? size : 1);	/* exact size: ASan sees overreads */
	uint8_t pt[64];

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	(void)auth_session_check(ctx, copy, size, 1700000000, &id);
	(void)auth_token_open(ctx, "pbxgate-mfa", copy, size, pt, 24);
	free(copy);
	return 0;
}
