/* event_audit.c -- the one writer of audit lines: a jansson object of
 * flat ECS keys, every string made valid UTF-8 before jansson sees it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event/event.h"

/* The handle is the jansson object itself: callers never see jansson. */
static json_t *
obj(struct ev_audit *ev)
{
	return (json_t *)(void *)ev;
}

struct ev_audit *
ev_audit_new(const char *module, const char *action, const char *outcome)
{
	char when[EV_TIME_MAX];
	struct ev_audit *ev;

	ev_timestamp(when);
	ev = (struct ev_audit *)(void *)json_object();
	ev_audit_str(ev, "@timestamp", when);
	ev_audit_str(ev, "event.dataset", "pbxgate.audit");
	ev_audit_str(ev, "event.module", module);
	ev_audit_str(ev, "event.action", action);
	ev_audit_str(ev, "event.outcome", outcome);
	return ev;
}

void
ev_audit_strn(struct ev_audit *ev, const char *key, const char *val,
    size_t len)
{
	/* each input byte becomes at most 3 (U+FFFD) */
	static _Thread_local char clean[EV_AUDIT_STR_MAX + 1];
	size_t n;

	if (ev == NULL)
		return;
	n = ev_utf8_clean(clean, sizeof(clean), val != NULL ? val : "",
	    val != NULL ? len : 0);
	(void)json_object_set_new(obj(ev), key, json_stringn(clean, n));
}

void
ev_audit_str(struct ev_audit *ev, const char *key, const char *val)
{
	ev_audit_strn(ev, key, val, val != NULL ? strlen(val) : 0);
}

void
ev_audit_int(struct ev_audit *ev, const char *key, long long val)
{
	if (ev != NULL)
		(void)json_object_set_new(obj(ev), key, json_integer(val));
}

void
ev_audit_bool(struct ev_audit *ev, const char *key, int val)
{
	if (ev != NULL)
		(void)json_object_set_new(obj(ev), key, json_boolean(val));
}

void
ev_audit_rule(struct ev_audit *ev, const char *key, const char *file,
    unsigned line)
{
	char rule[EV_AUDIT_STR_MAX + 16];
	int n;

	/* line 0: no line decided (the policy's implicit default) */
	if (file == NULL || line == 0) {
		ev_audit_str(ev, key, "(default)");
		return;
	}
	n = snprintf(rule, sizeof(rule), "%.*s:%u", EV_AUDIT_STR_MAX - 1, file,
	    line);
	ev_audit_strn(ev, key, rule, n > 0 ? strlen(rule) : 0);
}

struct ev_audit *
ev_audit_item(struct ev_audit *ev, const char *key)
{
	json_t *list, *item;

	if (ev == NULL)
		return NULL;
	if ((list = json_object_get(obj(ev), key)) == NULL) {
		if (json_object_set_new(obj(ev), key, json_array()) < 0)
			return NULL;
		list = json_object_get(obj(ev), key);
	}
	if (!json_is_array(list) || json_array_size(list) >= EV_AUDIT_LIST_MAX)
		return NULL;
	if ((item = json_object()) == NULL || json_array_append_new(list, item) < 0)
		return NULL;
	return (struct ev_audit *)(void *)item;
}

char *
ev_audit_line(struct ev_audit *ev, size_t *len)
{
	char *s, *line;
	size_t n;

	*len = 0;
	if (ev == NULL)
		return NULL;
	/* insertion order: the fixed five keys come first on every line */
	s = json_dumps(obj(ev), JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj(ev));
	if (s == NULL)
		return NULL;
	n = strlen(s);
	if ((line = realloc(s, n + 2)) == NULL) {
		free(s);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	*len = n + 1;
	return line;
}

void
ev_audit_free(struct ev_audit *ev)
{
	if (ev != NULL)
		json_decref(obj(ev));
}
