/* policy_bench.c -- decisions per second and memory with 100,000 listed CIDRs and 200 path rules. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"

#define NCIDR	100000
#define NRULES	200
#define NREQ	4096
#define ROUNDS	1000	/* NREQ * ROUNDS decisions per run */

static uint64_t seed = 0x5eed;

static uint32_t
rnd(void)
{
	seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(seed >> 32);
}

static long
rss_kib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return -1;
	char line[128];
	if (fgets(line, sizeof(line), f) == NULL ||
	    sscanf(line, "%ld %ld", &pages, &resident) != 2)	/* NOLINT(cert-err34-c): /proc */
		resident = -1;
	fclose(f);
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
report(void *arg, bool warning, const char *msg)
{
	(void)arg;
	fprintf(stderr, "%s: %s\n", warning ? "warning" : "error", msg);
}

/* 100,000 CIDRs: 90% IPv4 /16-/32, 10% IPv6 /32-/64. */
static void
write_list(const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	for (int i = 0; i < NCIDR; i++) {
		if (i % 10 != 0) {
			unsigned len = 16 + rnd() % 17;
			uint32_t a = rnd() & (len == 32 ? ~0u : ~(~0u >> len));

			fprintf(f, "%u.%u.%u.%u/%u\n", a >> 24, (a >> 16) & 255,
			    (a >> 8) & 255, a & 255, len);
		} else {
			fprintf(f, "2001:%x:%x::/48\n", rnd() & 0xffff, rnd() & 0xffff);
		}
	}
	fclose(f);
}

/* The draft's shape: a block list first, 200 path rules, a catch-all. */
static void
write_policy(const char *path, const char *list)
{
	static const char *const act[] = { "allow", "login", "mfa", "deny" };
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	fprintf(f, "list blocked file:%s\nlist office 203.0.113.0/24\n"
	    "deny from @blocked\n", list);
	for (int i = 0; i < NRULES; i++) {
		switch (i % 10) {
		case 0:	/* unanchored: tried on every request */
			fprintf(f, "deny path \\.(bak%d|old)$\n", i);
			break;
		case 1:
			fprintf(f, "%s path ^/app%d/(v1|v2)/ from @office\n",
			    act[i % 4], i);
			break;
		default:
			fprintf(f, "%s path ^/app%d(/|$)\n", act[i % 4], i);
		}
	}
	fprintf(f, "login any\n");
	fclose(f);
}

struct req {
	struct sockaddr_in sin;
	char path[64];
};

static double
run(const struct pol_policy *p, struct req *reqs, const char *label)
{
	struct pol_request r = { .method = "GET" };
	struct pol_verdict v;
	unsigned long deny = 0;
	double t0 = now(), dt;

	for (int k = 0; k < ROUNDS; k++) {
		for (int i = 0; i < NREQ; i++) {
			r.peer = (struct sockaddr *)&reqs[i].sin;
			r.path = reqs[i].path;
			pol_decide(p, &r, &v);
			deny += v.action == POL_DENY;
		}
	}
	dt = now() - t0;
	printf("%-34s %10.0f decisions/s  (%.0f ns each, %lu denied)\n", label,
	    (double)NREQ * ROUNDS / dt, dt * 1e9 / ((double)NREQ * ROUNDS), deny);
	return (double)NREQ * ROUNDS / dt;
}

int
main(void)
{
	char dir[] = "/tmp/pbxgate-bench-XXXXXX", list[128], pol[128];
	static struct req reqs[NREQ];
	struct pol_policy *p;
	long rss0, rss1;
	double t0, rate;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(list, sizeof list, "%s/blocked.txt", dir);
	snprintf(pol, sizeof pol, "%s/bench.policy", dir);
	write_list(list);
	write_policy(pol, list);
	rss0 = rss_kib();
	t0 = now();
	if ((p = pol_load(pol, NULL, report, NULL)) == NULL)
		return 1;
	printf("policy: %d listed CIDRs, %zu rules, loaded in %.0f ms\n", NCIDR,
	    pol_rule_count(p), (now() - t0) * 1e3);
	rss1 = rss_kib();
	printf("memory: %ld KiB RSS more after loading (%.1f bytes per CIDR)\n",
	    rss1 - rss0, (double)(rss1 - rss0) * 1024 / NCIDR);

	/* Mixed traffic: random peers (some listed), paths of the rules. */
	for (int i = 0; i < NREQ; i++) {
		reqs[i].sin.sin_family = AF_INET;
		reqs[i].sin.sin_addr.s_addr = htonl(rnd());
		snprintf(reqs[i].path, sizeof reqs[i].path, "/app%u/%s",
		    rnd() % (NRULES * 2), i % 3 ? "v1/x" : "");
	}
	rate = run(p, reqs, "mixed paths, random peers:");
	/* Worst case for the rules: no path rule applies, so the request
	 * passes every rule the index cannot skip. */
	for (int i = 0; i < NREQ; i++)
		snprintf(reqs[i].path, sizeof reqs[i].path, "/webclient/%d", i);
	run(p, reqs, "no path rule applies:");
	/* Paths with a '.': the 20 unanchored rules all run their regex. */
	for (int i = 0; i < NREQ; i++)
		snprintf(reqs[i].path, sizeof reqs[i].path, "/webclient/%d.js", i);
	run(p, reqs, "20 unanchored regexes run:");
	pol_free(p);
	unlink(list);
	unlink(pol);
	rmdir(dir);
	printf("target >= 2000000 decisions/s on one core: %s\n",
	    rate >= 2e6 ? "met" : "NOT met");
	return 0;
}
