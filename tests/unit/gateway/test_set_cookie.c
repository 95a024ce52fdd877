/* test_set_cookie.c -- upstream Set-Cookie values that would set one of the
 * gateway's own cookies (gateway/set_cookie.c), one line per edge. */
#include <criterion/criterion.h>
#include <string.h>

#include "gateway/gw_priv.h"

Test(set_cookie, reserved_names)
{
	static const struct { const char *v; bool reserved; } cases[] = {
		{ "__Host-pbxgate=x; Path=/; Secure; HttpOnly", true },
		{ "__Host-pbxgate-csrf=x", true },
		{ "__Host-pbxgate-mfa=x", true },
		{ "__host-pbxgate=x", true },
		{ "__HOST-PBXGATE=x", true },
		{ "__Secure-pbxgate=x", true },
		{ "__SECURE-pbxgate-anything=x", true },
		{ "__Host-pbxgate", true },			/* nameless form */
		{ "=__Host-pbxgate=x", true },
		{ "= \t__Host-pbxgate=x", true },
		{ " __Host-pbxgate=x", true },
		{ "\x01__Host-pbxgate=x", true },
		{ "a=1, __Host-pbxgate=x", true },		/* comma-split clients */
		{ "a=1,=__secure-pbxgate=x", true },
		{ "theme=dark", false },
		{ "pbxgate=1", false },
		{ "__Host-pbx=1", false },
		{ "__Host-session=1; Path=/", false },
		{ "x__Host-pbxgate=1", false },
		{ "a=__Host-pbxgate", false },			/* a value, not a name */
		{ "a=1; __Host-pbxgate=x", false },		/* an attribute */
		{ "", false },
		{ "__Host-pbxgat", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(gw_set_cookie_reserved(cases[i].v, strlen(cases[i].v)),
		    cases[i].reserved, "\"%s\"", cases[i].v);
}
