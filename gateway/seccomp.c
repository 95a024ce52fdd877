/* seccomp.c -- the system calls the unprivileged child may make. Anything
 * else traps: the handler tells the parent which call it was (one packet on
 * the privsep socket, async-signal-safe) and the child dies of SIGSYS. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <seccomp.h>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif

#include "gateway/gw_priv.h"
#include "gateway/privsep.h"

#if defined(__SANITIZE_ADDRESS__)
#define GW_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GW_SANITIZER 1
#endif
#endif

/* glibc, libevent (epoll, eventfd), OpenSSL (getrandom), SQLite (the user
 * store: locks, journal, fsync, umask; fchown when run as root), PCRE2's
 * JIT (mmap/mprotect), libmaxminddb (mmap), worker and login threads
 * (clone3, futex; the pool's nice), the resolver (sendmmsg),
 * sd_notify/syslog/journal (AF_UNIX sendmsg). Found by running the whole
 * integration suite with a filter that reported instead of killing. No
 * socket is bound or listened on here: the parent did that. */
static const char *const allowed[] = {
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv",
	"pwritev", "close", "fstat", "newfstatat", "stat", "lstat", "statx",
	"fstatfs", "statfs", "lseek", "openat", "open", "dup", "dup2", "dup3",
	"fcntl", "fsync", "fdatasync", "ftruncate", "unlink", "unlinkat",
	"access", "faccessat", "faccessat2", "readlink", "readlinkat",
	"getcwd", "mmap", "munmap", "mprotect", "mremap", "madvise", "brk",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
	"futex", "set_robust_list", "rseq", "set_tid_address", "clone",
	"clone3", "exit", "exit_group", "restart_syscall", "getpid", "gettid",
	"getppid", "getuid", "geteuid", "getgid", "getegid", "getresuid",
	"getresgid", "getgroups", "epoll_create", "epoll_create1",
	"epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll",
	"ppoll", "select", "pselect6", "eventfd2", "pipe2", "timerfd_create",
	"timerfd_settime", "timerfd_gettime", "connect", "accept", "accept4",
	"getsockname", "getpeername", "setsockopt", "getsockopt", "shutdown",
	"sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
	"getrandom", "clock_gettime", "clock_getres", "gettimeofday", "time",
	"nanosleep", "clock_nanosleep", "sched_yield", "sched_getaffinity",
	"uname", "sysinfo", "prlimit64", "getrlimit", "membarrier", "umask",
	"fchown", "setpriority",
};

#ifdef GW_SANITIZER
/* AddressSanitizer's runtime (this build only, detected at compile time):
 * LeakSanitizer stops the world with a ptrace()d helper thread at exit and
 * reads /proc/self; reports may start the symbolizer. */
static const char *const sanitizer_extra[] = {
	"ptrace", "wait4", "prctl", "getdents64", "process_vm_readv",
	"pipe", "mincore", "personality", "execve", "fork", "vfork",
	"setrlimit",
};
#endif

static int report_fd = -1;

/* Async-signal-safe: digits by hand, one send, then the default action. */
static void
sigsys_handler(int sig, siginfo_t *si, void *uc)
{
	struct gw_privsep_msg m = { .type = GW_PS_SECCOMP };
	sigset_t set;

	m.arg = (uint32_t)si->si_syscall;
	if (report_fd >= 0)
		(void)!send(report_fd, &m, offsetof(struct gw_privsep_msg, path),
		    MSG_DONTWAIT | MSG_NOSIGNAL);
	signal(SIGSYS, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, SIGSYS);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(SIGSYS);
	_exit(128 + SIGSYS);
}

static int
allow_list(scmp_filter_ctx ctx, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);

		/* a name this architecture does not have (open on arm64) */
		if (nr == __NR_SCMP_ERROR)
			continue;
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) < 0)
			return -1;
	}
	return 0;
}

/* socket(): IP and local sockets only (no AF_PACKET, AF_NETLINK, ...);
 * tgkill(): own threads; ioctl(): the few requests libevent and stdio
 * make. */
