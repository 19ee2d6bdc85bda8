// cflags:
//
// cfloor-epoll is the epoll floor: the smallest echo server that does what
// a readiness loop does best on this workload, in C, so that merlin's
// transports (and gnet) are read against what the kernel allows, not
// against each other. One thread, one epoll instance, nothing else.
//
// Kernel features used, with the Linux version that added each:
//   epoll, level-triggered        2.6   a readable socket is reported until it is drained
//   accept4 (SOCK_NONBLOCK)       2.6.28  accepted sockets are non-blocking without fcntl
//   epoll_create1 (EPOLL_CLOEXEC) 2.6.27
//   signalfd                      2.6.22  SIGTERM arrives as an event like any other
// Any kernel merlin runs on has them.
//
// The loop: wait for readiness (epoll_wait, one system call a turn); on a
// readable socket read once into the loop's buffer and write it back at
// once, in the same turn; only when the socket does not take it all is the
// rest kept and EPOLLOUT asked for, until it has gone. So an echo costs
// read, write and a share of epoll_wait; no epoll_ctl while output keeps up.

#include "../internal/cpeer/peer.h"

#include <sys/epoll.h>
#include <time.h>

enum {
	MAX_EVENTS = 1024,  // events taken from one epoll_wait
	READ_SIZE = 65536,  // the loop's one read buffer
	BACKOFF_MS = 10,    // wait after EMFILE before accepting again
};

// A connection stops reading while its output holds more than OUT_LIMIT
// bytes (a reader slower than its writer), and starts again once that is
// down to OUT_RESUME.
#define OUT_LIMIT (1u << 20)
#define OUT_RESUME (OUT_LIMIT / 4)

// struct conn is one connection, indexed by its descriptor.
struct conn {
	bool open;
	bool eof;            // the peer sent FIN: echo what is left, then close
	bool paused;         // not reading: output over OUT_LIMIT
	uint32_t events;     // what epoll watches for now
	struct peer_buf out; // what the socket has not taken yet
};

static int ep, listen_fd, sfd;
static struct conn *conns; // indexed by descriptor
static int nconns;
static char rbuf[READ_SIZE];
static bool accept_paused; // after EMFILE, until accept_at
static struct timespec accept_at;

// watch sets what epoll reports for c (EPOLL_CTL_MOD only on a change).
static void watch(int fd)
{
	struct conn *c = &conns[fd];
	uint32_t want = (c->eof || c->paused ? 0 : EPOLLIN) | (peer_buf_pending(&c->out) ? EPOLLOUT : 0);
	if (want == c->events)
		return;
	struct epoll_event ev = {.events = want, .data.fd = fd};
	if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0)
		peer_fatal(1, "epoll_ctl: %s", strerror(errno));
	c->events = want;
}

// drop closes c.
static void drop(int fd)
{
	close(fd); // also removes it from the epoll set
	peer_buf_free(&conns[fd].out);
	conns[fd].open = false;
}

// flush writes what c's output holds; it returns false if c was closed.
static bool flush(int fd)
{
	struct conn *c = &conns[fd];
	while (peer_buf_pending(&c->out) > 0) {
		ssize_t n = send(fd, c->out.p + c->out.off, peer_buf_pending(&c->out), MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			drop(fd); // EPIPE, ECONNRESET: the peer is gone
			return false;
		}
		c->out.off += (size_t)n;
	}
	if (peer_buf_pending(&c->out) == 0) {
		c->out.off = c->out.len = 0;
		if (c->eof) { // all echoed after the peer's FIN: close (FIN)
			drop(fd);
			return false;
		}
	}
	if (c->paused && peer_buf_pending(&c->out) <= OUT_RESUME)
		c->paused = false;
	return true;
}

// on_readable reads once and writes what came at once: with output
// pending, after it (the socket was full a moment ago, so it waits for
// EPOLLOUT instead of trying again).
static void on_readable(int fd)
{
	struct conn *c = &conns[fd];
	ssize_t n = recv(fd, rbuf, sizeof rbuf, 0);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			drop(fd); // ECONNRESET
		return;
	}
	if (n == 0) { // FIN: level-triggered EOF would be reported forever, so stop reading
		c->eof = true;
		if (peer_buf_pending(&c->out) == 0) {
			drop(fd);
			return;
		}
		watch(fd);
		return;
	}
	size_t done = 0;
	if (peer_buf_pending(&c->out) == 0) {
		ssize_t w = send(fd, rbuf, (size_t)n, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			drop(fd);
			return;
		}
		done = w > 0 ? (size_t)w : 0;
	}
	if (done < (size_t)n) {
		peer_buf_append(&c->out, rbuf + done, (size_t)n - done);
		if (peer_buf_pending(&c->out) > OUT_LIMIT)
			c->paused = true;
	}
	watch(fd);
}

