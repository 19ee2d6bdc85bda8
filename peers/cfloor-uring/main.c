// cflags: -luring
//
// cfloor-uring is the io_uring floor: the smallest echo server that does
// what io_uring does best on this workload, in C on liburing, so that
// merlin's transports are read against what the kernel allows, not against
// each other. One thread, one ring, nothing else.
//
// Kernel features used, with the Linux version that added each:
//   IORING_SETUP_SINGLE_ISSUER    6.0   one thread submits: the kernel skips its submission locking
//   IORING_SETUP_DEFER_TASKRUN    6.1   completions are run only when this thread waits for them,
//                                       in a batch: no interrupting task work, no IPI
//   IORING_SETUP_SUBMIT_ALL       5.18  one failing SQE does not stop the rest of a batch
//   IORING_SETUP_CQSIZE           5.5   a completion queue larger than the submission queue
//   IORING_FEAT_NODROP            5.5   a full CQ overflows into the kernel: nothing is lost
//   IORING_OP_ACCEPT, multishot   5.19  one SQE accepts every connection
//   IORING_OP_RECV, multishot     6.0   one SQE per connection receives until it ends
//   provided buffer ring          5.19  the kernel picks a receive buffer when data arrives,
//                                       so idle connections hold none
//   IORING_OP_SEND                5.6
//   IORING_OP_READ (a signalfd)   5.6   SIGTERM arrives as a completion like any other
//   IORING_OP_TIMEOUT             5.4   the back-off after EMFILE
//   IORING_OP_ASYNC_CANCEL        5.5   stop receiving (output over its limit, or closing)
//   IOSQE_CQE_SKIP_SUCCESS        5.17  a cancel that works posts no completion
// So Linux 6.1 or later; liburing 2.3 (Debian 12's liburing-dev) has every helper.
//
// Not used, and why: IORING_SETUP_COOP_TASKRUN (5.19) changes nothing beside
// DEFER_TASKRUN: it only chooses how non-deferred task work notifies the
// task (no IPI), and with DEFER_TASKRUN all of this ring's task work is
// deferred, run when we wait. SQPOLL spends a second core. A registered ring
// fd made no measurable difference here, and sending from the provided
// buffers lost to copy-and-gather (both measured on this host).
//
// The loop: wait for completions (io_uring_submit_and_wait, one system call
// a turn, which also submits what the last turn prepared); copy received
// bytes into the connection's output and hand the buffer back at once; then,
// for each connection touched, one send of all its pending output, re-arming
// what ended.

#include "../internal/cpeer/peer.h"

#include <liburing.h>
#include <sys/mman.h>

enum {
	SQ_ENTRIES = 1024, // submission queue: sends of one turn beyond this submit early
	CQ_ENTRIES = 8192, // completion queue (IORING_SETUP_CQSIZE)
	BUF_GROUP = 0,     // the provided buffer ring's group id
	BUF_COUNT = 1024,  // buffers in the ring (a power of two)
	BUF_SIZE = 4096,   // bytes per buffer: 4 MiB in all
};

// A connection stops receiving while its output holds more than OUT_LIMIT
// bytes (a reader slower than its writer), and starts again once that is
// down to OUT_RESUME.
#define OUT_LIMIT (1u << 20)
#define OUT_RESUME (OUT_LIMIT / 4)

// user_data: bits 32-39 say which operation completed, bits 0-31 are the
// descriptor it ran on (the connection's socket, which indexes conns).
enum op { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_CANCEL, OP_BACKOFF, OP_SIGNAL };
#define USER_DATA(op, fd) ((uint64_t)(op) << 32 | (uint32_t)(fd))
#define USER_OP(ud) ((enum op)((ud) >> 32 & 0xff))
#define USER_FD(ud) ((int)(uint32_t)(ud))

// struct conn is one connection, indexed by its descriptor. The descriptor
// is closed only once no operation on it is in the kernel, so that a number
// reused by accept never meets a stale completion.
struct conn {
	bool open;       // the slot is in use
	bool recv_armed; // a multishot recv is in the kernel (until its CQE without F_MORE)
	bool cancelling; // an ASYNC_CANCEL of that recv was submitted
	bool sending;    // a send of out is in the kernel: out must not move
	bool eof;        // the peer sent FIN: echo what is left, then close
	bool dead;       // reset or error: close once nothing is in flight
	bool queued;     // on the todo list of this turn
	struct peer_buf out;  // being sent: fixed while sending; a partial send's rest
	struct peer_buf more; // received since: gathered into out at the next send
};

