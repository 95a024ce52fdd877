/* fuzz_smtp_cmd.c -- libFuzzer target: the SMTP command-line parser and the
 * AUTH base64 decoder, fed one line as the session would (up to CR/LF).
 * Invariant: an accepted MAIL/RCPT address can never carry a space,
 * control character, angle bracket or 8-bit byte to the smarthost. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mail_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[4097];
	unsigned char out[3100];
	struct smtp_cmd c;
	const char *e;
	size_t n = 0, dec;

	while (n < size && n < sizeof(line) - 1 && data[n] != '\n' &&
	    data[n] != '\r' && data[n] != '\0')
		n++;
	memcpy(line, data, n);
	line[n] = '\0';
	(void)smtp_b64_decode(line, out, sizeof(out), &dec);
	e = smtp_cmd_parse(line, &c);
	if (e != NULL) {
		if (strlen(e) < 4 || (e[0] != '5' && e[0] != '4'))
			abort();
		return 0;
	}
	if (c.verb == SMTP_V_MAIL || c.verb == SMTP_V_RCPT) {
		size_t al = strlen(c.addr);
		if (al > SMTP_ADDR_MAX || (c.verb == SMTP_V_RCPT && al == 0))
			abort();
		for (size_t i = 0; i < al; i++) {
			unsigned char ch = (unsigned char)c.addr[i];
			if (ch <= 0x20 || ch >= 0x7f || ch == '<' || ch == '>')
				abort();
		}
	}
	return 0;
}
