/* cert_keymsg.h -- the messages between the network process and the key
 * process: fixed-size records on SOCK_SEQPACKET sockets, one request per
 * record. Its answer goes to a socket passed with it (chan 0), or to the
 * answer socket of a channel: a network thread passes that socket once,
 * with the channel's first request, and the key process keeps it for
 * later requests naming the channel. Not part of the module API. */
#ifndef PBXGATE_CERT_KEYMSG_H
#define PBXGATE_CERT_KEYMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CERT_KP_MAGIC		0x70626b31u	/* "pbk1" */
#define CERT_KP_SPKI_LEN	32		/* SHA-256 of the SubjectPublicKeyInfo */
/* RSA keys up to 4096 bits: a signature or a raw block fits in 512 bytes. */
#define CERT_KP_DATA_MAX	512
/* Channels the key process keeps an answer socket for: a few per network
 * thread (workers and the mail listener); beyond, requests pass a socket
 * each. */
#define CERT_KP_CHAN_MAX	1024

enum cert_kp_op {
	CERT_KP_SIGN = 1,	/* sign data with the key named by spki */
	CERT_KP_HAVE = 2,	/* does the key process hold that key? */
};

enum cert_kp_alg {
	CERT_KP_ECDSA = 1,	/* data: a digest; answer: DER ECDSA-Sig-Value */
	CERT_KP_RSA_PKCS1 = 2,	/* data: DigestInfo; PKCS#1 v1.5 type 1 padding */
	CERT_KP_RSA_RAW = 3,	/* data: a block of the modulus size (a PSS
				   encoding made by the network process) */
};

enum cert_kp_status {
	CERT_KP_OK = 0,
	CERT_KP_EBADMSG = 1,	/* wrong size, magic, op or algorithm */
	CERT_KP_ENOKEY = 2,	/* no key with that SubjectPublicKeyInfo */
	CERT_KP_EBADLEN = 3,	/* data length does not fit the key */
	CERT_KP_ESIGN = 4,	/* OpenSSL refused to sign */
};

struct cert_kp_req {
	uint32_t magic;
	uint32_t op;		/* enum cert_kp_op */
	uint64_t id;		/* echoed in the answer */
	uint8_t  spki[CERT_KP_SPKI_LEN];
	uint32_t alg;		/* enum cert_kp_alg */
	uint32_t len;		/* bytes of data used */
	uint32_t chan;		/* 0, or 1..CERT_KP_CHAN_MAX: answer on that
				   channel's socket (registered by passing
				   one with the request) */
	uint32_t pad;		/* 0 */
	uint8_t  data[CERT_KP_DATA_MAX];
};

struct cert_kp_rep {
	uint32_t magic;
	uint32_t status;	/* enum cert_kp_status */
	uint64_t id;
	uint32_t len;		/* bytes of sig used */
	uint32_t pad;
	uint8_t  sig[CERT_KP_DATA_MAX];
};

/* A request as received (n bytes at buf) copied into *out when its size,
 * magic, op, algorithm, length and channel are well formed; else the status to
 * answer with. Key-dependent checks are cert_kp_len_fits()'s. */
enum cert_kp_status cert_kp_req_parse(const void *buf, size_t n,
    struct cert_kp_req *out);
/* Whether `len` bytes of data suit `alg` on a key whose signature or
 * modulus is `size` bytes (EVP_PKEY_get_size): a digest length TLS uses for
 * ECDSA, a DigestInfo that leaves room for PKCS#1 padding, a raw block of
 * exactly the modulus size. */
bool cert_kp_len_fits(uint32_t alg, size_t size, uint32_t len);

#endif
