/* privdrop.c -- becoming the configured `user`: its uid, primary group and
 * supplementary groups (Debian's ssl-cert), for `run` after binding and for
 * the CLI commands that create files `run` must open later. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/gateway.h"

/* initgroups() and not setgroups(1, &gid): key files shared through a group
 * (ssl-cert, certbot hooks) stay readable after the drop. */
int
gw_drop_privileges(const char *user, char *err, size_t errlen)
{
	struct passwd *pw;

	if (user == NULL)
		return 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		snprintf(err, errlen, "user %s: no such user", user);
		return -1;
	}
	if (getuid() == pw->pw_uid && geteuid() == pw->pw_uid)
		return 0;
	if (initgroups(user, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		snprintf(err, errlen, "cannot become user %s: %s (start as root, "
		    "or as %s itself)", user, strerror(errno), user);
		return -1;
	}
	if (pw->pw_uid != 0 && setuid(0) == 0) {
		snprintf(err, errlen, "dropped to %s but could regain root", user);
		return -1;
	}
	return 0;
}

/* An existing file that `user` does not own would be unreadable to `run`
 * (0600) or would keep a root-owned copy beside the user's journal: refuse
 * before touching it, and say how to fix it. */
int
gw_check_owner(const char *path, const char *user, char *err, size_t errlen)
{
	struct passwd *pw;
	struct stat st;

	if (path == NULL || user == NULL || (pw = getpwnam(user)) == NULL)
		return 0;
	if (stat(path, &st) < 0)
		return 0;	/* created later, by `user` */
	if (st.st_uid == pw->pw_uid)
		return 0;
	snprintf(err, errlen, "%s is owned by uid %u, not by %s (the config's "
	    "user), which `pbxgate run` drops to: fix it with  chown %s:%u %s  "
	    "(or remove the user line)", path, (unsigned)st.st_uid, user, user,
	    (unsigned)pw->pw_gid, path);
	return -1;
}
