// cflags: -luv
//
// libuv is an echo server on libuv itself, the C library that libuvlike's
// reactor is modelled on (and that Kestrel's first transport ran on). It
// is not a floor: it is what libuv's design (handles, callbacks, its loop's
// phases) costs in C on the floor's mechanism, so that libuvlike can be
// read against the design it copies as well as against cfloor-epoll, the
// least a readiness loop does. One loop, one thread, as cfloor-epoll.
//
// The echo is written as a libuv user who wants it cheap would write it,
// and as libuvlike's transport does: the loop lends one read buffer to
// every read (the alloc callback), a read's bytes go back with
// uv_try_write at once, and only what the socket did not take is copied
// and handed to uv_write, one request in flight per connection, the bytes
// that come meanwhile gathered for the next. A connection stops reading
// while more than OUT_LIMIT bytes wait (uv_read_stop) and starts again
// once they are down to OUT_RESUME, as cfloor-epoll. libuv (1.44, as
// Debian 12 ships it) reads with read(2) once per readiness unless the
// read fills the buffer, waits with epoll_wait level-triggered, and
// handles EMFILE on accept itself (it keeps a spare descriptor).

#include "../internal/cpeer/peer.h"

#include <uv.h>

enum { READ_SIZE = 65536 }; // the loop's one read buffer

#define OUT_LIMIT (1u << 20)
#define OUT_RESUME (OUT_LIMIT / 4)

// struct conn is one connection. flight is the output uv_write has in
// hand (its buffer must not move until the write's callback); next
// gathers what comes while it is in flight.
struct conn {
	uv_tcp_t tcp; // first: a handle's pointer is its conn's
	uv_write_t req;
	struct peer_buf flight, next;
	bool writing; // req is in flight
	bool paused;  // not reading: output over OUT_LIMIT
	bool eof;     // the peer sent FIN: echo what is left, then close
};

static char rbuf[READ_SIZE];

static size_t pending(const struct conn *c)
{
	return peer_buf_pending(&c->flight) + peer_buf_pending(&c->next);
}

static void on_closed(uv_handle_t *h)
{
	struct conn *c = (struct conn *)h;
	peer_buf_free(&c->flight);
	peer_buf_free(&c->next);
	free(c);
}

static void drop(struct conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, on_closed); // a write in flight ends with UV_ECANCELED
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	*buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void on_written(uv_write_t *req, int status);

// start_write hands next to uv_write, if no write is in flight.
static void start_write(struct conn *c)
{
	if (c->writing || peer_buf_pending(&c->next) == 0)
		return;
	struct peer_buf t = c->flight;
	c->flight = c->next;
	c->next = t;
	c->next.off = c->next.len = 0;
	uv_buf_t b = uv_buf_init(c->flight.p + c->flight.off, (unsigned)peer_buf_pending(&c->flight));
	if (uv_write(&c->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
		drop(c);
		return;
	}
	c->writing = true;
}

static void on_written(uv_write_t *req, int status)
{
	struct conn *c = (struct conn *)req->handle;
	c->writing = false;
	if (status < 0) { // EPIPE, ECONNRESET, or UV_ECANCELED from the close
		drop(c);
		return;
	}
	c->flight.off = c->flight.len = 0;
	start_write(c);
	if (uv_is_closing((uv_handle_t *)&c->tcp))
		return; // uv_write failed
	if (c->eof && !c->writing) { // all echoed after the peer's FIN: close (FIN)
		drop(c);
		return;
	}
	if (c->paused && pending(c) <= OUT_RESUME) {
		c->paused = false;
		if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
			drop(c);
	}
}

// on_read writes what came at once: with output waiting, after it.
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = (struct conn *)s;
	if (n == 0)
		return; // EAGAIN
	if (n < 0) {
		if (n != UV_EOF || pending(c) == 0) {
			drop(c); // ECONNRESET, or FIN with nothing left to echo
			return;
		}
		c->eof = true; // libuv has stopped reading
		return;
	}
	size_t done = 0;
	if (!c->writing && peer_buf_pending(&c->next) == 0) {
		uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
		int w = uv_try_write(s, &b, 1);
		if (w < 0 && w != UV_EAGAIN) {
			drop(c);
			return;
		}
		done = w > 0 ? (size_t)w : 0;
	}
	if (done < (size_t)n) {
		peer_buf_append(&c->next, buf->base + done, (size_t)n - done);
		start_write(c);
		if (pending(c) > OUT_LIMIT) {
			c->paused = true;
			uv_read_stop(s);
		}
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	if (status < 0)
		return; // libuv retries accept at the next readiness
	struct conn *c = calloc(1, sizeof *c);
	if (!c)
		peer_fatal(1, "out of memory");
	uv_tcp_init(server->loop, &c->tcp);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
		drop(c);
}

static void on_signal(uv_poll_t *h, int status, int events)
{
	(void)h;
	(void)status;
	(void)events;
	exit(0); // SIGTERM or SIGINT: exit 0; the kernel closes the rest
}

int main(int argc, char **argv)
{
	static const struct peer self = {.name = "libuv", .mechanism = "epoll", .floor = false};
	struct peer_flags f = peer_parse(argc, argv, &self);
	char addr[INET6_ADDRSTRLEN + 16];
	int lfd = peer_listen(&f, SOCK_NONBLOCK, addr, sizeof addr);
	int sfd = peer_signalfd(SFD_NONBLOCK);

	uv_loop_t *loop = uv_default_loop();
	static uv_tcp_t server;
	static uv_poll_t sig;
	int err;
	if ((err = uv_tcp_init(loop, &server)) < 0 || (err = uv_tcp_open(&server, lfd)) < 0 ||
	    (err = uv_listen((uv_stream_t *)&server, 4096, on_connection)) < 0 ||
	    (err = uv_poll_init(loop, &sig, sfd)) < 0 || (err = uv_poll_start(&sig, UV_READABLE, on_signal)) < 0)
		peer_fatal(1, "setup: %s", uv_strerror(err));
	peer_listening(addr, &self);
	uv_run(loop, UV_RUN_DEFAULT);
	return 0;
}