// on_accept accepts every pending connection; on EMFILE it stops accepting
// for BACKOFF_MS (the connections wait in the listener's backlog).
static void on_accept(void)
{
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				struct epoll_event ev = {.events = 0, .data.fd = listen_fd};
				epoll_ctl(ep, EPOLL_CTL_MOD, listen_fd, &ev);
				clock_gettime(CLOCK_MONOTONIC, &accept_at);
				accept_at.tv_nsec += BACKOFF_MS * 1000000L;
				accept_paused = true;
			} else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
				peer_fatal(1, "accept4: %s", strerror(errno));
			}
			return;
		}
		if (fd >= nconns) {
			int n = nconns;
			while (n <= fd)
				n *= 2;
			conns = realloc(conns, (size_t)n * sizeof *conns);
			if (!conns)
				peer_fatal(1, "out of memory (%d connections)", n);
			memset(conns + nconns, 0, (size_t)(n - nconns) * sizeof *conns);
			nconns = n;
		}
		conns[fd] = (struct conn){.open = true, .events = EPOLLIN};
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd}; // level-triggered
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			peer_fatal(1, "epoll_ctl: %s", strerror(errno));
	}
}

// backoff_ms is epoll_wait's timeout: until accepting resumes, or none.
static int backoff_ms(void)
{
	if (!accept_paused)
		return -1;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (accept_at.tv_sec - now.tv_sec) * 1000 + (accept_at.tv_nsec - now.tv_nsec) / 1000000;
	if (ms > 0)
		return (int)ms;
	accept_paused = false;
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = listen_fd};
	epoll_ctl(ep, EPOLL_CTL_MOD, listen_fd, &ev);
	return -1;
}

int main(int argc, char **argv)
{
	static const struct peer self = {.name = "cfloor-epoll", .mechanism = "epoll", .floor = true};
	struct peer_flags f = peer_parse(argc, argv, &self);
	char addr[INET6_ADDRSTRLEN + 16];
	listen_fd = peer_listen(&f, SOCK_NONBLOCK, addr, sizeof addr);
	sfd = peer_signalfd(SFD_NONBLOCK);

	nconns = 1024;
	conns = calloc((size_t)nconns, sizeof *conns);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!conns || ep < 0)
		peer_fatal(1, "setup: %s", strerror(errno));
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = listen_fd};
	struct epoll_event sev = {.events = EPOLLIN, .data.fd = sfd};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev) < 0)
		peer_fatal(1, "epoll_ctl: %s", strerror(errno));
	peer_listening(addr, &self);

	static struct epoll_event events[MAX_EVENTS];
	for (;;) {
		int n = epoll_wait(ep, events, MAX_EVENTS, backoff_ms());
		if (n < 0) {
			if (errno == EINTR)
				continue;
			peer_fatal(1, "epoll_wait: %s", strerror(errno));
		}
		bool acceptable = false;
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			uint32_t e = events[i].events;
			if (fd == listen_fd) {
				acceptable = true; // after this batch: see below
				continue;
			}
			if (fd == sfd)
				return 0; // SIGTERM or SIGINT: exit 0; the kernel closes the rest
			if (!conns[fd].open)
				continue; // closed earlier in this batch
			// Output first (it may resume reading), then input. ERR and
			// HUP make the call fail, and the failure closes.
			if ((e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && peer_buf_pending(&conns[fd].out) > 0) {
				if (!flush(fd))
					continue;
				watch(fd);
			}
			if ((e & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !conns[fd].eof && !conns[fd].paused)
				on_readable(fd);
			else if ((e & (EPOLLERR | EPOLLHUP)) && conns[fd].open && peer_buf_pending(&conns[fd].out) == 0)
				drop(fd); // nothing to read or write, and the peer is gone
		}
		// Accept only once the batch is done, so that a descriptor closed
		// in it and reused by accept never receives its stale events.
		if (acceptable)
			on_accept();
	}
}
