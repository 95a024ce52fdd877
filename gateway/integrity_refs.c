/* integrity_refs.c -- the files a web client's entry document or web
 * manifest refers to (scripts, stylesheets, web manifests, icons, a
 * manifest's service worker), read with real parsers: libgumbo for HTML,
 * jansson for JSON. References are handed over as written, unresolved. */
#include <string.h>
#include <strings.h>

#include <gumbo.h>
#include <jansson.h>

#include "gateway/gw_priv.h"

#define REFS_MAX_DEPTH 256	/* element nesting walked; gumbo's own limit is
				   higher, a real page is far below it */
#define REFS_MAX_REFS  4096	/* references reported per document */

struct refs_walk {
	gw_ref_fn  fn;
	void      *arg;
	unsigned   n;
};

static void
emit(struct refs_walk *w, const char *ref, enum gw_ref_kind kind)
{
	if (ref == NULL || ref[0] == '\0' || w->n >= REFS_MAX_REFS)
		return;
	w->n++;
	w->fn(w->arg, ref, strlen(ref), kind);
}

/* Whether the space-separated token list `rel` holds `word` (caseless). */
static bool
rel_has(const char *rel, const char *word)
{
	size_t wl = strlen(word);

	while (rel != NULL && *rel != '\0') {
		size_t n;
		rel += strspn(rel, " \t\n\f\r");
		n = strcspn(rel, " \t\n\f\r");
		if (n == wl && strncasecmp(rel, word, n) == 0)
			return true;
		rel += n;
	}
	return false;
}

/* <link rel=...>: what each relation loads, or -1 for one that loads
 * nothing the browser runs or shows as the app. */
static int
link_kind(const char *rel)
{
	if (rel_has(rel, "stylesheet"))
		return GW_REF_STYLE;
	if (rel_has(rel, "manifest"))
		return GW_REF_MANIFEST;
	if (rel_has(rel, "modulepreload"))
		return GW_REF_SCRIPT;
	if (rel_has(rel, "icon") || rel_has(rel, "apple-touch-icon") ||
	    rel_has(rel, "mask-icon"))
		return GW_REF_ICON;
	return -1;
}

static void
walk_element(struct refs_walk *w, const GumboElement *e)
{
	const GumboAttribute *a;
	int kind;

	switch (e->tag) {
	case GUMBO_TAG_SCRIPT:
		a = gumbo_get_attribute(&e->attributes, "src");
		emit(w, a != NULL ? a->value : NULL, GW_REF_SCRIPT);
		break;
	case GUMBO_TAG_LINK:
		a = gumbo_get_attribute(&e->attributes, "rel");
		if (a == NULL || (kind = link_kind(a->value)) < 0)
			break;
		a = gumbo_get_attribute(&e->attributes, "href");
		emit(w, a != NULL ? a->value : NULL, (enum gw_ref_kind)kind);
		break;
	default:
		break;
	}
}

static void
walk(struct refs_walk *w, const GumboNode *node, unsigned depth)
{
	const GumboVector *kids;

	if (depth > REFS_MAX_DEPTH)
		return;
	if (node->type == GUMBO_NODE_ELEMENT) {
		walk_element(w, &node->v.element);
		kids = &node->v.element.children;
	} else if (node->type == GUMBO_NODE_TEMPLATE) {
		kids = &node->v.element.children;
	} else if (node->type == GUMBO_NODE_DOCUMENT) {
		kids = &node->v.document.children;
	} else
		return;
	for (unsigned i = 0; i < kids->length; i++)
		walk(w, kids->data[i], depth + 1);
}

int
gw_refs_html(const char *data, size_t len, gw_ref_fn fn, void *arg)
{
	struct refs_walk w = { fn, arg, 0 };
	GumboOutput *out;

	out = gumbo_parse_with_options(&kGumboDefaultOptions, data, len);
	if (out == NULL)
		return -1;
	walk(&w, out->document, 0);
	gumbo_destroy_output(&kGumboDefaultOptions, out);
	return 0;
}

/* "icons": [{"src": ...}, ...] and the same shape elsewhere. */
static void
json_srcs(struct refs_walk *w, json_t *arr, enum gw_ref_kind kind)
{
	if (!json_is_array(arr))
		return;
	for (size_t i = 0; i < json_array_size(arr); i++)
		emit(w, json_string_value(json_object_get(json_array_get(arr, i),
		    "src")), kind);
}

int
gw_refs_webmanifest(const char *data, size_t len, gw_ref_fn fn, void *arg)
{
	struct refs_walk w = { fn, arg, 0 };
	json_t *root, *sc, *sw;

	root = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return -1;
	}
	json_srcs(&w, json_object_get(root, "icons"), GW_REF_ICON);
	json_srcs(&w, json_object_get(root, "screenshots"), GW_REF_ICON);
	sc = json_object_get(root, "shortcuts");
	for (size_t i = 0; i < json_array_size(sc); i++)
		json_srcs(&w, json_object_get(json_array_get(sc, i), "icons"),
		    GW_REF_ICON);
	/* the older draft's worker member: a worker found without running
	 * the app's scripts */
	sw = json_object_get(root, "serviceworker");
	emit(&w, json_string_value(json_object_get(sw, "src")), GW_REF_WORKER);
	json_decref(root);
	return 0;
}
