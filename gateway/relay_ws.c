/* relay_ws.c -- WebSocket tunnels: after the upstream's 101, bytes flow
 * both ways untouched (BLF presence sockets stay open for hours). */
#include <event2/buffer.h>

#include "gateway/gw_priv.h"

void
gw_tunnel_start(struct gw_conn *c)
{
	struct gw_upconn *up = c->up;

	c->state = CS_TUNNEL;
	atomic_fetch_add(&c->w->rt->m.ws_active, 1);
	event_del(up->timer);
	event_del(&c->timer);
	gw_conn_arm(c, c->cfg->to.ws_idle);
	c->read_paused = false;
	gw_io_read(c->io, true);
	gw_io_read(up->io, true);
	/* frames that arrived with the handshake, either way */
	gw_tunnel_client_read(c);
	gw_tunnel_up_read(up);
}

static void
touch(struct gw_conn *c)
{
	gw_conn_arm(c, c->cfg->to.ws_idle);
}

void
gw_tunnel_client_read(struct gw_conn *c)
{
	struct evbuffer *in = gw_io_input(c->io), *out;
	size_t n = evbuffer_get_length(in);

	if (c->up == NULL || c->freeing || n == 0)
		return;
	out = gw_io_output(c->up->io);
	evbuffer_add_buffer(out, in);
	c->rq->bytes_in += n;
	touch(c);
	if (evbuffer_get_length(out) > GW_HIGH_WATER) {
		c->read_paused = true;
		gw_io_read(c->io, false);
	}
}

void
gw_tunnel_up_read(struct gw_upconn *up)
{
	struct gw_conn *c = up->c;
	struct evbuffer *in = gw_io_input(up->io), *out;
	size_t n = evbuffer_get_length(in);

	if (c == NULL || c->freeing || n == 0)
		return;
	out = gw_io_output(c->io);
	evbuffer_add_buffer(out, in);
	c->rq->bytes_out += n;
	touch(c);
	if (evbuffer_get_length(out) > GW_HIGH_WATER) {
		up->read_paused = true;
		gw_io_read(up->io, false);
	}
}

/* The client's side drained: the upstream may talk again. */
void
gw_tunnel_client_drained(struct gw_conn *c)
{
	if (c->up != NULL && c->up->read_paused) {
		c->up->read_paused = false;
		gw_io_read(c->up->io, true);
		gw_tunnel_up_read(c->up);
	}
}

void
gw_tunnel_up_drained(struct gw_upconn *up)
{
	struct gw_conn *c = up->c;

	if (c != NULL && c->read_paused) {
		c->read_paused = false;
		gw_io_read(c->io, true);
		gw_tunnel_client_read(c);
	}
}

/* The upstream ended the tunnel: deliver what it said, then close. */
void
gw_tunnel_up_closed(struct gw_upconn *up)
{
	struct gw_conn *c = up->c;

	gw_tunnel_up_read(up);
	c->up = NULL;
	up->c = NULL;
	gw_up_release(up, false);
	gw_access_log(c);
	atomic_fetch_sub(&c->w->rt->m.ws_active, 1);
	gw_relay_close_after_flush(c);
}
