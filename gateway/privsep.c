/* privsep.c -- `run` as two processes, in the relayd/OpenSMTPD model: a
 * small privileged parent that reads the configuration, binds the
 * listeners and holds no connection, and an unprivileged child (the
 * workers) that it forks, restarts and signals. The parent is the child's
 * file broker: it hands out read-only descriptors of the files its own
 * parse of the configuration opened (root-only 0600 files included) and of
 * the log files the configuration names, and refuses anything else. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "certs/certs.h"
#include "gateway/privsep.h"
#include "policy/policy.h"

#define PS_MAX_FILES	4096	/* files one configuration may name */
#define PS_BACKOFF_MIN	500	/* ms before the first restart: with the
				 * child's start it stays under 2 s */
#define PS_BACKOFF_MAX	30000	/* ms between restarts, at most */
#define PS_STABLE_S	60	/* up this long: the next restart is quick */
#define PS_CHILD_FAIL	78	/* the child could not shed its privileges */

struct ps_files {
	char  **v;
	size_t  n;
	bool    overflow;
};

struct ps_parent {
	const char *path;
	const struct gw_privsep_ops *ops;
	void *arg;
	struct gw_config *cfg;		/* the last configuration that parsed */
	struct cert_keyproc *kp;	/* holds the TLS private keys */
	struct ps_files allow;		/* the files it named */
	struct ps_files *recording;	/* during a parse */
	int sfd;			/* signalfd */
	int sock;			/* to the child; -1 when none */
	pid_t child;
	bool stopping, ready_once, done, restart_pending;
	int status;
	long backoff;		/* ms */
	struct timespec started, restart_at;
};

static void
files_free(struct ps_files *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->v[i]);
	free(f->v);
	memset(f, 0, sizeof(*f));
}

static bool
files_has(const struct ps_files *f, const char *path)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->v[i], path) == 0)
			return true;
	return false;
}

static void
files_add(struct ps_files *f, const char *path)
{
	char **nv;

	if (files_has(f, path))
		return;
	if (f->n >= PS_MAX_FILES ||
	    (nv = realloc(f->v, (f->n + 1) * sizeof(*nv))) == NULL) {
		f->overflow = true;
		return;
	}
	f->v = nv;
	if ((f->v[f->n] = strdup(path)) == NULL) {
		f->overflow = true;
		return;
	}
	f->n++;
}

/* The parent's opener: what its parse opens is what the child may ask. */
static int
record_open(void *arg, const char *path, int oflags, char *err, size_t errlen)
{
	struct ps_parent *p = arg;
	struct stat st;

	if (p->recording != NULL)
		files_add(p->recording, path);
	return pol_file_open_local(path, oflags, &st, err, errlen);
}

static void
report_stderr(void *arg, bool warning, const char *msg)
{
	fprintf(stderr, "%s: %s\n", warning ? "warning" : "error", msg);
}

/* On SIGHUP the child parses again and reports; the parent stays quiet. */
static void
report_none(void *arg, bool warning, const char *msg)
{
}

static struct gw_config *
parse(struct ps_parent *p, struct ps_files *files, gw_report_fn report)
{
	struct gw_config *cfg;
	char err[GW_ERRLEN];

	p->recording = files;
	cfg = gw_config_load_ex(p->path, true, NULL, report, NULL);
	/* the mail context (the smarthost's CA) is built by `run` after the
	 * parse: build it here too, so that its files are known */
	for (size_t i = 0; cfg != NULL && i <= cfg->nsites; i++) {
		const struct gw_config *c = i < cfg->nsites ?
		    cfg->sites[i].cfg : cfg;	/* each site's, the top's */
		struct mail_ctx *m;

		if (c == NULL || c->mail.nlisten == 0)
			continue;
		if ((m = mail_ctx_new(&c->mail, c->tls, NULL, NULL, err,
		    sizeof(err))) != NULL)
			mail_ctx_unref(m);
	}
	p->recording = NULL;
	files_add(files, p->path);
	if (cfg != NULL && files->overflow) {
		gw_log(GW_LOG_ERR, "%s names more than %d files", p->path,
		    PS_MAX_FILES);
		gw_config_unref(cfg);
		cfg = NULL;
	}
	return cfg;
}

static void
keyproc_report(const char *msg)
{
	gw_log(GW_LOG_ERR, "%s", msg);
}

/* The key process gets the key files of the configuration (started on the
 * first call, staged after; cert_keyproc_commit() once the new
 * configuration parsed). The parent and, through fork, the child are
 * attached to it: neither ever reads a key file, so the broker never
 * records one and the child cannot ask for it. */
