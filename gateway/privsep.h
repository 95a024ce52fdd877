/* privsep.h -- the messages between the privileged parent and the
 * unprivileged child (one SOCK_SEQPACKET pair per child), shared by
 * privsep.c (parent), privsep_child.c and seccomp.c. Every message is one
 * packet; a reply to an open carries the descriptor (SCM_RIGHTS). */
#ifndef GW_PRIVSEP_H
#define GW_PRIVSEP_H

#include <limits.h>
#include <stdint.h>

#include "gateway/gw_priv.h"

enum gw_ps_type {
	GW_PS_OPEN_READ = 1,	/* child: a file the config names, read-only */
	GW_PS_OPEN_LOG,		/* child: a log file the config names */
	GW_PS_NOTIFY,		/* child: readiness (arg: enum gw_notify_kind) */
	GW_PS_SECCOMP,		/* child: refused system call arg, dying */
	GW_PS_KEYS_STAGE,	/* child, reloading: key process, load the keys */
	GW_PS_KEYS_COMMIT,	/* child, reloaded: the staged keys go live */
};

/* child -> parent; path is NUL-terminated, the packet ends after it */
struct gw_privsep_msg {
	uint32_t type;
	uint32_t arg;		/* oflags, notify kind, syscall number */
	uint64_t seq;		/* open: echoed in the reply; notify: generation */
	char     path[PATH_MAX];
};

/* parent -> child, answer to an open; the descriptor rides along on
 * success (error 0) */
struct gw_privsep_reply {
	uint64_t seq;
	int32_t  error;		/* errno, 0 on success */
	char     msg[240];	/* why, without the path, as pol_file_open */
};

/* seccomp.c: 0 installed, -1 error (err says why), 1 not installed because
 * the process runs under valgrind (err says so; the caller logs it). */
int gw_seccomp_install(int report_fd, char *err, size_t errlen);
const char *gw_seccomp_name(int nr, char *buf, size_t len);

/* privsep_child.c: in the forked child, before anything is read: becomes
 * `user` with no capability, no_new_privs, the seccomp filter, and routes
 * file opens and readiness through the parent on fd. */
int gw_privsep_child_enter(int fd, const char *user, char *err, size_t errlen);

#endif
