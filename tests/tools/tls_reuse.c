/* tls_reuse.c -- a TLS client that connects N times the way wrk does with
 * `Connection: close`: one SSL object kept across connections (SSL_shutdown,
 * SSL_clear, then the next SSL_connect offers the session it holds), or with
 * -f a fresh SSL object and no session each time (full handshakes only).
 * Each connection sends one GET with Connection: close and reads the answer
 * to its end. Prints "resumed R of N in S s (H handshakes/s)". With
 * -p PORT2 the connections alternate between PORT and PORT2, so that every
 * resumption opens a ticket the other gateway made (shared ticket keys).
 * For tests/integration and tests/bench; loopback only.
 *
 *   tls_reuse [-f] [-v 1.2|1.3] [-n N] [-s SNI] [-p PORT2] PORT
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_CONNS	1000000
#define IO_TIMEOUT_S	10

static const char request_fmt[] =
    "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n";

static int
tcp_connect(long port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -1;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* Bounded: a server that stops answering fails the run, never hangs it. */
	/* TCP_NODELAY as wrk sets it: the request written after a resumed
	 * TLS 1.2 Finished would otherwise wait for a delayed ACK (40 ms). */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One request on a connected SSL: the answer is read until the server
 * closes, so post-handshake messages (TLS 1.3 tickets) are all processed. */
static bool
exchange(SSL *ssl, const char *sni)
{
	char buf[16384];
	int n = snprintf(buf, sizeof buf, request_fmt, sni);
	size_t got = 0;

	if (n < 0 || (size_t)n >= sizeof buf || SSL_write(ssl, buf, n) != n)
		return false;
	while ((n = SSL_read(ssl, buf, sizeof buf)) > 0)
		got += (size_t)n;
	return got > 0;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A decimal in [lo, hi], or -1. */
static long
number(const char *s, long lo, long hi)
{
	char *end;
	long v = strtol(s, &end, 10);

	return end == s || *end != '\0' || v < lo || v > hi ? -1 : v;
}

static int
usage(void)
{
	fprintf(stderr, "usage: tls_reuse [-f] [-v 1.2|1.3] [-n N] [-s SNI] "
	    "[-p PORT2] PORT\n");
	return 2;
}

int
main(int argc, char **argv)
{
	const char *sni = "localhost";
	long port, port2 = 0, n = 20;
	int c, version = 0, resumed = 0;
	bool fresh = false;
	SSL_CTX *ctx;
	SSL *ssl = NULL;
	double t0;

	while ((c = getopt(argc, argv, "fv:n:s:p:")) != -1) {
		switch (c) {
		case 'f': fresh = true; break;
		case 'v':
			if (strcmp(optarg, "1.2") == 0)
				version = TLS1_2_VERSION;
			else if (strcmp(optarg, "1.3") == 0)
				version = TLS1_3_VERSION;
			else
				return usage();
			break;
		case 'n': n = number(optarg, 1, MAX_CONNS); break;
		case 's': sni = optarg; break;
		case 'p':
			if ((port2 = number(optarg, 1, 65535)) < 1)
				return usage();
			break;
		default: return usage();
		}
	}
	if (optind + 1 != argc || n < 1)
		return usage();
	port = number(argv[optind], 1, 65535);
	if (port < 1)
		return usage();
	/* As wrk sets its context up. */
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		return 1;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
	if (version != 0 && (SSL_CTX_set_min_proto_version(ctx, version) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, version) != 1))
		return 1;
	t0 = now();
	for (long i = 0; i < n; i++) {
		int fd = tcp_connect(port2 != 0 && i % 2 == 1 ? port2 : port);

		if (fd < 0) {
			perror("tls_reuse: connect");
			return 1;
		}
		if (ssl == NULL && (ssl = SSL_new(ctx)) == NULL)
			return 1;
		if (SSL_set_fd(ssl, fd) != 1 ||
		    SSL_set_tlsext_host_name(ssl, sni) != 1 ||
		    SSL_connect(ssl) != 1 || !exchange(ssl, sni)) {
			fprintf(stderr, "tls_reuse: connection %ld failed\n", i + 1);
			ERR_print_errors_fp(stderr);
			return 1;
		}
		if (SSL_session_reused(ssl))
			resumed++;
		SSL_shutdown(ssl);
		if (fresh) {
			SSL_free(ssl);
			ssl = NULL;
		} else
			SSL_clear(ssl);
		close(fd);
	}
	t0 = now() - t0;
	printf("resumed %d of %ld in %.3f s (%.0f handshakes/s)\n", resumed, n, t0,
	    (double)n / t0);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return 0;
}