/* Adds the key files of one settings block, each path once (sites often
 * share a key); -1 when more than `max`. */
static int
key_files_add(const struct gw_config *cfg, const char **files, size_t *n,
    size_t max)
{
	for (size_t i = 0; i < cfg->ncerts && i < GW_MAX_CERTS; i++) {
		size_t j;

		for (j = 0; j < *n; j++)
			if (strcmp(files[j], cfg->certs[i].key_file) == 0)
				break;
		if (j < *n)
			continue;
		if (*n == max)
			return -1;
		files[(*n)++] = cfg->certs[i].key_file;
	}
	return 0;
}

/* Every key the configuration serves with: the top level's, or with site
 * blocks every site's (the SNI picks among them at run time). */
static const char **
key_files(const struct gw_config *cfg, size_t *n, char *err, size_t errlen)
{
	size_t max = (cfg->nsites + 1) * GW_MAX_CERTS;
	const char **files = calloc(max, sizeof(*files));
	int rc = 0;

	*n = 0;
	if (files == NULL)
		return snprintf(err, errlen, "out of memory"), NULL;
	if (cfg->nsites == 0)
		rc = key_files_add(cfg, files, n, max);
	for (size_t i = 0; rc == 0 && i < cfg->nsites; i++)
		rc = key_files_add(cfg->sites[i].cfg, files, n, max);
	return files;
}

static int
keyproc_sync(struct ps_parent *p, char *err, size_t errlen)
{
	const char **files;
	/* at start it runs first: its report is the only one */
	struct gw_config *cfg = gw_config_load_ex(p->path, false, NULL,
	    p->kp == NULL ? report_stderr : report_none, NULL);
	size_t n;
	int rc, fd;

	if (cfg == NULL)
		return snprintf(err, errlen, "%s: configuration has errors",
		    p->path), -1;
	if ((files = key_files(cfg, &n, err, errlen)) == NULL) {
		gw_config_unref(cfg);
		return -1;
	}
	if (p->kp != NULL)
		rc = cert_keyproc_reload(p->kp, files, n, err, errlen);
	else if ((p->kp = cert_keyproc_start(files, n, cfg->workers + 1, &fd,
	    err, errlen)) != NULL) {
		cert_keyproc_attach(fd, keyproc_report);
		rc = 0;
	} else
		rc = -1;
	free(files);
	gw_config_unref(cfg);
	return rc;
}