static struct io_uring ring;
static struct io_uring_buf_ring *bufring; // shared with the kernel (5.19)
static char *bufs;                        // BUF_COUNT x BUF_SIZE, the buffers it lends
static int buf_returned;                  // buffers handed back this turn, not yet published
static int listen_fd;
static struct signalfd_siginfo siginfo;                   // the signalfd read's target
static struct __kernel_timespec backoff = {.tv_nsec = 10 * 1000 * 1000}; // after EMFILE

static struct conn *conns; // indexed by descriptor
static int nconns;
static int *todo, ntodo; // descriptors of the connections touched this turn

// sqe returns a free submission entry, submitting what is queued when the
// submission queue is full.
static struct io_uring_sqe *sqe(void)
{
	struct io_uring_sqe *s = io_uring_get_sqe(&ring);
	if (!s) {
		io_uring_submit(&ring);
		s = io_uring_get_sqe(&ring);
		if (!s)
			peer_fatal(1, "io_uring: no submission entry after a submit");
	}
	return s;
}

// arm_accept asks for every connection on the listener with one multishot
// accept (5.19).
static void arm_accept(void)
{
	struct io_uring_sqe *s = sqe();
	io_uring_prep_multishot_accept(s, listen_fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(s, USER_DATA(OP_ACCEPT, listen_fd));
}

// arm_signal reads the signalfd through the ring: SIGTERM or SIGINT
// completes it.
static void arm_signal(int sfd)
{
	struct io_uring_sqe *s = sqe();
	io_uring_prep_read(s, sfd, &siginfo, sizeof siginfo, 0);
	io_uring_sqe_set_data64(s, USER_DATA(OP_SIGNAL, sfd));
}

// touch puts c on this turn's todo list, once.
static void touch(int fd)
{
	if (conns[fd].queued)
		return;
	conns[fd].queued = true;
	todo[ntodo++] = fd;
}

// open_conn starts tracking fd, growing the table if needed.
static void open_conn(int fd)
{
	if (fd >= nconns) {
		int n = nconns;
		while (n <= fd)
			n *= 2;
		conns = realloc(conns, (size_t)n * sizeof *conns);
		todo = realloc(todo, (size_t)n * sizeof *todo);
		if (!conns || !todo)
			peer_fatal(1, "out of memory (%d connections)", n);
		memset(conns + nconns, 0, (size_t)(n - nconns) * sizeof *conns);
		nconns = n;
	}
	conns[fd] = (struct conn){.open = true};
	touch(fd); // progress arms its recv
}

// progress does what connection fd needs after this turn's completions:
// close it, or send its output, stop or resume receiving.
static void progress(int fd)
{
	struct conn *c = &conns[fd];
	c->queued = false;
	if (!c->open)
		return;
	size_t pending = peer_buf_pending(&c->out) + peer_buf_pending(&c->more);

	if (c->dead || (c->eof && pending == 0 && !c->sending)) {
		if (c->recv_armed && !c->cancelling) {
			struct io_uring_sqe *s = sqe();
			io_uring_prep_cancel64(s, USER_DATA(OP_RECV, fd), 0);
			io_uring_sqe_set_data64(s, USER_DATA(OP_CANCEL, fd));
			s->flags |= IOSQE_CQE_SKIP_SUCCESS; // 5.17: only a failed cancel completes
			c->cancelling = true;
		}
		if (c->recv_armed || c->sending)
			return; // their completions touch c again
		// Nothing in flight: the descriptor can go. After EOF the input
		// is empty, so close sends FIN; after a reset nothing is sent.
		close(fd);
		peer_buf_free(&c->out);
		peer_buf_free(&c->more);
		c->open = false;
		return;
	}

	// One send per connection per turn, of everything pending: out's
	// remainder (a partial send) and what arrived since, gathered into out.
	if (!c->sending && pending > 0) {
		if (peer_buf_pending(&c->out) == 0) { // the usual case: swap, no copy
			struct peer_buf t = c->out;
			c->out = c->more;
			c->more = t;
			c->more.off = c->more.len = 0;
		} else if (peer_buf_pending(&c->more) > 0) {
			peer_buf_append(&c->out, c->more.p + c->more.off, peer_buf_pending(&c->more));
			c->more.off = c->more.len = 0;
		}
		struct io_uring_sqe *s = sqe();
		// MSG_NOSIGNAL: a send to a reset peer fails with EPIPE, no SIGPIPE.
		io_uring_prep_send(s, fd, c->out.p + c->out.off, peer_buf_pending(&c->out), MSG_NOSIGNAL);
		io_uring_sqe_set_data64(s, USER_DATA(OP_SEND, fd));
		c->sending = true;
	}

	if (pending > OUT_LIMIT && c->recv_armed && !c->cancelling) {
		// A slow reader: stop receiving until its output drains. What
		// arrives before the cancel lands is still kept.
		struct io_uring_sqe *s = sqe();
		io_uring_prep_cancel64(s, USER_DATA(OP_RECV, fd), 0);
		io_uring_sqe_set_data64(s, USER_DATA(OP_CANCEL, fd));
		s->flags |= IOSQE_CQE_SKIP_SUCCESS;
		c->cancelling = true;
	} else if (!c->recv_armed && !c->eof && pending <= OUT_RESUME) {
		// Arm (or re-arm) the multishot recv (6.0) on the buffer ring
		// (5.19): it ends on EOF, an error, a cancel, ENOBUFS, or for no
		// stated reason (a CQE without F_MORE), and every ending but EOF
		// and errors comes back here.
		struct io_uring_sqe *s = sqe();
		io_uring_prep_recv_multishot(s, fd, NULL, 0, 0);
		s->flags |= IOSQE_BUFFER_SELECT;
		s->buf_group = BUF_GROUP;
		io_uring_sqe_set_data64(s, USER_DATA(OP_RECV, fd));
		c->recv_armed = true;
	}
}

// on_recv takes one multishot recv completion: copy the bytes into the
// connection's output and give the buffer back to the ring.
static void on_recv(int fd, int res, unsigned flags)
{
	struct conn *c = &conns[fd];
	if (flags & IORING_CQE_F_BUFFER) {
		unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
		char *b = bufs + (size_t)bid * BUF_SIZE;
		if (res > 0 && !c->dead)
			peer_buf_append(&c->more, b, (size_t)res); // after out, whatever is in flight
		// Back to the ring; published for the kernel after this batch.
		io_uring_buf_ring_add(bufring, b, BUF_SIZE, (unsigned short)bid,
				      io_uring_buf_ring_mask(BUF_COUNT), buf_returned++);
	}
	if (!(flags & IORING_CQE_F_MORE)) {
		c->recv_armed = false;
		c->cancelling = false;
	}
	if (res == 0) {
		c->eof = true; // the peer's FIN
	} else if (res == -EINVAL) {
		peer_fatal(1, "multishot recv with a buffer ring: %s (needs Linux 6.0)", strerror(-res));
	} else if (res < 0 && res != -ENOBUFS && res != -ECANCELED) {
		// ENOBUFS: every buffer was taken when data came; they are back
		// once this batch is done, and progress re-arms after that. Not
		// EOF. ECANCELED: ours (output over its limit, or closing).
		c->dead = true; // ECONNRESET and the like
	}
	touch(fd);
}

// on_send takes a send completion: a partial send leaves the rest in out
// for the next turn's send.
static void on_send(int fd, int res)
{
	struct conn *c = &conns[fd];
	c->sending = false;
	if (res < 0) {
		c->dead = true; // EPIPE, ECONNRESET: the peer is gone
	} else {
		c->out.off += (size_t)res;
		if (c->out.off == c->out.len)
			c->out.off = c->out.len = 0;
	}
	touch(fd);
}

// on_accept takes a multishot accept completion (5.19).
static void on_accept(int res, unsigned flags)
{
	if (res >= 0)
		open_conn(res);
	if (flags & IORING_CQE_F_MORE)
		return;
	// The multishot accept ended. Out of descriptors or memory: wait a
	// little (the connections stay queued in the listener's backlog), then
	// accept again. Anything else: accept again at once.
	if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
		struct io_uring_sqe *s = sqe();
		io_uring_prep_timeout(s, &backoff, 0, 0);
		io_uring_sqe_set_data64(s, USER_DATA(OP_BACKOFF, listen_fd));
	} else if (res == -EINVAL) {
		peer_fatal(1, "multishot accept: %s (needs Linux 5.19)", strerror(-res));
	} else {
		arm_accept();
	}
}

