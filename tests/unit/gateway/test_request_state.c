/* test_request_state.c -- struct gw_req: one reset clears every field of
 * the last request and frees what it owned, and keeps the parser and the
 * retry buffer; the free gives back everything (ASan builds check leaks). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <event2/buffer.h>

#include "gateway/gw_priv.h"

static struct gw_config cfg;
static struct gw_conn conn;

static void
setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	memset(&conn, 0, sizeof(conn));
	cfg.lim.headers = 100;
	conn.cfg = &cfg;
	conn.peer.in.sin_family = AF_INET;
	conn.peer.in.sin_addr.s_addr = htonl(0xc0000201);	/* 192.0.2.1 */
	snprintf(conn.peer_ip, sizeof(conn.peer_ip), "192.0.2.1");
	cr_assert_eq(gw_conn_request(&conn), 0);
}

static void
teardown(void)
{
	gw_conn_request_free(&conn);
	cr_assert_null(conn.rq);
}

/* A request that went every way at once: proxied, framed, a gateway page
 * with a body, a session refresh, a client from X-Forwarded-For. */
static void
dirty(struct gw_req *rq)
{
	rq->id.present = rq->id.mfa = true;
	snprintf(rq->id.user, sizeof(rq->id.user), "1000");
	rq->client.in.sin_family = AF_INET;
	rq->client.in.sin_addr.s_addr = htonl(0xcb007105);
	snprintf(rq->client_ip, sizeof(rq->client_ip), "203.0.113.5");
	rq->t_start.tv_sec = rq->t_up.tv_sec = 42;
	rq->upstream_ms = 12.5;
	rq->target = strdup("/webclient/?a=1\0/webclient/");
	rq->path = rq->target;
	rq->target_len = 15;
	rq->set_cookie = strdup("__Host-pbxgate=x");
	rq->local_body = evbuffer_new();
	evbuffer_add(rq->local_body, "user=1000", 9);
	rq->bytes_in = rq->bytes_out = 99;
	rq->status = 502;
	rq->rd_need = AUTH_LEVEL_MFA;
	rq->req_done = rq->req_chunked = rq->resp_started = true;
	rq->resp_chunked = rq->resp_until_close = rq->upgrade = true;
	rq->is_head = rq->expect_continue = rq->local = true;
}

Test(request_state, made_with_the_peer_as_client, .init = setup,
    .fini = teardown)
{
	struct gw_req *rq = conn.rq;

	cr_assert_str_eq(rq->client_ip, "192.0.2.1");
	cr_assert_eq(memcmp(&rq->client, &conn.peer, sizeof(rq->client)), 0);
	cr_assert_eq(rq->upstream_ms, -1);
	cr_assert_eq(rq->rp.owner, &conn);
}

Test(request_state, reset_clears_every_request_field, .init = setup,
    .fini = teardown)
{
	struct gw_req *rq = conn.rq, want;
	struct evbuffer *up_head = evbuffer_new();

	rq->up_head = up_head;
	dirty(rq);
	gw_conn_request_reset(&conn);
	cr_assert_eq(conn.rq, rq, "the request state is reused, not remade");
	cr_assert_eq(rq->up_head, up_head, "the retry buffer is kept");
	cr_assert_eq(rq->rp.owner, &conn, "the parser is kept");

	/* what a fresh request looks like from `id` on */
	memset(&want, 0, sizeof(want));
	memcpy(&want.client, &conn.peer, sizeof(want.client));
	memcpy(want.client_ip, conn.peer_ip, sizeof(want.client_ip));
	want.upstream_ms = -1;
	cr_assert_eq(memcmp((char *)rq + offsetof(struct gw_req, id),
	    (char *)&want + offsetof(struct gw_req, id),
	    sizeof(want) - offsetof(struct gw_req, id)), 0);
	cr_assert_null(rq->target);
	cr_assert_null(rq->set_cookie);
	cr_assert_null(rq->local_body);
	cr_assert_null(rq->job);
	cr_assert_not(rq->resp_started);
	cr_assert_eq(rq->status, 0);
}

Test(request_state, free_gives_back_an_owned_request, .init = setup)
{
	conn.rq->up_head = evbuffer_new();
	dirty(conn.rq);
	gw_conn_request_free(&conn);
	cr_assert_null(conn.rq);
	gw_conn_request_free(&conn);	/* trimmed twice: nothing to do */
}
