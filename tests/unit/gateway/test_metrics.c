/* test_metrics.c -- scrub rule hits in the exposition: every relay's in
 * pbxgate_smtp_scrub_rule_hits_total (labels unchanged), a site relay's
 * also under its own site in pbxgate_site_smtp_scrub_rule_hits_total, and
 * the bounds (16 pairs per site, then rule "other"). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gateway/gw_priv.h"

static struct gw_metrics *m;
static char *text;

static void
setup(void)
{
	m = calloc(1, sizeof(*m));
	cr_assert_not_null(m);
}

static void
teardown(void)
{
	gw_metrics_free_sites(m);
	free(m);
	free(text);
	text = NULL;
}

/* The exposition as one string (freed by teardown). */
static const char *
render(void)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;

	cr_assert_not_null(b);
	gw_metrics_render(m, NULL, b);
	n = evbuffer_get_length(b);
	free(text);
	text = malloc(n + 1);
	cr_assert_not_null(text);
	evbuffer_remove(b, text, n);
	text[n] = '\0';
	evbuffer_free(b);
	return text;
}

/* A site slot with a relay, as start_mail makes it. */
static size_t
site_relay(const char *name)
{
	size_t slot = gw_metrics_site_slot(m, name);

	cr_assert_gt(slot, 0);
	cr_assert(gw_metrics_site_scrub_init(m, slot));
	atomic_store(&m->site[slot - 1].smtp, true);
	return slot;
}

/* A site's hit, counted as mail_site_hit_cb counts it. */
static void
site_hit(size_t slot, const char *rule, const char *action, unsigned n)
{
	gw_metrics_site_scrub_hit(m, slot, rule, action, n);
	gw_metrics_scrub_hit(m, rule, action, n);
}

static void
has_line(const char *line)
{
	char want[256];

	snprintf(want, sizeof(want), "\n%s\n", line);
	cr_assert_not_null(strstr(text, want), "missing line: %s", line);
}

static void
lacks(const char *part)
{
	cr_assert_null(strstr(text, part), "unexpected: %s", part);
}

TestSuite(metrics, .init = setup, .fini = teardown);

Test(metrics, no_sites_no_site_family)
{
	gw_metrics_scrub_hit(m, "pw", "replace", 2);
	render();
	has_line("pbxgate_smtp_scrub_rule_hits_total{rule=\"pw\","
	    "action=\"replace\"} 2");
	has_line("pbxgate_smtp_scrub_rule_hits_total{rule=\"other\","
	    "action=\"other\"} 0");
	lacks("pbxgate_site_smtp_scrub_rule_hits_total");
}

Test(metrics, each_site_counts_its_own_hits)
{
	size_t a = site_relay("alpha"), b = site_relay("beta");

	site_hit(a, "pw", "replace", 3);
	site_hit(b, "secret", "drop", 1);
	site_hit(b, "pw", "replace", 1);
	render();
	/* the totals keep their labels and count every relay */
	has_line("pbxgate_smtp_scrub_rule_hits_total{rule=\"pw\","
	    "action=\"replace\"} 4");
	has_line("pbxgate_smtp_scrub_rule_hits_total{rule=\"secret\","
	    "action=\"drop\"} 1");
	has_line("# TYPE pbxgate_site_smtp_scrub_rule_hits_total counter");
	has_line("pbxgate_site_smtp_scrub_rule_hits_total{site=\"alpha\","
	    "rule=\"pw\",action=\"replace\"} 3");
	has_line("pbxgate_site_smtp_scrub_rule_hits_total{site=\"beta\","
	    "rule=\"pw\",action=\"replace\"} 1");
	has_line("pbxgate_site_smtp_scrub_rule_hits_total{site=\"beta\","
	    "rule=\"secret\",action=\"drop\"} 1");
	has_line("pbxgate_site_smtp_scrub_rule_hits_total{site=\"alpha\","
	    "rule=\"other\",action=\"other\"} 0");
	has_line("pbxgate_site_smtp_scrub_rule_hits_total{site=\"beta\","
	    "rule=\"other\",action=\"other\"} 0");
	lacks("{site=\"alpha\",rule=\"secret\"");
	/* one family header, the samples together */
	cr_assert_eq(strstr(strstr(text, "# TYPE pbxgate_site_smtp_scrub") + 1,
	    "# TYPE pbxgate_site_smtp_scrub"), NULL);
}

Test(metrics, site_without_relay_has_no_series)
{
	size_t a = site_relay("alpha");

	(void)gw_metrics_site_slot(m, "web");	/* a site without smtp_listen */
	site_hit(a, "pw", "replace", 1);
	render();
	lacks("site=\"web\",rule=");
	has_line("pbxgate_site_smtp_scrub_rule_hits_total{site=\"alpha\","
	    "rule=\"pw\",action=\"replace\"} 1");
}

Test(metrics, pairs_past_sixteen_count_as_other)
{
	size_t a = site_relay("alpha");
	char rule[16];

	for (int i = 0; i < GW_SITE_SCRUB_SLOTS + 2; i++) {
		snprintf(rule, sizeof(rule), "r%d", i);
		site_hit(a, rule, "drop", 1);
	}
	render();
	has_line("pbxgate_site_smtp_scrub_rule_hits_total{site=\"alpha\","
	    "rule=\"r15\",action=\"drop\"} 1");
	lacks("{site=\"alpha\",rule=\"r16\"");
	has_line("pbxgate_site_smtp_scrub_rule_hits_total{site=\"alpha\","
	    "rule=\"other\",action=\"other\"} 2");
	/* the totals have 64 pairs: all 18 there */
	has_line("pbxgate_smtp_scrub_rule_hits_total{rule=\"r17\","
	    "action=\"drop\"} 1");
}

Test(metrics, bad_slot_is_ignored)
{
	size_t a = site_relay("alpha");

	gw_metrics_site_scrub_hit(m, 0, "pw", "replace", 1);
	gw_metrics_site_scrub_hit(m, a + 1, "pw", "replace", 1);
	cr_assert(!gw_metrics_site_scrub_init(m, 0));
	cr_assert(!gw_metrics_site_scrub_init(m, a + 1));
	render();
	lacks("{site=\"alpha\",rule=\"pw\"");
}