// setup_ring creates the ring and registers the buffer ring. It exits, with
// the feature named, where the kernel lacks one.
static void setup_ring(void)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL |
			 IORING_SETUP_CQSIZE,
		.cq_entries = CQ_ENTRIES,
	};
	int rc = io_uring_queue_init_params(SQ_ENTRIES, &ring, &p);
	if (rc < 0)
		peer_fatal(1, "io_uring_setup with SINGLE_ISSUER and DEFER_TASKRUN: %s (needs Linux 6.1)", strerror(-rc));
	if (!(p.features & IORING_FEAT_NODROP))
		peer_fatal(1, "io_uring: no IORING_FEAT_NODROP (needs Linux 5.5)");

	// The buffer ring: page-aligned memory the kernel reads the free
	// buffers from (liburing 2.3 has no io_uring_setup_buf_ring yet).
	size_t ringsize = BUF_COUNT * sizeof(struct io_uring_buf);
	bufring = mmap(NULL, ringsize, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	bufs = mmap(NULL, (size_t)BUF_COUNT * BUF_SIZE, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (bufring == MAP_FAILED || bufs == MAP_FAILED)
		peer_fatal(1, "mmap: %s", strerror(errno));
	io_uring_buf_ring_init(bufring);
	struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)bufring, .ring_entries = BUF_COUNT, .bgid = BUF_GROUP};
	rc = io_uring_register_buf_ring(&ring, &reg, 0);
	if (rc < 0)
		peer_fatal(1, "io_uring_register_buf_ring: %s (needs Linux 5.19)", strerror(-rc));
	for (int i = 0; i < BUF_COUNT; i++)
		io_uring_buf_ring_add(bufring, bufs + (size_t)i * BUF_SIZE, BUF_SIZE, (unsigned short)i,
				      io_uring_buf_ring_mask(BUF_COUNT), i);
	io_uring_buf_ring_advance(bufring, BUF_COUNT);
}

