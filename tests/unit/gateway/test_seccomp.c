/* test_seccomp.c -- the privsep child's system call filter: a forked
 * process that installs it is killed with SIGSYS by each forbidden call
 * (and tells the parent which one), and keeps running through the calls
 * the child needs. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "gateway/privsep.h"

enum forbidden {
	F_PACKET_SOCKET, F_NETLINK_SOCKET, F_BIND, F_LISTEN, F_SETUID,
	F_CHMOD, F_KILL_PARENT, F_TGKILL_PARENT,
};

static long
call_forbidden(enum forbidden f)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int s = socket(AF_INET, SOCK_STREAM, 0);

	switch (f) {
	case F_PACKET_SOCKET:
		return syscall(SYS_socket, AF_PACKET, SOCK_RAW, 0);
	case F_NETLINK_SOCKET:
		return syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 0);
	case F_BIND:
		return syscall(SYS_bind, s, &sin, sizeof(sin));
	case F_LISTEN:
		return syscall(SYS_listen, s, 1);
	case F_SETUID:
		return syscall(SYS_setuid, 0);
	case F_CHMOD:
		return syscall(SYS_fchmodat, AT_FDCWD, "/", 0777, 0);
	case F_KILL_PARENT:
		return syscall(SYS_kill, getppid(), 0);
	case F_TGKILL_PARENT:
		return syscall(SYS_tgkill, getppid(), getppid(), 0);
	}
	return -1;
}

static void
enter_filter(int fd)
{
	char err[256];

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    gw_seccomp_install(fd, err, sizeof(err)) < 0)
		_exit(3);
}

/* The forked process's wait status, and the syscall number it reported
 * (-1 if none). */
static int
run_forked(enum forbidden f, bool allowed_only, int *reported)
{
	struct gw_privsep_msg m;
	int sv[2], st = 0;
	pid_t pid;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char buf[16];
		int s, fd;

		close(sv[0]);
		enter_filter(sv[1]);
		/* what the child needs: these must not kill */
		s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (s < 0 || fd < 0 || getrandom(buf, sizeof(buf), 0) !=
		    (ssize_t)sizeof(buf) || getpid() <= 0 ||
		    syscall(SYS_tgkill, getpid(), gettid(), 0) != 0)
			_exit(4);
		if (!allowed_only)
			(void)call_forbidden(f);
		_exit(0);
	}
	close(sv[1]);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	*reported = -1;
	if (recv(sv[0], &m, sizeof(m), MSG_DONTWAIT) ==
	    (ssize_t)offsetof(struct gw_privsep_msg, path) &&
	    m.type == GW_PS_SECCOMP)
		*reported = (int)m.arg;
	close(sv[0]);
	return st;
}

ParameterizedTestParameters(seccomp, forbidden_call_kills)
{
	static enum forbidden calls[] = { F_PACKET_SOCKET, F_NETLINK_SOCKET,
	    F_BIND, F_LISTEN, F_SETUID, F_CHMOD, F_KILL_PARENT,
	    F_TGKILL_PARENT };

	return cr_make_param_array(enum forbidden, calls,
	    sizeof(calls) / sizeof(calls[0]));
}

ParameterizedTest(enum forbidden *f, seccomp, forbidden_call_kills)
{
	static const long nr[] = { SYS_socket, SYS_socket, SYS_bind,
	    SYS_listen, SYS_setuid, SYS_fchmodat, SYS_kill, SYS_tgkill };
	int reported, st = run_forked(*f, false, &reported);

	cr_assert(WIFSIGNALED(st), "call %d: not killed (status 0x%x)", *f, st);
	cr_assert_eq(WTERMSIG(st), SIGSYS, "call %d: signal %d", *f,
	    WTERMSIG(st));
	cr_assert_eq(reported, nr[*f], "call %d: reported %d", *f, reported);
}

Test(seccomp, needed_calls_pass)
{
	int reported, st = run_forked(F_BIND, true, &reported);

	cr_assert(WIFEXITED(st), "killed by signal %d", WTERMSIG(st));
	cr_assert_eq(WEXITSTATUS(st), 0);
	cr_assert_eq(reported, -1);
}

Test(seccomp, name_of_a_call)
{
	char buf[32];

	cr_assert_str_eq(gw_seccomp_name(SYS_ptrace, buf, sizeof(buf)),
	    "ptrace");
}
