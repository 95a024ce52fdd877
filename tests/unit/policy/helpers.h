/* helpers.h -- policy test helpers: temp dirs, files, loading with collected diagnostics. */
#ifndef PBXGATE_POLICY_TEST_HELPERS_H
#define PBXGATE_POLICY_TEST_HELPERS_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/policy.h"

/* A fresh temp dir per call (removed by th_cleanup). */
const char *th_dir(void);
void th_cleanup(void);
/* Writes DIR/name and returns its path (static buffer per call slot). */
const char *th_write(const char *name, const char *text);
/* Loads DIR/p.policy made of `text`; diagnostics in th_diags, one per
 * line, "E " or "W " first, with the temp dir replaced by "DIR". */
struct pol_policy *th_load(const char *text, const char *geoip_db);
struct pol_policy *th_load_bytes(const char *bytes, size_t len,
    const char *geoip_db);
struct pol_policy *th_load_path(const char *path, const char *geoip_db);
extern char th_diags[8192];
/* Makes the test GeoIP db in the temp dir with the perl script. */
const char *th_mmdb(void);
/* A request from `ip` to `path` (normalised here; the test fails if the
 * path is refused). */
struct pol_request th_req(const char *ip, const char *path);

#endif
