/* auth_factor.c -- second factor (TOTP, recovery codes) and enrolment tokens. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth/auth_priv.h"

static void
recovery_hash(const struct auth_key *k, int64_t uid, const char *code, char out[65])
{
	char msg[96];
	uint8_t mac[32];
	int n = snprintf(msg, sizeof(msg), "recovery:%lld:%s", (long long)uid, code);

	auth_hmac256(k->mac, msg, (size_t)n, mac);
	auth_hex(mac, sizeof(mac), out);
	OPENSSL_cleanse(msg, sizeof(msg));
}

/* Lower case, dashes and spaces removed; recovery codes are 10 base32. */
static int
recovery_norm(const char *in, char out[16])
{
	size_t o = 0;

	for (; *in != '\0'; in++) {
		char ch = *in;

		if (ch == '-' || ch == ' ')
			continue;
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch + 32);
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '2' && ch <= '7')) || o == 10)
			return -1;
		out[o++] = ch;
	}
	out[o] = '\0';
	return o == 10 ? 0 : -1;
}

static bool
recovery_use(struct auth_ctx *c, const struct auth_user *u, const char *code)
{
	char norm[16], h[65];
	sqlite3_stmt *st;
	bool ok = false;

	if (recovery_norm(code, norm) < 0)
		return false;
	if (sqlite3_prepare_v2(c->db, "UPDATE recovery SET used = 1 WHERE user_id = ?1"
	    " AND hash = ?2 AND used = 0", -1, &st, NULL) != SQLITE_OK)
		return false;
	for (size_t i = 0; i < c->keys.n && !ok; i++) {
		recovery_hash(&c->keys.k[i], u->id, norm, h);
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, u->id);
		sqlite3_bind_text(st, 2, h, -1, SQLITE_STATIC);
		ok = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(c->db) == 1;
	}
	sqlite3_finalize(st);
	OPENSSL_cleanse(norm, sizeof(norm));
	return ok;
}

/* The step is recorded with a conditional UPDATE so two concurrent logins
 * with the same code cannot both win, and it survives restarts. */
static bool
totp_use(struct auth_ctx *c, const struct auth_user *u, const char *code, time_t now)
{
	uint8_t key[AUTH_TOTP_SECRET];
	sqlite3_stmt *st;
	int64_t step;
	bool ok = false;

	if (auth_totp_secret(c, u, key) < 0)
		return false;
	step = auth_totp_match(key, sizeof(key), code, now, c->s.totp_step,
	    c->s.totp_digits, c->s.totp_skew, u->totp_last);
	OPENSSL_cleanse(key, sizeof(key));
	if (step < 0)
		return false;
	if (sqlite3_prepare_v2(c->db, "UPDATE users SET totp_last = ?2 WHERE id = ?1"
	    " AND totp_last < ?2", -1, &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_int64(st, 1, u->id);
	sqlite3_bind_int64(st, 2, step);
	ok = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(c->db) == 1;
	sqlite3_finalize(st);
	return ok;
}

bool
auth_second_factor(struct auth_ctx *c, const struct auth_user *u,
    const char *code, time_t now)
{
	if (code == NULL || !u->has_totp)
		return false;
	if (strlen(code) == c->s.totp_digits)
		return totp_use(c, u, code, now);
	return recovery_use(c, u, code);
}

/* Replaces the user's recovery codes; codes are written as "abcde-fghij". */
int
auth_recovery_new(struct auth_ctx *c, int64_t uid, char codes[AUTH_RECOVERY_N][16])
{
	static const char al[] = "abcdefghijklmnopqrstuvwxyz234567";
	sqlite3_stmt *st;
	int rc = 0;

	if (sqlite3_prepare_v2(c->db, "DELETE FROM recovery WHERE user_id = ?1", -1,
	    &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, uid);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	if (rc < 0 || sqlite3_prepare_v2(c->db, "INSERT INTO recovery(user_id, hash)"
	    " VALUES(?1, ?2)", -1, &st, NULL) != SQLITE_OK)
		return -1;
	for (int i = 0; i < AUTH_RECOVERY_N && rc == 0; i++) {
		uint8_t r[10];
		char norm[16], h[65];

		if (auth_random(r, sizeof(r)) < 0) {
			rc = -1;
			break;
		}
		for (int j = 0; j < 10; j++)
			norm[j] = al[r[j] & 31];
		norm[10] = '\0';
		snprintf(codes[i], 16, "%.5s-%.5s", norm, norm + 5);
		recovery_hash(&c->keys.k[0], uid, norm, h);
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, uid);
		sqlite3_bind_text(st, 2, h, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
		OPENSSL_cleanse(norm, sizeof(norm));
	}
	sqlite3_finalize(st);
	return rc;
}

/* Only SHA-256 of the token is stored: a copy of the store does not give
 * working enrolment links. */
int
auth_enrol_token_new(struct auth_ctx *c, int64_t uid, time_t now, char tok[65])
{
	uint8_t r[32], md[32];
	char h[65];
	unsigned int n = 0;
	sqlite3_stmt *st;
	int rc;

	if (auth_random(r, sizeof(r)) < 0)
		return -1;
	auth_hex(r, sizeof(r), tok);
	EVP_Digest(tok, 64, md, &n, EVP_sha256(), NULL);
	auth_hex(md, sizeof(md), h);
	if (sqlite3_prepare_v2(c->db, "INSERT INTO enrol(hash, user_id, expires)"
	    " VALUES(?1, ?2, ?3)", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, h, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, (int64_t)now + c->s.enrol_link_lifetime);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return rc;
}

/* Expired rows are swept at each new one, so the table holds at most
 * the steps started in the last AUTH_MFA_PENDING seconds. */
int
auth_mfa_pending_new(struct auth_ctx *c, int64_t uid, time_t now, uint8_t nonce[16])
{
	char hex[33];
	sqlite3_stmt *st;
	int rc;

	if (auth_random(nonce, 16) < 0)
		return -1;
	auth_hex(nonce, 16, hex);
	if (sqlite3_prepare_v2(c->db, "DELETE FROM mfa_pending WHERE expires < ?1",
	    -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, (int64_t)now);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	if (rc < 0 || sqlite3_prepare_v2(c->db, "INSERT INTO mfa_pending(nonce,"
	    " user_id, expires) VALUES(?1, ?2, ?3)", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, (int64_t)now + AUTH_MFA_PENDING);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return rc;
}

static bool
pending_run(struct auth_ctx *c, const char *sql, int64_t uid, time_t now,
    const uint8_t nonce[16], bool row)
{
	char hex[33];
	sqlite3_stmt *st;
	bool ok;

	auth_hex(nonce, 16, hex);
	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, (int64_t)now);
	if (row)
		ok = sqlite3_step(st) == SQLITE_ROW;
	else
		ok = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(c->db) == 1;
	sqlite3_finalize(st);
	return ok;
}

bool
auth_mfa_pending_live(struct auth_ctx *c, int64_t uid, time_t now, const uint8_t nonce[16])
{
	return pending_run(c, "SELECT 1 FROM mfa_pending WHERE nonce = ?1 AND"
	    " user_id = ?2 AND expires >= ?3", uid, now, nonce, true);
}

bool
auth_mfa_pending_take(struct auth_ctx *c, int64_t uid, time_t now, const uint8_t nonce[16])
{
	return pending_run(c, "DELETE FROM mfa_pending WHERE nonce = ?1 AND"
	    " user_id = ?2 AND expires >= ?3", uid, now, nonce, false);
}