int main(int argc, char **argv)
{
	static const struct peer self = {.name = "cfloor-uring", .mechanism = "io_uring", .floor = true};
	struct peer_flags f = peer_parse(argc, argv, &self);
	char addr[INET6_ADDRSTRLEN + 16];
	listen_fd = peer_listen(&f, 0, addr, sizeof addr);
	int sfd = peer_signalfd(0);

	nconns = 1024;
	conns = calloc((size_t)nconns, sizeof *conns);
	todo = calloc((size_t)nconns, sizeof *todo);
	if (!conns || !todo)
		peer_fatal(1, "out of memory");
	setup_ring(); // on this thread: SINGLE_ISSUER makes it the ring's owner
	arm_accept();
	arm_signal(sfd);
	peer_listening(addr, &self);

	for (;;) {
		// One system call a turn: submit what the last turn prepared, and
		// (GETEVENTS) run the deferred completions and wait for one.
		int rc = io_uring_submit_and_wait(&ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			peer_fatal(1, "io_uring_enter: %s", strerror(-rc));

		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			seen++;
			int fd = USER_FD(cqe->user_data);
			switch (USER_OP(cqe->user_data)) {
			case OP_ACCEPT:
				on_accept(cqe->res, cqe->flags);
				break;
			case OP_RECV:
				on_recv(fd, cqe->res, cqe->flags);
				break;
			case OP_SEND:
				on_send(fd, cqe->res);
				break;
			case OP_CANCEL: // only failed cancels complete (CQE_SKIP_SUCCESS)
				// ENOENT: the recv had ended. EALREADY: it is ending but
				// may not stop: let progress cancel again if needed.
				if (cqe->res == -EALREADY && fd < nconns && conns[fd].open) {
					conns[fd].cancelling = false;
					touch(fd);
				}
				break;
			case OP_BACKOFF: // the EMFILE back-off is over (-ETIME)
				arm_accept();
				break;
			case OP_SIGNAL:
				if (cqe->res < 0)
					peer_fatal(1, "reading the signalfd: %s", strerror(-cqe->res));
				return 0; // SIGTERM or SIGINT: exit 0; the kernel closes the rest
			}
		}
		io_uring_cq_advance(&ring, seen);
		// Publish the returned buffers before any recv is re-armed, so a
		// recv that ended with ENOBUFS does not end so again at once.
		io_uring_buf_ring_advance(bufring, buf_returned);
		buf_returned = 0;

		int n = ntodo;
		ntodo = 0;
		for (int i = 0; i < n; i++) // progress prepares SQEs; it queues nothing
			progress(todo[i]);
	}
}
