/* test_file.c -- pol_file_*: only regular files are opened or read, nothing
 * blocks on a FIFO, reads are bounded, errors say exactly why. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "helpers.h"

/* A FIFO open that blocked would hang the test: the suite's timeout turns
 * that into a failure instead. */
TestSuite(file, .fini = th_cleanup, .timeout = 10);

static char pathbuf[8][512];

static const char *
tpath(int slot, const char *name)
{
	snprintf(pathbuf[slot], sizeof pathbuf[slot], "%s/%s", th_dir(), name);
	return pathbuf[slot];
}

static const char *
mk_fifo(void)
{
	const char *p = tpath(0, "fifo");

	cr_assert_eq(mkfifo(p, 0600), 0, "mkfifo: %s", strerror(errno));
	return p;
}

static const char *
mk_dir(void)
{
	const char *p = tpath(0, "dir");

	cr_assert_eq(mkdir(p, 0700), 0, "mkdir: %s", strerror(errno));
	return p;
}

static int sock_fd = -1;

static const char *
mk_socket(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *p = tpath(0, "sock");

	cr_assert_lt(strlen(p), sizeof sun.sun_path);
	memcpy(sun.sun_path, p, strlen(p) + 1);
	sock_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_geq(sock_fd, 0);
	cr_assert_eq(bind(sock_fd, (struct sockaddr *)&sun, sizeof sun), 0,
	    "bind: %s", strerror(errno));
	return p;
}

static const char *
mk_missing(void)
{
	return tpath(0, "missing");
}

static const char *
mk_link_to_fifo(void)
{
	const char *f = mk_fifo(), *p = tpath(1, "link-fifo");

	cr_assert_eq(symlink(f, p), 0);
	return p;
}

static const char *dev_zero(void) { return "/dev/zero"; }
static const char *dev_null(void) { return "/dev/null"; }

/* One line per kind of file that must not be opened, with its error. */
static const struct {
	const char *name;
	const char *(*make)(void);
	const char *err;
} refused[] = {
	{ "fifo", mk_fifo, "not a regular file (fifo)" },
	{ "symlink to fifo", mk_link_to_fifo, "not a regular file (fifo)" },
	{ "directory", mk_dir, "not a regular file (directory)" },
	{ "socket", mk_socket, "not a regular file (socket)" },
	{ "/dev/zero", dev_zero, "not a regular file (character device)" },
	{ "/dev/null", dev_null, "not a regular file (character device)" },
	{ "missing", mk_missing, "cannot open: No such file or directory" },
};

#define NREFUSED (sizeof refused / sizeof refused[0])

static void
expect_refused(size_t i, int (*call)(const char *, char *, size_t))
{
	char err[256] = "";

	th_cleanup();
	cr_assert_eq(call(refused[i].make(), err, sizeof err), -1, "%s",
	    refused[i].name);
	cr_expect_str_eq(err, refused[i].err, "%s", refused[i].name);
	if (sock_fd >= 0)
		close(sock_fd);
	sock_fd = -1;
}

static int
call_open(const char *p, char *err, size_t errlen)
{
	struct stat st;
	int fd = pol_file_open(p, 0, &st, err, errlen);

	if (fd >= 0)
		close(fd);
	return fd < 0 ? -1 : 0;
}

static int
call_read(const char *p, char *err, size_t errlen)
{
	char *data = (char *)"untouched";
	size_t len = 7;
	int rc = pol_file_read(p, 1024, &data, &len, NULL, err, errlen);

	cr_expect_null(data, "no buffer on failure");
	cr_expect_eq(len, 0);
	return rc;
}

static int
call_check(const char *p, char *err, size_t errlen)
{
	return pol_file_check(p, false, err, errlen);
}

Test(file, open_refuses_every_non_regular_kind)
{
	for (size_t i = 0; i < NREFUSED; i++)
		expect_refused(i, call_open);
}

Test(file, read_refuses_every_non_regular_kind)
{
	for (size_t i = 0; i < NREFUSED; i++)
		expect_refused(i, call_read);
}

Test(file, check_refuses_every_non_regular_kind)
{
	for (size_t i = 0; i < NREFUSED; i++)
		expect_refused(i, call_check);
}

/* A writer holding the FIFO open must not make it acceptable either. */
Test(file, fifo_with_writer_refused)
{
	const char *p = mk_fifo();
	char err[256];
	struct stat st;
	int rfd, wfd;

	rfd = open(p, O_RDONLY | O_NONBLOCK);
	cr_assert_geq(rfd, 0);
	wfd = open(p, O_WRONLY);
	cr_assert_geq(wfd, 0);
	cr_assert_eq(write(wfd, "10.0.0.0/8\n", 11), 11);
	cr_expect_eq(pol_file_open(p, 0, &st, err, sizeof err), -1);
	cr_expect_str_eq(err, "not a regular file (fifo)");
	close(wfd);
	close(rfd);
}

