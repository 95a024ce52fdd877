/* policy_cidr.c -- the path-compressed radix trie of a CIDR set, shared by IPv4 and IPv6. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_priv.h"

#define NONE UINT32_MAX
#define MAX_NODES (UINT32_MAX / 2)

/* A Patricia node: its key is masked to `len` bits; `term` marks a prefix
 * that was added. Children are indices, which keeps a node at 28 bytes. */
struct node {
	struct pol_addr key;
	uint32_t child[2];
	uint8_t len;	/* 0..128 */
	bool term;
};

/* Level compression for big sets (pol_cidrset_optimise): one 16-bit
 * stride below the IPv4-mapped /96 node and one at the IPv6 root. Entry t
 * says where the walk for that /112 (IPv4 /16) or /16 block resumes:
 * COVERED (a prefix holds the whole block), NONE, or a node index. It
 * turns the ~17 cache misses of a deep walk into one or two. */
#define COVERED (UINT32_MAX - 1)
#define STRIDE 65536

struct pol_cidrset {
	struct node *nodes;
	uint32_t nnodes, cap;
	uint32_t root;
	size_t count;
	uint32_t *v4tab, *v6tab;	/* NULL until optimised */
};

static unsigned
key_bit(const struct pol_addr *k, unsigned i)
{
	if (i < 64)
		return (unsigned)(k->hi >> (63 - i)) & 1;
	return (unsigned)(k->lo >> (127 - i)) & 1;
}

/* Number of leading bits the two keys share (0..128). */
static unsigned
key_common(const struct pol_addr *a, const struct pol_addr *b)
{
	uint64_t x = a->hi ^ b->hi;

	if (x != 0)
		return (unsigned)__builtin_clzll(x);
	x = a->lo ^ b->lo;
	if (x != 0)
		return 64 + (unsigned)__builtin_clzll(x);
	return 128;
}

struct pol_cidrset *
pol_cidrset_new(void)
{
	struct pol_cidrset *s = calloc(1, sizeof *s);

	if (s != NULL)
		s->root = NONE;
	return s;
}

void
pol_cidrset_free(struct pol_cidrset *s)
{
	if (s == NULL)
		return;
	free(s->nodes);
	free(s->v4tab);
	free(s->v6tab);
	free(s);
}

size_t
pol_cidrset_count(const struct pol_cidrset *s)
{
	return s->count;
}

size_t
pol_cidrset_memory(const struct pol_cidrset *s)
{
	return sizeof *s + (size_t)s->cap * sizeof(struct node) +
	    (s->v4tab != NULL ? STRIDE * sizeof(uint32_t) : 0) +
	    (s->v6tab != NULL ? STRIDE * sizeof(uint32_t) : 0);
}

static uint32_t
node_new(struct pol_cidrset *s, const struct pol_addr *k, unsigned len, bool term)
{
	struct node *n;

	if (s->nnodes == s->cap) {
		uint32_t ncap = s->cap == 0 ? 64 : s->cap * 2;
		struct node *nn;

		if (s->cap >= MAX_NODES)
			return NONE;
		nn = reallocarray(s->nodes, ncap, sizeof *nn);
		if (nn == NULL)
			return NONE;
		s->nodes = nn;
		s->cap = ncap;
	}
	n = &s->nodes[s->nnodes];
	n->key = pol_addr_mask(k, len);
	n->len = (uint8_t)len;
	n->term = term;
	n->child[0] = n->child[1] = NONE;
	return s->nnodes++;
}

static void
set_link(struct pol_cidrset *s, uint32_t parent, unsigned side, uint32_t v)
{
	if (parent == NONE)
		s->root = v;
	else
		s->nodes[parent].child[side] = v;
}

/* Puts prefix k/len above node `at`, which shares only `common` bits with
 * it; returns the new subtree root or NONE. */
static uint32_t
split(struct pol_cidrset *s, uint32_t at, const struct pol_addr *k,
    unsigned len, unsigned common)
{
	uint32_t mid, leaf;
	struct pol_addr old = s->nodes[at].key;

	if (common == len) {
		if ((mid = node_new(s, k, len, true)) == NONE)
			return NONE;
		s->nodes[mid].child[key_bit(&old, len)] = at;
		return mid;
	}
	if ((mid = node_new(s, k, common, false)) == NONE)
		return NONE;
	if ((leaf = node_new(s, k, len, true)) == NONE)
		return NONE;	/* mid stays unreferenced: harmless */
	s->nodes[mid].child[key_bit(&old, common)] = at;
	s->nodes[mid].child[key_bit(k, common)] = leaf;
	return mid;
}

