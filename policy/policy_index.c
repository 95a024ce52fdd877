/* policy_index.c -- skips path rules that cannot match: a byte trie of the literal prefixes of anchored path regexes. */
#include <stdlib.h>
#include <string.h>

#include "policy/policy_priv.h"

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
	/* Unanchored path regexes that PCRE2 proved need some byte (".php$"
	 * needs '.'): a candidate only when the path holds that byte. */
	uint64_t *need;		/* nbytes rows of nwords */
	unsigned char bytes[256];	/* the bytes with a row, folded */
	unsigned nbytes;
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

/* The byte a rule's positive path regex requires (folded), or -1. */
static int
needed_byte(const struct pol_rule *r)
{
	for (size_t i = 0; i < r->nm; i++) {
		const struct pol_matcher *m = &r->m[i];

		if (m->kind != M_PATH || m->negate)
			continue;
		if (m->re.first >= 0)
			return fold((unsigned char)m->re.first);
		if (m->re.last >= 0)
			return fold((unsigned char)m->re.last);
	}
	return -1;
}

static int
add_need(struct pol_pindex *x, unsigned char b, size_t id)
{
	unsigned row;
	uint64_t *nn;

	for (row = 0; row < x->nbytes && x->bytes[row] != b; row++)
		;
	if (row == x->nbytes) {
		nn = reallocarray(x->need, (x->nbytes + 1) * x->nwords,
		    sizeof *nn);
		if (nn == NULL)
			return -1;
		x->need = nn;
		memset(&nn[x->nbytes * x->nwords], 0, x->nwords * sizeof *nn);
		x->bytes[x->nbytes++] = b;
	}
	x->need[row * x->nwords + id / 64] |= UINT64_C(1) << (id % 64);
	return 0;
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
		int b = rules[i].prefix == NULL ? needed_byte(&rules[i]) : -1;

		if (rules[i].prefix != NULL) {
			if (insert(x, rules[i].prefix, (uint32_t)i) == -1)
				goto fail;
		} else if (b >= 0) {
			if (add_need(x, (unsigned char)b, i) == -1)
				goto fail;
		} else {
			x->always[i / 64] |= UINT64_C(1) << (i % 64);
		}
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
	free(x->need);
	free(x);
}

bool
pol_pindex_candidates(const struct pol_pindex *x, const char *path,
    uint64_t *bits, size_t nwords)
{
	uint32_t at = 0;
	uint64_t present[4] = { 0 };

	if (x->always == NULL || nwords < x->nwords)
		return false;
	memcpy(bits, x->always, x->nwords * sizeof *bits);
	if (x->nbytes > 0) {
		for (const unsigned char *s = (const unsigned char *)path; *s; s++)
			present[fold(*s) / 64] |= UINT64_C(1) << (fold(*s) % 64);
		for (unsigned row = 0; row < x->nbytes; row++) {
			unsigned char b = x->bytes[row];

			if ((present[b / 64] >> (b % 64) & 1) == 0)
				continue;
			for (size_t w = 0; w < x->nwords; w++)
				bits[w] |= x->need[row * x->nwords + w];
		}
	}
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