Test(file, check_missing_ok_only_when_missing)
{
	char err[256];

	cr_expect_eq(pol_file_check(mk_missing(), true, err, sizeof err), 0);
	cr_expect_eq(pol_file_check(mk_fifo(), true, err, sizeof err), -1);
	cr_expect_str_eq(err, "not a regular file (fifo)");
	cr_expect_eq(pol_file_check(th_write("r", "x"), true, err,
	    sizeof err), 0);
}

/* A dangling link is not "missing": whatever creates the file would
 * follow it somewhere else. */
Test(file, check_dangling_symlink_refused)
{
	const char *p = tpath(1, "dangling");
	char err[256];

	cr_assert_eq(symlink(tpath(2, "nowhere"), p), 0);
	cr_expect_eq(pol_file_check(p, true, err, sizeof err), -1);
	cr_expect_str_eq(err, "cannot open: No such file or directory");
}

Test(file, read_regular_file_nul_terminated)
{
	const char *p = th_write("r.txt", "10.0.0.0/8\n");
	char err[256], *data;
	struct stat st;
	size_t len;

	cr_assert_eq(pol_file_read(p, 1024, &data, &len, &st, err, sizeof err),
	    0, "%s", err);
	cr_expect_eq(len, 11);
	cr_expect_str_eq(data, "10.0.0.0/8\n");
	cr_expect(S_ISREG(st.st_mode));
	pol_file_free(data, len);
}

Test(file, read_empty_file)
{
	char err[256], *data;
	size_t len = 9;

	cr_assert_eq(pol_file_read(th_write("e", ""), 16, &data, &len, NULL,
	    err, sizeof err), 0, "%s", err);
	cr_expect_eq(len, 0);
	cr_expect_str_eq(data, "");
	pol_file_free(data, len);
}

Test(file, symlink_to_regular_followed_unless_nofollow)
{
	const char *target = th_write("t", "x\n"), *p = tpath(1, "link");
	char err[256];
	struct stat st;
	int fd;

	cr_assert_eq(symlink(target, p), 0);
	fd = pol_file_open(p, 0, &st, err, sizeof err);
	cr_expect_geq(fd, 0, "%s", err);
	close(fd);
	cr_expect_eq(pol_file_open(p, O_NOFOLLOW, &st, err, sizeof err), -1);
	cr_expect_str_eq(err, "is a symbolic link: name the file itself");
}

Test(file, descriptor_blocking_and_cloexec)
{
	char err[256];
	struct stat st;
	int fd = pol_file_open(th_write("r", "x"), 0, &st, err, sizeof err);

	cr_assert_geq(fd, 0, "%s", err);
	cr_expect_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	cr_expect_neq(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	close(fd);
}

Test(file, bad_open_flags_refused)
{
	char err[256];
	struct stat st;

	cr_expect_eq(pol_file_open(th_write("r", "x"), O_RDWR, &st, err,
	    sizeof err), -1);
	cr_expect_str_eq(err, "cannot open: bad open flags");
}

/* Exactly max bytes pass, one more is refused; across the 64 KiB first
 * buffer so that growing is exercised. */
Test(file, size_bound_exact)
{
	size_t max = 200000, len;
	char *big = malloc(max + 2), err[256], *data;

	cr_assert_not_null(big);
	memset(big, 'a', max + 1);
	big[max] = '\0';
	cr_assert_eq(pol_file_read(th_write("max", big), max, &data, &len, NULL,
	    err, sizeof err), 0, "%s", err);
	cr_expect_eq(len, max);
	cr_expect_eq(memcmp(data, big, max), 0);
	cr_expect_eq(data[max], '\0');
	pol_file_free(data, len);
	big[max] = 'a';
	big[max + 1] = '\0';
	cr_expect_eq(pol_file_read(th_write("over", big), max, &data, &len,
	    NULL, err, sizeof err), -1);
	cr_expect_str_eq(err, "larger than 200000 bytes");
	free(big);
}

/* A file whose size says 0 but that yields more (procfs; a file growing
 * after fstat looks the same) is still cut at the bound. */
Test(file, size_bound_when_stat_lies)
{
	char err[256], *data;
	size_t len;

	cr_expect_eq(pol_file_read("/proc/self/status", 16, &data, &len, NULL,
	    err, sizeof err), -1);
	cr_expect_str_eq(err, "larger than 16 bytes");
}

Test(file, kind_names)
{
	cr_expect_str_eq(pol_file_kind(S_IFREG), "regular file");
	cr_expect_str_eq(pol_file_kind(S_IFDIR), "directory");
	cr_expect_str_eq(pol_file_kind(S_IFIFO), "fifo");
	cr_expect_str_eq(pol_file_kind(S_IFSOCK), "socket");
	cr_expect_str_eq(pol_file_kind(S_IFCHR), "character device");
	cr_expect_str_eq(pol_file_kind(S_IFBLK), "block device");
	cr_expect_str_eq(pol_file_kind(S_IFLNK), "symbolic link");
	cr_expect_str_eq(pol_file_kind(0), "unknown file type");
}