int
pol_cidrset_add_key(struct pol_cidrset *s, const struct pol_addr *kin,
    unsigned len)
{
	struct pol_addr k = pol_addr_mask(kin, len);
	uint32_t parent = NONE, at = s->root, nid;
	unsigned side = 0;

	/* The stride tables describe the old trie: drop them. */
	free(s->v4tab);
	free(s->v6tab);
	s->v4tab = s->v6tab = NULL;

	/* Indices, not pointers: node_new() may move the array. Each pass
	 * descends one level, so 130 passes bound the walk. */
	for (int depth = 0; depth < 130; depth++) {
		unsigned common, nlen;

		if (at == NONE) {
			if ((nid = node_new(s, &k, len, true)) == NONE)
				return -1;
			set_link(s, parent, side, nid);
			s->count++;
			return 0;
		}
		nlen = s->nodes[at].len;
		common = key_common(&s->nodes[at].key, &k);
		if (common > nlen)
			common = nlen;
		if (common > len)
			common = len;
		if (common < nlen) {
			if ((nid = split(s, at, &k, len, common)) == NONE)
				return -1;
			set_link(s, parent, side, nid);
			s->count++;
			return 0;
		}
		if (nlen == len) {
			if (!s->nodes[at].term)
				s->count++;
			s->nodes[at].term = true;
			return 0;
		}
		parent = at;
		side = key_bit(&k, nlen);
		at = s->nodes[at].child[side];
	}
	return -1;
}

int
pol_cidrset_add(struct pol_cidrset *s, const char *text, char *err,
    size_t errlen)
{
	struct pol_cidr c;

	if (pol_cidr_parse(text, &c, err, errlen) == -1)
		return -1;
	if (pol_cidrset_add_key(s, &c.net, c.len) == -1) {
		snprintf(err, errlen, "out of memory adding '%s'", text);
		return -1;
	}
	return 0;
}

/* Where a walk for any address of block `key`/`blen` continues. */
static uint32_t
stride_start(const struct pol_cidrset *s, const struct pol_addr *key,
    unsigned blen)
{
	uint32_t at = s->root;

	while (at != NONE && s->nodes[at].len < blen) {
		const struct node *n = &s->nodes[at];

		if (!pol_addr_covers(&n->key, n->len, key))
			return NONE;
		if (n->term)
			return COVERED;
		at = n->child[key_bit(key, n->len)];
	}
	return at;
}

static uint32_t *
stride_table(const struct pol_cidrset *s, bool v4)
{
	uint32_t *tab = malloc(STRIDE * sizeof *tab);

	if (tab == NULL)
		return NULL;
	for (uint32_t t = 0; t < STRIDE; t++) {
		struct pol_addr k;

		if (v4) {
			k.hi = 0;
			k.lo = UINT64_C(0xffff) << 32 | (uint64_t)t << 16;
		} else {
			k.hi = (uint64_t)t << 48;
			k.lo = 0;
		}
		tab[t] = stride_start(s, &k, v4 ? 112 : 16);
	}
	return tab;
}

int
pol_cidrset_optimise(struct pol_cidrset *s)
{
	if (s->count < POL_CIDRSET_STRIDE_MIN || s->v4tab != NULL)
		return 0;
	s->v4tab = stride_table(s, true);
	s->v6tab = stride_table(s, false);
	if (s->v4tab == NULL || s->v6tab == NULL) {
		free(s->v4tab);
		free(s->v6tab);
		s->v4tab = s->v6tab = NULL;
		return -1;
	}
	return 0;
}

bool
pol_cidrset_contains_key(const struct pol_cidrset *s, const struct pol_addr *k)
{
	uint32_t at = s->root;

	if (s->v4tab != NULL) {
		/* An IPv4 address never lies in a non-mapped /16 block
		 * except block 0, which the v4 table refines. */
		at = pol_addr_is_v4(k) ? s->v4tab[(k->lo >> 16) & 0xffff] :
		    s->v6tab[k->hi >> 48];
		if (at == COVERED)
			return true;
	}

	/* Every step goes one node deeper and a node is at most 128 bits
	 * deep, so at most 129 visits. */
	while (at != NONE) {
		const struct node *n = &s->nodes[at];

		if (!pol_addr_covers(&n->key, n->len, k))
			return false;
		if (n->term)
			return true;
		if (n->len >= 128)
			return false;
		at = n->child[key_bit(k, n->len)];
	}
	return false;
}

bool
pol_cidrset_contains(const struct pol_cidrset *s, const struct sockaddr *sa)
{
	struct pol_addr k;

	if (s == NULL || !pol_addr_from_sockaddr(sa, &k))
		return false;
	return pol_cidrset_contains_key(s, &k);
}
