/* lead_weak.c -- TEMPORARY weak fallbacks for module entry points that are
 * still being written; removed once auth/ and mail/ provide them. */
#include <unistd.h>
#include "gateway/gateway.h"

__attribute__((weak)) int
auth_cmd_user(const struct auth_settings *s, int argc, char **argv)
{
	return 2;
}

__attribute__((weak)) int
auth_cmd_hash(const struct auth_settings *s, int argc, char **argv)
{
	return 2;
}

__attribute__((weak)) struct mail_ctx *
mail_ctx_new(const struct mail_settings *s, struct cert_server *tls,
    mail_audit_fn audit, void *arg, char *err, size_t errlen)
{
	snprintf(err, errlen, "mail relay not built");
	return NULL;
}

__attribute__((weak)) void
mail_session_start(struct mail_ctx *m, struct event_base *b,
    evutil_socket_t fd, const struct sockaddr *peer, socklen_t len)
{
	close(fd);
}

__attribute__((weak)) void
mail_sessions_shutdown(struct event_base *b)
{
}