/* One "argument N equals V" condition with every field set: libseccomp's
 * SCMP_A0() macros leave datum_b to the compound literal's zero fill, which
 * clang's -Wmissing-field-initializers rejects. */
static int
allow_if_eq(scmp_filter_ctx ctx, int nr, unsigned int arg, scmp_datum_t v)
{
	struct scmp_arg_cmp c = { .arg = arg, .op = SCMP_CMP_EQ, .datum_a = v,
	    .datum_b = 0 };

	return seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 1, &c);
}

static int
allow_narrow(scmp_filter_ctx ctx)
{
	static const int families[] = { AF_INET, AF_INET6, AF_UNIX };
	static const unsigned long ioctls[] = { FIONREAD, FIONBIO, TCGETS,
	    TIOCGWINSZ };

	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		if (allow_if_eq(ctx, SCMP_SYS(socket), 0,
		    (scmp_datum_t)families[i]) < 0 ||
		    allow_if_eq(ctx, SCMP_SYS(socketpair), 0,
		    (scmp_datum_t)families[i]) < 0)
			return -1;
	}
	/* raise() and pthread_kill(): this process only, never the parent
	 * (same uid when the service manager starts it as `user`) */
	if (allow_if_eq(ctx, SCMP_SYS(tgkill), 0, (scmp_datum_t)getpid()) < 0)
		return -1;
	/* the login pool's threads yield to the event loops (pool.c) */
	if (allow_if_eq(ctx, SCMP_SYS(sched_setscheduler), 1,
	    (scmp_datum_t)SCHED_IDLE) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(ioctls) / sizeof(ioctls[0]); i++)
		if (allow_if_eq(ctx, SCMP_SYS(ioctl), 1,
		    (scmp_datum_t)ioctls[i]) < 0)
			return -1;
	return 0;
}

static int
build(scmp_filter_ctx ctx)
{
	if (allow_list(ctx, allowed, sizeof(allowed) / sizeof(allowed[0])) < 0)
		return -1;
#ifdef GW_SANITIZER
	if (allow_list(ctx, sanitizer_extra,
	    sizeof(sanitizer_extra) / sizeof(sanitizer_extra[0])) < 0)
		return -1;
#endif
	return allow_narrow(ctx);
}

int
gw_seccomp_install(int fd, char *err, size_t errlen)
{
	struct sigaction sa = { .sa_sigaction = sigsys_handler,
	    .sa_flags = SA_SIGINFO };
	scmp_filter_ctx ctx;
	int rc;

#ifdef RUNNING_ON_VALGRIND
	/* valgrind runs the program on its own system calls and does not
	 * know seccomp(2): a filter would trap valgrind itself. The memcheck
	 * gate runs the child unfiltered, and says so. Outside valgrind this
	 * is a no-op instruction sequence that reads 0. */
	if (RUNNING_ON_VALGRIND) {
		snprintf(err, errlen, "seccomp: no system call filter: running "
		    "under valgrind, which cannot run a filtered process");
		return 1;
	}
#endif
	report_fd = fd;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		snprintf(err, errlen, "seccomp: SIGSYS handler: %s",
		    strerror(errno));
		return -1;
	}
	/* other architectures' calls (x32, i386 on x86_64) kill outright */
	if ((ctx = seccomp_init(SCMP_ACT_TRAP)) == NULL) {
		snprintf(err, errlen, "seccomp: cannot make a filter (out of "
		    "memory)");
		return -1;
	}
	rc = build(ctx);
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0) {
		snprintf(err, errlen, "seccomp: cannot install the system call "
		    "filter: %s (is the kernel built with CONFIG_SECCOMP_FILTER?)",
		    strerror(rc == -1 ? errno : -rc));
		return -1;
	}
	return 0;
}

/* For the parent's log: the name of a system call the child was refused. */
const char *
gw_seccomp_name(int nr, char *buf, size_t len)
{
	char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

	snprintf(buf, len, "%s", name != NULL ? name : "unknown");
	free(name);
	return buf;
}
