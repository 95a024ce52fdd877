/* policy_cidr.c -- CIDR parsing and the path-compressed radix trie shared by IPv4 and IPv6. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_int.h"

#define NONE UINT32_MAX
#define MAX_NODES (UINT32_MAX / 2)

/* A Patricia node: its key is masked to `len` bits; `term` marks a prefix
 * that was added. Children are indices, which keeps a node at 28 bytes. */
struct node {
	struct pol_key key;
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

static struct pol_key
key_mask(const struct pol_key *k, unsigned len)
{
	struct pol_key m = *k;

	if (len == 0) {
		m.hi = m.lo = 0;
	} else if (len < 64) {
		m.hi &= ~UINT64_C(0) << (64 - len);
		m.lo = 0;
	} else if (len == 64) {
		m.lo = 0;
	} else if (len < 128) {
		m.lo &= ~UINT64_C(0) << (128 - len);
	}
	return m;
}

static unsigned
key_bit(const struct pol_key *k, unsigned i)
{
	if (i < 64)
		return (unsigned)(k->hi >> (63 - i)) & 1;
	return (unsigned)(k->lo >> (127 - i)) & 1;
}

/* Number of leading bits the two keys share (0..128). */
static unsigned
key_common(const struct pol_key *a, const struct pol_key *b)
{
	uint64_t x = a->hi ^ b->hi;

	if (x != 0)
		return (unsigned)__builtin_clzll(x);
	x = a->lo ^ b->lo;
	if (x != 0)
		return 64 + (unsigned)__builtin_clzll(x);
	return 128;
}

static bool
key_covers(const struct pol_key *prefix, unsigned len, const struct pol_key *k)
{
	struct pol_key m = key_mask(k, len);

	return m.hi == prefix->hi && m.lo == prefix->lo;
}

bool
pol_sockaddr_key(const struct sockaddr *sa, struct pol_key *key)
{
	const uint8_t *b;

	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		key->hi = 0;
		key->lo = UINT64_C(0xffff) << 32 | ntohl(in->sin_addr.s_addr);
		return true;
	}
	if (sa->sa_family != AF_INET6)
		return false;
	b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	key->hi = key->lo = 0;
	for (int i = 0; i < 8; i++) {
		key->hi = key->hi << 8 | b[i];
		key->lo = key->lo << 8 | b[i + 8];
	}
	return true;
}

static void
key_format(const struct pol_key *k, bool v6, char *buf, size_t buflen)
{
	uint8_t b[16];

	for (int i = 0; i < 8; i++) {
		b[i] = (uint8_t)(k->hi >> (56 - 8 * i));
		b[i + 8] = (uint8_t)(k->lo >> (56 - 8 * i));
	}
	if (!v6 && k->hi == 0 && (k->lo >> 32) == 0xffff)
		inet_ntop(AF_INET, b + 12, buf, (socklen_t)buflen);
	else
		inet_ntop(AF_INET6, b, buf, (socklen_t)buflen);
}

void
pol_key_format(const struct pol_key *k, char *buf, size_t buflen)
{
	key_format(k, false, buf, buflen);
}

static int
parse_len(const char *s, unsigned max, unsigned *len)
{
	unsigned v = 0;

	if (*s == '\0' || strlen(s) > 3)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v > max)
		return -1;
	*len = v;
	return 0;
}

int
pol_cidr_parse(const char *s, struct pol_key *key, unsigned *len,
    bool *hostbits, char *err, size_t errlen)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	struct sockaddr_in6 sin6;
	struct sockaddr_in sin;
	struct pol_key masked;
	unsigned plen;

	if (alen == 0 || alen >= sizeof addr) {
		snprintf(err, errlen, "bad address '%s'", s);
		return -1;
	}
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	memset(&sin, 0, sizeof sin);
	memset(&sin6, 0, sizeof sin6);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		pol_sockaddr_key((struct sockaddr *)&sin, key);
		plen = 32;
		if (slash != NULL && parse_len(slash + 1, 32, &plen) == -1) {
			snprintf(err, errlen, "bad prefix length in '%s' "
			    "(IPv4 takes /0 to /32)", s);
			return -1;
		}
		plen += 96;
	} else if (inet_pton(AF_INET6, addr, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		pol_sockaddr_key((struct sockaddr *)&sin6, key);
		plen = 128;
		if (slash != NULL && parse_len(slash + 1, 128, &plen) == -1) {
			snprintf(err, errlen, "bad prefix length in '%s' "
			    "(IPv6 takes /0 to /128)", s);
			return -1;
		}
	} else {
		snprintf(err, errlen, "bad address '%s' (expected an IPv4 or "
		    "IPv6 address, optionally with /LEN)", s);
		return -1;
	}
	masked = key_mask(key, plen);
	*hostbits = masked.hi != key->hi || masked.lo != key->lo;
	*key = masked;
	*len = plen;
	return 0;
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
node_new(struct pol_cidrset *s, const struct pol_key *k, unsigned len, bool term)
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
	n->key = key_mask(k, len);
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
split(struct pol_cidrset *s, uint32_t at, const struct pol_key *k,
    unsigned len, unsigned common)
{
	uint32_t mid, leaf;
	struct pol_key old = s->nodes[at].key;

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
pol_cidrset_add_key(struct pol_cidrset *s, const struct pol_key *kin,
    unsigned len)
{
	struct pol_key k = key_mask(kin, len);
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
pol_cidrset_add(struct pol_cidrset *s, const char *cidr, char *err,
    size_t errlen)
{
	struct pol_key k;
	unsigned len;
	bool hostbits;
	char buf[INET6_ADDRSTRLEN];

	if (pol_cidr_parse(cidr, &k, &len, &hostbits, err, errlen) == -1)
		return -1;
	if (pol_cidrset_add_key(s, &k, len) == -1) {
		snprintf(err, errlen, "out of memory adding '%s'", cidr);
		return -1;
	}
	if (!hostbits)
		return 0;
	key_format(&k, strchr(cidr, ':') != NULL, buf, sizeof buf);
	if (strchr(cidr, ':') == NULL)
		len -= 96;
	snprintf(err, errlen, "'%s' has host bits set; it means %s/%u",
	    cidr, buf, len);
	return 1;
}

static bool
is_v4(const struct pol_key *k)
{
	return k->hi == 0 && (k->lo >> 32) == 0xffff;
}

/* Where a walk for any address of block `key`/`blen` continues. */
static uint32_t
stride_start(const struct pol_cidrset *s, const struct pol_key *key,
    unsigned blen)
{
	uint32_t at = s->root;

	while (at != NONE && s->nodes[at].len < blen) {
		const struct node *n = &s->nodes[at];

		if (!key_covers(&n->key, n->len, key))
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
		struct pol_key k;

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
pol_cidrset_contains_key(const struct pol_cidrset *s, const struct pol_key *k)
{
	uint32_t at = s->root;

	if (s->v4tab != NULL) {
		/* An IPv4 address never lies in a non-mapped /16 block
		 * except block 0, which the v4 table refines. */
		at = is_v4(k) ? s->v4tab[(k->lo >> 16) & 0xffff] :
		    s->v6tab[k->hi >> 48];
		if (at == COVERED)
			return true;
	}

	/* Every step goes one node deeper and a node is at most 128 bits
	 * deep, so at most 129 visits. */
	while (at != NONE) {
		const struct node *n = &s->nodes[at];

		if (!key_covers(&n->key, n->len, k))
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
	struct pol_key k;

	if (s == NULL || !pol_sockaddr_key(sa, &k))
		return false;
	return pol_cidrset_contains_key(s, &k);
}
