/* privsep_child.c -- the unprivileged child's side of privilege separation:
 * shedding every privilege right after the fork, and asking the parent for
 * the files the configuration names (root-only keys and secrets included)
 * and for readiness notifications. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include "gateway/privsep.h"
#include "policy/policy.h"

#define BROKER_WAIT_MS 5000	/* the parent answers at once, or is gone */

static int ps_fd = -1;
static uint64_t ps_seq;
static pthread_mutex_t ps_lock = PTHREAD_MUTEX_INITIALIZER;

/* The descriptor of a reply, if any: exactly one, or the reply is bad. */
static int
reply_fd(struct msghdr *mh)
{
	struct cmsghdr *c = CMSG_FIRSTHDR(mh);
	int fd = -1;

	for (; c != NULL; c = CMSG_NXTHDR(mh, c)) {
		int n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < n; i++) {
			int got;

			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fd == -1)
				fd = got;
			else
				close(got);
		}
	}
	return fd;
}

/* One reply for seq: stale ones (a request that timed out) are dropped. */
static int
await_reply(uint64_t seq, struct gw_privsep_reply *r, char *err, size_t errlen)
{
	struct {
		_Alignas(struct cmsghdr) char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { r, sizeof(*r) };
	struct msghdr mh;
	struct pollfd p = { ps_fd, POLLIN, 0 };
	ssize_t n;
	int fd;

	for (;;) {
		if (poll(&p, 1, BROKER_WAIT_MS) != 1) {
			snprintf(err, errlen, "cannot open: the privileged parent "
			    "did not answer");
			return -1;
		}
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		n = recvmsg(ps_fd, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "cannot open: the privileged parent "
			    "is gone");
			return -1;
		}
		fd = reply_fd(&mh);
		if ((size_t)n == sizeof(*r) && r->seq == seq &&
		    !(mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)))
			return fd;
		if (fd != -1)
			close(fd);
	}
}

/* One request (len bytes of m) and its answer; the descriptor that came
 * with it, or -1. */
static int
exchange(struct gw_privsep_msg *m, size_t len, struct gw_privsep_reply *r,
    char *err, size_t errlen)
{
	int fd;

	pthread_mutex_lock(&ps_lock);
	m->seq = ++ps_seq;
	if (send(ps_fd, m, len, MSG_NOSIGNAL) < 0) {
		pthread_mutex_unlock(&ps_lock);
		snprintf(err, errlen, "the privileged parent is gone: %s",
		    strerror(errno));
		r->error = EIO;
		return -1;
	}
	fd = await_reply(m->seq, r, err, errlen);
	pthread_mutex_unlock(&ps_lock);
	return fd;
}

int
gw_privsep_keys(bool commit, char *err, size_t errlen)
{
	struct gw_privsep_msg m = { .type = commit ? GW_PS_KEYS_COMMIT :
	    GW_PS_KEYS_STAGE };
	struct gw_privsep_reply r = { 0 };
	int fd;

	if (ps_fd < 0)
		return 0;	/* not under privsep (unit tests) */
	fd = exchange(&m, offsetof(struct gw_privsep_msg, path), &r, err,
	    errlen);
	if (fd >= 0)
		close(fd);
	if (r.seq != m.seq)	/* no answer: err says why */
		return -1;
	r.msg[sizeof(r.msg) - 1] = '\0';
	if (r.error != 0)
		snprintf(err, errlen, "%s", r.msg[0] != '\0' ? r.msg :
		    "the key process refused the keys");
	return r.error == 0 ? 0 : -1;
}

static int
broker_open(uint32_t type, const char *path, int oflags, char *err,
    size_t errlen)
{
	struct gw_privsep_msg m = { .type = type, .arg = (uint32_t)oflags };
	struct gw_privsep_reply r = { 0 };
	size_t len = strlen(path);
	int fd;

	if (len >= sizeof(m.path)) {
		snprintf(err, errlen, "cannot open: path too long");
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(m.path, path, len + 1);
	snprintf(err, errlen, "cannot open: no descriptor from the privileged "
	    "parent");
	fd = exchange(&m, offsetof(struct gw_privsep_msg, path) + len + 1, &r,
	    err, errlen);
	if (fd == -1 && r.error == 0)
		r.error = EIO;	/* no answer, or a success without descriptor */
	if (fd != -1 && r.error == 0)
		return fd;
	if (fd != -1)
		close(fd);
	r.msg[sizeof(r.msg) - 1] = '\0';
	if (r.msg[0] != '\0')
		snprintf(err, errlen, "%s", r.msg);
	errno = r.error;
	return -1;
}

static int
open_read(void *arg, const char *path, int oflags, char *err, size_t errlen)
{
	return broker_open(GW_PS_OPEN_READ, path, oflags, err, errlen);
}

static int
open_log(const char *path)
{
	char err[GW_ERRLEN];

	return broker_open(GW_PS_OPEN_LOG, path, 0, err, sizeof(err));
}

static void
notify_parent(enum gw_notify_kind kind, unsigned long long generation)
{
	struct gw_privsep_msg m = { .type = GW_PS_NOTIFY, .arg = kind,
	    .seq = generation };

	(void)!send(ps_fd, &m, offsetof(struct gw_privsep_msg, path),
	    MSG_NOSIGNAL);
}

/* Root without `user`, or a parent given capabilities by the service
 * manager: nothing is kept (bounding set first, it needs CAP_SETPCAP). */
static int
drop_capabilities(char *err, size_t errlen)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EPERM)
			break;
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capset, &h, d) < 0) {
		snprintf(err, errlen, "cannot drop capabilities: %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}

int
gw_privsep_child_enter(int fd, const char *user, char *err, size_t errlen)
{
	pid_t parent = getppid();

	ps_fd = fd;
	if (gw_drop_privileges(user, err, errlen) < 0 ||
	    drop_capabilities(err, errlen) < 0)
		return -1;
	/* set after the uid change, which clears it; the parent may already
	 * be gone by then */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0 ||
	    getppid() != parent) {
		snprintf(err, errlen, "the privileged parent is gone");
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errlen, "cannot set no_new_privs: %s",
		    strerror(errno));
		return -1;
	}
	switch (gw_seccomp_install(fd, err, errlen)) {
	case -1:
		return -1;
	case 1:
		gw_log(GW_LOG_WARN, "%s", err);
		break;
	}
	pol_file_set_opener(open_read, NULL);
	gw_log_set_opener(open_log);
	gw_notify_forward(notify_parent);
	return 0;
}

/* The parent blocked its signals for its signalfd; they stay blocked (and
 * a SIGHUP or SIGUSR1 sent early stays pending) until the child's own
 * handlers are in place, and in every thread started before that. */
void
gw_privsep_signals_ready(void)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_UNBLOCK, &all, NULL);
}