static void
send_reply(struct ps_parent *p, const struct gw_privsep_reply *r, int fd)
{
	struct {
		_Alignas(struct cmsghdr) char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { (void *)r, sizeof(*r) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (fd >= 0) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	if (sendmsg(p->sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		gw_log(GW_LOG_ERR, "privsep: cannot answer the child: %s",
		    strerror(errno));
}

static int
open_named(struct ps_parent *p, const char *path, uint32_t oflags,
    struct gw_privsep_reply *r)
{
	struct stat st;
	int fd;

	if (!files_has(&p->allow, path)) {
		gw_log(GW_LOG_WARN, "privsep: the child asked for %s, which the "
		    "configuration does not name: refused", path);
		r->error = EACCES;
		snprintf(r->msg, sizeof(r->msg), "cannot open: not a file the "
		    "configuration names (refused by the privileged parent)");
		return -1;
	}
	fd = pol_file_open_local(path, (int)(oflags & O_NOFOLLOW), &st, r->msg,
	    sizeof(r->msg));
	if (fd < 0)
		r->error = errno != 0 ? errno : EIO;
	return fd;
}

static bool
is_log_of(const struct gw_config *cfg, const char *path)
{
	const char *logs[] = { cfg->access_log, cfg->audit_log, cfg->error_log };

	if (strcmp(path, "-") == 0 || strcmp(path, "syslog") == 0 ||
	    strcmp(path, "journal") == 0)
		return false;
	for (size_t i = 0; i < sizeof(logs) / sizeof(logs[0]); i++)
		if (logs[i] != NULL && strcmp(logs[i], path) == 0)
			return true;
	return false;
}

static int
open_log(struct ps_parent *p, const char *path, struct gw_privsep_reply *r)
{
	int fd;

	if (!is_log_of(p->cfg, path)) {
		gw_log(GW_LOG_WARN, "privsep: the child asked to write %s, which "
		    "is not a log file of the configuration: refused", path);
		r->error = EACCES;
		snprintf(r->msg, sizeof(r->msg), "not a log file of the "
		    "configuration");
		return -1;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
	    0640);
	if (fd < 0) {
		r->error = errno;
		snprintf(r->msg, sizeof(r->msg), "%s", strerror(errno));
	}
	return fd;
}

static void
answer_open(struct ps_parent *p, const struct gw_privsep_msg *m)
{
	struct gw_privsep_reply r = { .seq = m->seq };
	int fd;

	errno = 0;
	if (m->type == GW_PS_OPEN_READ)
		fd = open_named(p, m->path, m->arg, &r);
	else
		fd = open_log(p, m->path, &r);
	send_reply(p, &r, fd);
	if (fd >= 0)
		close(fd);
}

/* The child's reload drives the key process through us: stage the keys
 * of the configuration on disk before it parses, commit them once its new
 * snapshot is in force. The error text is the key process's. */
static void
answer_keys(struct ps_parent *p, const struct gw_privsep_msg *m)
{
	struct gw_privsep_reply r = { .seq = m->seq };
	int rc;

	if (m->type == GW_PS_KEYS_STAGE)
		rc = keyproc_sync(p, r.msg, sizeof(r.msg));
	else
		rc = cert_keyproc_commit(p->kp, r.msg, sizeof(r.msg));
	r.error = rc < 0 ? EINVAL : 0;
	send_reply(p, &r, -1);
}

static void
on_notify(struct ps_parent *p, uint32_t kind, unsigned long long gen)
{
	switch (kind) {
	case GW_NOTIFY_READY:
	case GW_NOTIFY_READY_FAILED:
		p->ready_once = true;
		gw_notify_ready(gen, kind == GW_NOTIFY_READY_FAILED);
		break;
	case GW_NOTIFY_RELOADING:
		gw_notify_reloading();
		break;
	case GW_NOTIFY_STOPPING:
		if (!p->stopping)
			gw_notify_stopping();
		break;
	default:
		break;
	}
}

static void
on_message(struct ps_parent *p, const struct gw_privsep_msg *m, size_t n)
{
	const size_t hdr = offsetof(struct gw_privsep_msg, path);
	char name[64];

	if (m->type == GW_PS_NOTIFY && n == hdr) {
		on_notify(p, m->arg, (unsigned long long)m->seq);
	} else if (m->type == GW_PS_SECCOMP && n == hdr) {
		gw_log(GW_LOG_ERR, "child %ld: seccomp: system call %u (%s) is "
		    "not on the allow-list (gateway/seccomp.c); it is killed",
		    (long)p->child, m->arg,
		    gw_seccomp_name((int)m->arg, name, sizeof(name)));
	} else if ((m->type == GW_PS_KEYS_STAGE ||
	    m->type == GW_PS_KEYS_COMMIT) && n == hdr) {
		answer_keys(p, m);
	} else if ((m->type == GW_PS_OPEN_READ || m->type == GW_PS_OPEN_LOG) &&
	    n > hdr && m->path[n - hdr - 1] == '\0' &&
	    strlen(m->path) == n - hdr - 1) {
		answer_open(p, m);
	} else {
		gw_log(GW_LOG_ERR, "privsep: malformed message from child %ld "
		    "(type %u, %zu bytes): ignored", (long)p->child, m->type, n);
	}
}

/* Everything the child sent, until none is waiting (or it is gone). */
static void
serve(struct ps_parent *p)
{
	static struct gw_privsep_msg m;	/* PATH_MAX: not on the stack */
	ssize_t n;

	while (p->sock >= 0) {
		n = recv(p->sock, &m, sizeof(m), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			close(p->sock);
			p->sock = -1;
			return;
		}
		if ((size_t)n > sizeof(m))
			gw_log(GW_LOG_ERR, "privsep: oversized message from "
			    "child %ld: ignored", (long)p->child);
		else
			on_message(p, &m, (size_t)n);
	}
}

static double
since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) +
	    (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static int
spawn(struct ps_parent *p)
{
	char err[GW_ERRLEN];
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		gw_log(GW_LOG_ERR, "privsep: socketpair: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) < 0) {
		gw_log(GW_LOG_ERR, "privsep: cannot start the child: fork: %s",
		    strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		close(p->sfd);
		if (gw_privsep_child_enter(sv[1], p->cfg->user, err,
		    sizeof(err)) < 0) {
			gw_log(GW_LOG_ERR, "child: %s", err);
			_exit(PS_CHILD_FAIL);
		}
		/* the parent's parse (its keys) is no business of the child */
		gw_config_unref(p->cfg);
		files_free(&p->allow);
		/* _exit: the atexit handlers are the parent's (and a sanitizer's
		 * leak check at exit needs calls the filter refuses) */
		_exit(p->ops->child(p->arg));
	}
	close(sv[1]);
	p->sock = sv[0];
	p->child = pid;
	clock_gettime(CLOCK_MONOTONIC, &p->started);
	return 0;
}

static void
schedule_restart(struct ps_parent *p)
{
	if (since(&p->started) >= PS_STABLE_S)
		p->backoff = PS_BACKOFF_MIN;
	clock_gettime(CLOCK_MONOTONIC, &p->restart_at);
	p->restart_at.tv_sec += p->backoff / 1000;
	p->restart_at.tv_nsec += (p->backoff % 1000) * 1000000;
	if (p->restart_at.tv_nsec >= 1000000000) {
		p->restart_at.tv_sec++;
		p->restart_at.tv_nsec -= 1000000000;
	}
	gw_log(GW_LOG_INFO, "restarting the child in %ld ms", p->backoff);
	p->backoff = p->backoff * 2 > PS_BACKOFF_MAX ? PS_BACKOFF_MAX :
	    p->backoff * 2;
	p->restart_pending = true;
}

static void
child_died(struct ps_parent *p, int st)
{
	serve(p);	/* the seccomp report, if that is why */
	if (p->sock >= 0)
		close(p->sock);
	p->sock = -1;
	p->child = -1;
	if (p->stopping) {
		p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 1;
		p->done = true;
		return;
	}
	if (WIFSIGNALED(st))
		gw_log(GW_LOG_ERR, "child exited on signal %d (%s)%s",
		    WTERMSIG(st), strsignal(WTERMSIG(st)),
		    WTERMSIG(st) == SIGSYS ? ": a forbidden system call" : "");
	else
		gw_log(GW_LOG_ERR, "child exited with status %d",
		    WEXITSTATUS(st));
	if (!p->ready_once) {
		/* it never served: a restart would fail the same way */
		gw_log(GW_LOG_ERR, "the child failed at start; stopping");
		p->status = 1;
		p->done = true;
		return;
	}
	schedule_restart(p);
}

/* Handshakes fail closed while it is gone; the child keeps its socket,
 * which the new key process serves. */
static void
keyproc_died(struct ps_parent *p, int st)
{
	char err[GW_ERRLEN];

	gw_log(GW_LOG_ERR, "key process exited (%s %d): restarting it",
	    WIFSIGNALED(st) ? "signal" : "status",
	    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	if (!p->stopping && cert_keyproc_restart(p->kp, err, sizeof(err)) < 0)
		gw_log(GW_LOG_ERR, "key process: %s; TLS handshakes fail until "
		    "the next reload", err);
}

static void
reap(struct ps_parent *p)
{
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (pid == p->child)
			child_died(p, st);
		else if (p->kp != NULL && pid == cert_keyproc_pid(p->kp))
			keyproc_died(p, st);
	}
}

/* Validates the configuration again and learns the files it names; the
 * child then reloads through us as before. A broken file leaves both the
 * allowed files and the child's snapshot as they were. */
static void
reload(struct ps_parent *p)
{
	struct ps_files files = { 0 };
	struct gw_config *cfg;
	char err[GW_ERRLEN];

	/* keys first: the new certificates are checked against them. The
	 * parse runs even when staging failed (a broken file fails both), to
	 * learn the files the file on disk names */
	bool keys_ok = keyproc_sync(p, err, sizeof(err)) == 0;

	cfg = parse(p, &files, report_none);
	if (cfg != NULL && !keys_ok) {
		gw_config_unref(cfg);
		cfg = NULL;
	}
	if (cfg == NULL) {
		/* the file on disk named them: the child may open them too, so
		 * that its own parse reports the same error as `check` */
		for (size_t i = 0; i < files.n; i++)
			files_add(&p->allow, files.v[i]);
		files_free(&files);
	} else {
		gw_config_unref(p->cfg);
		p->cfg = cfg;
		files_free(&p->allow);
		p->allow = files;
		if (gw_log_open(cfg, err, sizeof(err)) < 0)
			gw_log(GW_LOG_ERR, "reload: %s", err);
	}
	if (p->child > 0)
		kill(p->child, SIGHUP);
}

static void
on_signal(struct ps_parent *p, int sig)
{
	char err[GW_ERRLEN];

	if (sig == SIGCHLD) {
		reap(p);
	} else if (sig == SIGHUP) {
		reload(p);
	} else if (sig == SIGUSR1) {
		if (gw_log_open(p->cfg, err, sizeof(err)) < 0)
			gw_log(GW_LOG_ERR, "SIGUSR1: %s", err);
		if (p->child > 0)
			kill(p->child, SIGUSR1);
	} else if (!p->stopping) {	/* SIGTERM, SIGINT */
		p->stopping = true;
		p->restart_pending = false;
		gw_notify_stopping();
		if (p->child > 0)
			kill(p->child, SIGTERM);
		else
			p->done = true;
	}
}

static void
read_signals(struct ps_parent *p)
{
	struct signalfd_siginfo si;

	while (read(p->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		on_signal(p, (int)si.ssi_signo);
}

static int
poll_timeout(const struct ps_parent *p)
{
	struct timespec now;
	long ms;

	if (!p->restart_pending)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (p->restart_at.tv_sec - now.tv_sec) * 1000 +
	    (p->restart_at.tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (int)ms;
}

static void
loop(struct ps_parent *p)
{
	struct pollfd fds[2];

	while (!p->done) {
		fds[0] = (struct pollfd){ p->sfd, POLLIN, 0 };
		fds[1] = (struct pollfd){ p->sock, POLLIN, 0 };
		if (poll(fds, p->sock >= 0 ? 2 : 1, poll_timeout(p)) < 0 &&
		    errno != EINTR) {
			gw_log(GW_LOG_ERR, "privsep: poll: %s", strerror(errno));
			p->status = 1;
			return;
		}
		if (fds[0].revents & POLLIN)
			read_signals(p);
		if (p->sock >= 0 && p->sock == fds[1].fd && fds[1].revents != 0)
			serve(p);
		if (p->restart_pending && poll_timeout(p) == 0) {
			p->restart_pending = false;
			if (spawn(p) < 0)
				schedule_restart(p);
		}
	}
}

static int
block_signals(struct ps_parent *p)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	p->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return p->sfd < 0 ? -1 : 0;
}

/* Every user store the child will open (the top level's, or each
 * site's) must be the service user's. */
static int
check_stores(const struct gw_config *cfg, char *err, size_t errlen)
{
	if (gw_check_owner(cfg->auth.user_db, cfg->user, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < cfg->nsites; i++)
		if (gw_check_owner(cfg->sites[i].cfg->auth.user_db, cfg->user,
		    err, errlen) < 0)
			return -1;
	return 0;
}

/* Start: what the parent must do as root before any child exists. */
static int
start(struct ps_parent *p, char *err, size_t errlen)
{
	/* forked first, before the listeners and the log exist; at start
	 * its parse is the one that reports a file that does not parse */
	if (keyproc_sync(p, err, errlen) < 0)
		return -1;
	p->cfg = parse(p, &p->allow, report_stderr);
	if (p->cfg == NULL)
		return snprintf(err, errlen, "%s: configuration has errors",
		    p->path), -1;
	p->cfg->generation = 1;
	/* SQLite opens the user store in the child: it must be the user's.
	 * The secret key may stay root's: the child reads it through us. */
	if (gw_log_open(p->cfg, err, errlen) < 0 ||
	    check_stores(p->cfg, err, errlen) < 0 ||
	    p->ops->bind(p->arg, p->cfg, err, errlen) < 0)
		return -1;
	if (block_signals(p) < 0)
		return snprintf(err, errlen, "signalfd: %s", strerror(errno)), -1;
	if (spawn(p) < 0)
		return snprintf(err, errlen, "cannot start the child"), -1;
	return 0;
}

int
gw_privsep_run(const char *path, const struct gw_privsep_ops *ops, void *arg)
{
	struct ps_parent p = { .path = path, .ops = ops, .arg = arg,
	    .sfd = -1, .sock = -1, .child = -1, .backoff = PS_BACKOFF_MIN };
	char err[GW_ERRLEN] = "";

	pol_file_set_opener(record_open, &p);
	if (start(&p, err, sizeof(err)) < 0) {
		gw_log(GW_LOG_ERR, "%s", err);
		p.status = 1;
	} else {
		loop(&p);
	}
	if (p.sock >= 0)
		close(p.sock);
	if (p.sfd >= 0)
		close(p.sfd);
	if (p.cfg != NULL)
		gw_config_unref(p.cfg);
	files_free(&p.allow);
	cert_keyproc_stop(p.kp);
	pol_file_set_opener(NULL, NULL);
	return p.status;
}
