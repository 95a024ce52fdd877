/* policy_index.c -- skips path rules that cannot match: a byte trie of the literal prefixes of anchored path regexes. */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

#define NONE UINT32_MAX

struct tnode {
	uint32_t first, next;	/* first child, next sibling */
	uint32_t *ids;		/* rules whose prefix ends here */
	uint32_t nids;
	unsigned char ch;
};

/* Rules without a usable prefix are always candidates; a rule with prefix
 * P is a candidate only when the path starts with P (ASCII case folded,
 * which is a necessary condition for caseless and case-sensitive rules
 * alike). The bitmap keeps first-match order: the caller walks its bits
 * from the lowest. */
struct pol_pindex {
	size_t nwords;
	uint64_t *always;
	struct tnode *nodes;
	uint32_t nnodes, cap;
};

static uint32_t
tnode_new(struct pol_pindex *x, unsigned char ch)
{
	if (x->nnodes == x->cap) {
		uint32_t ncap = x->cap == 0 ? 64 : x->cap * 2;
		struct tnode *nn = reallocarray(x->nodes, ncap, sizeof *nn);

		if (nn == NULL)
			return NONE;
		x->nodes = nn;
		x->cap = ncap;
	}
	memset(&x->nodes[x->nnodes], 0, sizeof x->nodes[0]);
	x->nodes[x->nnodes].first = x->nodes[x->nnodes].next = NONE;
	x->nodes[x->nnodes].ch = ch;
	return x->nnodes++;
}

static uint32_t
child(const struct pol_pindex *x, uint32_t at, unsigned char ch)
{
	for (uint32_t c = x->nodes[at].first; c != NONE; c = x->nodes[c].next)
		if (x->nodes[c].ch == ch)
			return c;
	return NONE;
}

static unsigned char
fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static int
insert(struct pol_pindex *x, const char *prefix, uint32_t id)
{
	uint32_t at = 0, *ids;

	for (const unsigned char *s = (const unsigned char *)prefix; *s; s++) {
		uint32_t c = child(x, at, *s);

		if (c == NONE) {
			if ((c = tnode_new(x, *s)) == NONE)
				return -1;
			x->nodes[c].next = x->nodes[at].first;
			x->nodes[at].first = c;
		}
		at = c;
	}
	ids = reallocarray(x->nodes[at].ids, x->nodes[at].nids + 1, sizeof *ids);
	if (ids == NULL)
		return -1;
	ids[x->nodes[at].nids++] = id;
	x->nodes[at].ids = ids;
	return 0;
}

struct pol_pindex *
pol_pindex_build(const struct pol_rule *rules, size_t n)
{
	struct pol_pindex *x = calloc(1, sizeof *x);

	if (x == NULL)
		return NULL;
	x->nwords = (n + 63) / 64;
	if (x->nwords > POL_INDEX_MAXWORDS)
		return x;	/* too big: no index, every rule is tried */
	if ((x->always = calloc(x->nwords + 1, sizeof *x->always)) == NULL ||
	    tnode_new(x, 0) == NONE)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (rules[i].prefix == NULL)
			x->always[i / 64] |= UINT64_C(1) << (i % 64);
		else if (insert(x, rules[i].prefix, (uint32_t)i) == -1)
			goto fail;
	}
	return x;
fail:
	pol_pindex_free(x);
	return NULL;
}

void
pol_pindex_free(struct pol_pindex *x)
{
	if (x == NULL)
		return;
	for (uint32_t i = 0; i < x->nnodes; i++)
		free(x->nodes[i].ids);
	free(x->nodes);
	free(x->always);
	free(x);
}

bool
pol_pindex_candidates(const struct pol_pindex *x, const char *path,
    uint64_t *bits, size_t nwords)
{
	uint32_t at = 0;

	if (x->always == NULL || nwords < x->nwords)
		return false;
	memcpy(bits, x->always, x->nwords * sizeof *bits);
	for (const unsigned char *s = (const unsigned char *)path; *s; s++) {
		if ((at = child(x, at, fold(*s))) == NONE)
			break;
		for (uint32_t k = 0; k < x->nodes[at].nids; k++) {
			uint32_t id = x->nodes[at].ids[k];

			bits[id / 64] |= UINT64_C(1) << (id % 64);
		}
	}
	return true;
}
