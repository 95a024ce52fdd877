/* helpers.h -- shared setup for the auth unit tests: temp dirs and settings. */
#ifndef AUTH_TEST_HELPERS_H
#define AUTH_TEST_HELPERS_H

#include "auth/auth.h"
#include "auth/auth_priv.h"
#include "policy/policy.h"

struct th {
	char dir[128];
	struct auth_settings s;
	struct auth_ctx *ctx;
	char audit[8192];	/* concatenated audit lines */
};

/* Creates a temp dir and small-cost settings (m=64 KiB, t=1, p=1). */
void th_init(struct th *);
/* Opens th->ctx; fails the test on error. */
void th_open(struct th *);
void th_close(struct th *);
void th_fini(struct th *);
/* Adds a user straight through the store; returns its id. */
int64_t th_add_user(struct th *, const char *name, const char *pw, bool totp,
    uint8_t secret[AUTH_TOTP_SECRET]);

#endif
