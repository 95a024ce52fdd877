/* fuzz_form.c -- libFuzzer target: the x-www-form-urlencoded parser and its users. */
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/auth_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auth_form f;
	char *copy = malloc(size ? size : 1);
	const char *v;
	char out[AUTH_NAME_MAX + 1];

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	if (auth_form_parse(copy, size, &f) == 0) {
		if ((v = auth_form_get(&f, "rd")) != NULL)
			(void)auth_rd_is_safe(v);
		if ((v = auth_form_get(&f, "username")) != NULL)
			(void)auth_name_fold(v, out);
		if ((v = auth_form_get(&f, "lockdown")) != NULL) {
			char err[128];
			(void)auth_cidr_list_check(v, err, sizeof(err));
		}
		if ((v = auth_form_get(&f, "lang")) != NULL)
			(void)auth_lang_pick(v);
		auth_form_free(&f);
	}
	free(copy);
	return 0;
}
