/* policy_file.c -- opening the files the configuration names, so that none of them can block or flood a loader. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy.h"

const char *
pol_file_kind(mode_t mode)
{
	if (S_ISREG(mode))
		return "regular file";
	if (S_ISDIR(mode))
		return "directory";
	if (S_ISFIFO(mode))
		return "fifo";
	if (S_ISSOCK(mode))
		return "socket";
	if (S_ISCHR(mode))
		return "character device";
	if (S_ISBLK(mode))
		return "block device";
	if (S_ISLNK(mode))
		return "symbolic link";
	return "unknown file type";
}

static pol_file_opener *opener;
static void *opener_arg;

void
pol_file_set_opener(pol_file_opener *fn, void *arg)
{
	opener = fn;
	opener_arg = arg;
}

/* A descriptor from the opener is judged again here: what the caller reads
 * is a regular file whoever opened it. */
int
pol_file_open(const char *path, int oflags, struct stat *st, char *err,
    size_t errlen)
{
	int fd;

	if (opener == NULL)
		return pol_file_open_local(path, oflags, st, err, errlen);
	if ((oflags & ~O_NOFOLLOW) != 0) {
		snprintf(err, errlen, "cannot open: bad open flags");
		return -1;
	}
	if ((fd = opener(opener_arg, path, oflags, err, errlen)) == -1)
		return -1;
	if (fstat(fd, st) == -1 || !S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "not a regular file");
		close(fd);
		return -1;
	}
	return fd;
}

/* O_NONBLOCK makes the open itself return at once on a FIFO without a
 * writer (a blocking open would wait for one forever); the type is then
 * judged on the descriptor, so what is checked is what is read. */
int
pol_file_open_local(const char *path, int oflags, struct stat *st, char *err,
    size_t errlen)
{
	int fd, fl;

	if ((oflags & ~O_NOFOLLOW) != 0) {
		snprintf(err, errlen, "cannot open: bad open flags");
		return -1;
	}
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | oflags);
	if (fd == -1) {
		int saved = errno;

		/* A socket cannot be opened at all (ENXIO): name its type
		 * rather than the errno, like any other non-regular file. */
		if (stat(path, st) == 0 && !S_ISREG(st->st_mode) &&
		    !(saved == ELOOP && (oflags & O_NOFOLLOW)))
			snprintf(err, errlen, "not a regular file (%s)",
			    pol_file_kind(st->st_mode));
		else if (saved == ELOOP && (oflags & O_NOFOLLOW))
			snprintf(err, errlen, "is a symbolic link: name the "
			    "file itself");
		else
			snprintf(err, errlen, "cannot open: %s",
			    strerror(saved));
		return -1;
	}
	if (fstat(fd, st) == -1) {
		snprintf(err, errlen, "cannot stat: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "not a regular file (%s)",
		    pol_file_kind(st->st_mode));
		close(fd);
		return -1;
	}
	/* Regular files ignore O_NONBLOCK today; clear it so that no reader
	 * ever sees EAGAIN from a file system that does not. */
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
		snprintf(err, errlen, "cannot set blocking mode: %s",
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int
pol_file_check(const char *path, bool missing_ok, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	int saved;

	if ((fd = pol_file_open(path, 0, &st, err, errlen)) != -1) {
		close(fd);
		return 0;
	}
	/* through an opener the path may sit in a folder only it can read:
	 * its errno says whether the file is missing */
	saved = errno;
	if (missing_ok && opener != NULL && saved == ENOENT)
		return 0;
	if (missing_ok && lstat(path, &st) == -1 && errno == ENOENT)
		return 0;
	return -1;
}

/* Reads fd to its end into a buffer of at most max + 1 bytes (the extra
 * one NUL-terminates, and a file that grew past max is caught). */
static int
read_all(int fd, size_t max, char **data, size_t *len, char *err,
    size_t errlen)
{
	size_t cap = max < 65536 ? max + 1 : 65536, n = 0;
	char *buf = malloc(cap), *nb;
	ssize_t r;

	if (buf == NULL)
		goto oom;
	for (;;) {
		if (n == cap - 1 && cap <= max) {
			size_t ncap = cap > max / 2 ? max + 1 : cap * 2;

			if ((nb = realloc(buf, ncap)) == NULL)
				goto oom;
			buf = nb;
			cap = ncap;
		}
		if (n == cap - 1) {	/* max bytes read: is there more? */
			char probe;

			r = read(fd, &probe, 1);
			if (r == -1 && errno == EINTR)
				continue;
			if (r == 1)
				snprintf(err, errlen, "larger than %zu bytes",
				    max);
			else if (r == -1)
				snprintf(err, errlen, "cannot read: %s",
				    strerror(errno));
			if (r != 0)
				goto fail;
			break;
		}
		r = read(fd, buf + n, cap - 1 - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, errlen, "cannot read: %s", strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return 0;
oom:
	snprintf(err, errlen, "cannot read: out of memory");
fail:
	pol_file_free(buf, n);
	return -1;
}

int
pol_file_read(const char *path, size_t max, char **data, size_t *len,
    struct stat *st, char *err, size_t errlen)
{
	struct stat tmp;
	int fd, rc;

	*data = NULL;
	*len = 0;
	if (st == NULL)
		st = &tmp;
	if (max == 0 || max >= SIZE_MAX / 2) {
		snprintf(err, errlen, "cannot read: bad size bound");
		return -1;
	}
	if ((fd = pol_file_open(path, 0, st, err, errlen)) == -1)
		return -1;
	if (st->st_size < 0 || (uintmax_t)st->st_size > max) {
		snprintf(err, errlen, "larger than %zu bytes", max);
		close(fd);
		return -1;
	}
	rc = read_all(fd, max, data, len, err, errlen);
	close(fd);
	return rc;
}

void
pol_file_free(char *data, size_t len)
{
	if (data == NULL)
		return;
	explicit_bzero(data, len);
	free(data);
}
