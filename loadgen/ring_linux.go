package loadgen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/merlin-net/merlin/internal/ioring"
	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// The ring engine drives every connection of a run (echo, or HTTP in the
// clear) from one goroutine locked to its thread, through one io_uring
// (SINGLE_ISSUER + DEFER_TASKRUN, Linux 6.1), and never sleeps: each turn
// submits the sends and receives that are due and reaps completions
// without waiting (io_uring_enter with GETEVENTS and min_complete 0, a raw
// system call).
// So the generator pays no wake-ups, no scheduler and one system call for
// many connections' sends and receives, and a server's answer never has
// to wake it: the kernel only queues the completion. That keeps even a
// minimal C server saturated, which a goroutine per connection on the
// same kernel path cannot (BENCH.md: the generator must not be the
// bottleneck). Its CPU is then always about one core: Result's client
// time says so, and per request it is an upper bound.
//
// Each connection has one send in flight at most and one multishot
// receive armed for its life, into a ring of provided buffers shared by
// all (Linux 6.0): a closed loop sends a batch and checks exactly its
// length coming back (HTTP: exactly its responses), an open loop sends
// the batches whose time has come and checks the stream as it comes.
// HTTP responses go through the connection's httpReader, receive by
// receive, as the net engine's do through its bufio.Reader.

// user_data of an SQE: connection index << 8 | op.
const (
	ropSend = 1
	ropRecv = 2
)

// ringBuffers sizes the provided buffers for conns connections with
// batch bytes in flight each: room for every batch twice over (a starved
// ring ends receives with ENOBUFS, and the generator would measure
// itself), in buffers of 4 KiB, or 16 KiB for batches above 16 KiB; at
// least 256 buffers and at most 32768 (the ring's limit). With
// incremental consumption (Linux 6.12) small receives share a buffer.
func ringBuffers(conns, batch int) (size, count int) {
	size = 4 << 10
	if batch > 16<<10 {
		size = 16 << 10
	}
	need := 2 * conns * ((batch + size - 1) / size)
	count = 256
	for count < need && count < 1<<15 {
		count *= 2
	}
	return size, count
}

// ringAvailable reports whether the ring engine runs here, and why not.
func ringAvailable() error {
	r, err := ioring.New(8, giouring.SetupSingleIssuer|giouring.SetupDeferTaskrun, 0)
	if err != nil {
		return fmt.Errorf("loadgen: the ring engine needs io_uring with SINGLE_ISSUER and DEFER_TASKRUN (Linux 6.1): %w: %w", err, errors.ErrUnsupported)
	}
	r.Close()
	return nil
}

// rconn is one connection of the ring engine. Owned by the engine's
// goroutine.
type rconn struct {
	i      int
	fd     int
	failed bool
	armed  bool        // a multishot receive is armed
	http   *httpReader // the HTTP workload's parser of the responses

	sending bool   // open loop: a send is in flight
	out     []byte // closed: the batch; open: what is being sent
	sent    int    // bytes of out the kernel took
	pend    []byte // open: batches due while a send was in flight

	// closed loop
	batch    uint64
	awaiting bool // the batch is sent and not all back
	got      int  // bytes of it back (HTTP: of its whole responses)
	sentAt   int64

	// open loop
	next       int64   // the next batch's scheduled time, ns since epoch
	nextBatch  uint64  // the next batch to schedule
	sched      []int64 // scheduled times of the batches sent and not all answered
	schedHead  int
	rseq       uint32 // the next message expected back (HTTP: in a closed loop too)
	roff       int    // bytes of it received
	want       []byte // message rseq as it must come back (echo)
	unanswered int    // messages sent and not answered
	lastIO     int64  // ns since epoch: the last bytes received, for the open loop's timeout
}

type ringEngine struct {
	r         *run
	ring      *ioring.Ring
	conns     []*rconn
	cqes      []ioring.CQE
	epoch     time.Time
	echo      *echoProto  // the echo workload's; nil for HTTP
	stop      atomic.Bool // the window has ended, or ctx was cancelled
	cancelled atomic.Bool // ctx was cancelled: stop at once
	live      int         // connections not failed
	byIndex   []*rconn    // by connection index (nil: its dial failed)
	fixed     bool        // the sockets are in the ring's file table, by index
	bufs      *ioring.BufRing
	rearm     []*rconn // connections whose multishot receive ended
}

// runRing runs the whole load on the ring engine: it dials every
// connection (each worker slot is marked ready), waits for the start and
// drives the load until the window ends, then finishes the exchanges in
// flight and closes.
func (r *run) runRing(ctx context.Context, ready chan<- struct{}) error {
	// The loop spins on a thread of its own and keeps its P; the run's
	// timers and window callbacks need another. (Yielding instead costs a
	// hand-off of the P between threads every time: a locked goroutine
	// cannot share its thread.)
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	e := &ringEngine{r: r, cqes: make([]ioring.CQE, 512)}
	e.echo, _ = r.proto.(*echoProto)
	entries := uint32(1024)
	for entries < uint32(2*r.cfg.Conns) && entries < 1<<14 {
		entries *= 2
	}
	ring, err := ioring.New(entries, giouring.SetupSingleIssuer|giouring.SetupDeferTaskrun, 0)
	if err != nil {
		for range r.cfg.Conns {
			ready <- struct{}{}
		}
		return fmt.Errorf("loadgen: ring engine: %w", err)
	}
	e.ring = ring
	defer e.close()
	// What comes back per batch: the echo; or responses, their head well
	// under 1 KiB, their body at most Size bytes for the echo route and
	// TechEmpower's (others are unknown: a short guess costs ENOBUFS and
	// re-armed receives, not errors).
	batch := r.cfg.Depth * r.cfg.Size
	if r.cfg.Workload == HTTP {
		batch = r.cfg.Depth * (1<<10 + r.cfg.Size)
	}
	size, count := ringBuffers(r.cfg.Conns, batch)
	if e.bufs, err = ioring.NewBufRing(ring.Fd, 0, count, size); err != nil {
		for range r.cfg.Conns {
			ready <- struct{}{}
		}
		return fmt.Errorf("loadgen: ring engine: %w", err)
	}

	for i := range r.cfg.Conns {
		fd, err := r.dialFD(ctx)
		ready <- struct{}{}
		if err != nil {
			if ctx.Err() == nil {
				r.fail(fmt.Errorf("loadgen: conn %d: %w", i, err))
			}
			continue
		}
		r.open.Add(1)
		c := &rconn{i: i, fd: fd}
		if p, ok := r.proto.(*httpProto); ok {
			c.http = p.newReader(i)
		}
		e.conns = append(e.conns, c)
	}
	e.byIndex = make([]*rconn, r.cfg.Conns)
	for _, c := range e.conns {
		e.byIndex[c.i] = c
	}
	stopped := context.AfterFunc(ctx, func() { e.cancelled.Store(true); e.stop.Store(true) })
	defer stopped()
	go func() {
		select {
		case <-r.stop:
		case <-ctx.Done():
		case <-r.workersDone:
		}
		e.stop.Store(true)
	}()
	if !r.waitStart(ctx) {
		return nil
	}
	e.epoch = r.startTime
	e.live = len(e.conns)
	// A file table indexed like the connections (IORING_REGISTER_FILES,
	// Linux 5.1; -1 for a failed dial). Without one (RLIMIT_NOFILE),
	// operations name descriptors, which is only slower.
	fds := make([]int32, len(e.byIndex))
	for i := range fds {
		fds[i] = -1
	}
	for _, c := range e.conns {
		fds[c.i] = int32(c.fd)
	}
	_, errno := ioring.Register(ring.Fd, ioring.RegisterFiles, unsafe.Pointer(&fds[0]), uint32(len(fds)))
	e.fixed = errno == 0
	e.loop()
	return nil
}

// dialFD connects through Go's net package (which deals with address
// resolution, timeouts and interrupted connects), then takes a blocking
// duplicate of the socket for the ring and closes Go's own. TCP is plain
// TCP (no MPTCP), with TCP_NODELAY, as merlin's transports.
func (r *run) dialFD(ctx context.Context) (int, error) {
	d := net.Dialer{Timeout: r.cfg.Timeout}
	d.SetMultipathTCP(false)
	c, err := d.DialContext(ctx, r.cfg.Network, r.cfg.Addr)
	if err != nil {
		return -1, err
	}
	defer c.Close()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	cerr := rc.Control(func(s uintptr) {
		if fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0); err == nil {
			err = unix.SetNonblock(fd, false)
		}
	})
	if err = cmp.Or(cerr, err); err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, os.NewSyscallError("dup", err)
	}
	return fd, nil
}

func (e *ringEngine) now() int64 { return int64(time.Since(e.epoch)) }

// loop is the engine's turn: start what is due, submit and reap without
// waiting, handle the completions; until the window ends. Then it stops
// sending and finishes the exchanges in flight, for at most the timeout.
func (e *ringEngine) loop() {
	cfg := e.r.cfg
	open := cfg.Rate > 0
	for _, c := range e.conns {
		e.armRecv(c)
	}
	var interval int64
	if open {
		interval = max(int64(float64(time.Second)*float64(cfg.Depth)*float64(cfg.Conns)/cfg.Rate), 1)
		for k, c := range e.conns {
			c.next = interval * int64(k) / int64(cfg.Conns)
		}
	} else {
		for _, c := range e.conns {
			e.sendBatch(c, 0)
		}
	}
	var drainUntil int64
	for turn := 0; ; turn++ {
		now := e.now()
		if drainUntil == 0 && e.stop.Load() {
			drainUntil = now + int64(cfg.Timeout)
		}
		if open && drainUntil == 0 {
			for _, c := range e.conns {
				if !c.failed && c.next <= now {
					e.schedule(c, now, interval)
				}
			}
		}
		e.submitAndReap(now, drainUntil != 0)
		if e.live == 0 || e.cancelled.Load() || drainUntil != 0 && (e.idle() || now > drainUntil) {
			return
		}
		if turn&1023 == 0 {
			e.checkTimeouts(now)
		}
	}
}

// idle reports whether every exchange sent has been answered (or failed).
func (e *ringEngine) idle() bool {
	for _, c := range e.conns {
		if !c.failed && (c.sending || c.awaiting || c.unanswered > 0) {
			return false
		}
	}
	return true
}

// submitAndReap submits the prepared SQEs, reaps the completions without
// waiting and handles them.
func (e *ringEngine) submitAndReap(now int64, draining bool) {
	n := e.ring.Publish()
	if errno := e.ring.Enter(n, 0, 0, false); errno != 0 && errno != syscall.EINTR && errno != syscall.EAGAIN && errno != syscall.EBUSY {
		panic(fmt.Sprintf("loadgen: io_uring_enter: %v", errno)) // a broken ring: nothing sensible is left to do
	}
	for {
		k := e.ring.Reap(e.cqes)
		for _, c := range e.cqes[:k] {
			e.complete(c, now, draining)
		}
		if k < len(e.cqes) {
			break
		}
	}
	// Buffers go back once their bytes are checked, then the receives
	// that ended (ENOBUFS, or a multishot the kernel stopped) start again.
	e.bufs.Publish()
	for _, c := range e.rearm {
		if !c.failed {
			e.armRecv(c)
		}
	}
	e.rearm = e.rearm[:0]
}

func (e *ringEngine) sqe() *giouring.SubmissionQueueEntry {
	s := e.ring.GetSQE()
	if s == nil {
		e.ring.Enter(e.ring.Publish(), 0, 0, false)
		s = e.ring.GetSQE()
	}
	return s
}

func (e *ringEngine) armSend(c *rconn) {
	s := e.sqe()
	b := c.out[c.sent:]
	if e.r.cfg.Rate > 0 {
		s.PrepareSend(c.fd, uintptr(unsafe.Pointer(&b[0])), uint32(len(b)), unix.MSG_NOSIGNAL)
		c.sending = true
	} else {
		// A closed loop needs no completion for a send that took the
		// whole batch (MSG_WAITALL: the kernel retries a short one, Linux
		// 5.19): the batch's answer cannot all be back before its last
		// byte was sent, and the buffer is not reused before that. A
		// failed send still completes (CQE_SKIP_SUCCESS, Linux 5.17).
		s.PrepareSend(c.fd, uintptr(unsafe.Pointer(&b[0])), uint32(len(b)), unix.MSG_NOSIGNAL|unix.MSG_WAITALL)
		s.Flags |= giouring.SqeCQESkipSuccess
	}
	e.fixedFile(s, c)
	s.UserData = uint64(c.i)<<8 | ropSend
}

// fixedFile makes s use c's slot in the ring's file table, when there is
// one: the kernel then takes no reference on the file per operation.
func (e *ringEngine) fixedFile(s *giouring.SubmissionQueueEntry, c *rconn) {
	if e.fixed {
		s.Fd = int32(c.i)
		s.Flags |= giouring.SqeFixedFile
	}
}

// armRecv arms c's multishot receive into the provided buffers
// (IORING_RECV_MULTISHOT, Linux 6.0).
func (e *ringEngine) armRecv(c *rconn) {
	s := e.sqe()
	s.PrepareRecvMultishot(c.fd, 0, 0, 0)
	s.Flags |= giouring.SqeBufferSelect
	s.BufIG = 0
	e.fixedFile(s, c)
	s.UserData = uint64(c.i)<<8 | ropRecv
	c.armed = true
}

// sendBatch starts closed-loop batch b on c: its requests out, a receive
// of exactly its length.
func (e *ringEngine) sendBatch(c *rconn, b uint64) {
	cfg := e.r.cfg
	c.batch, c.sent, c.got = b, 0, 0
	c.out = c.out[:0]
	seq := uint32(b * uint64(cfg.Depth))
	for m := range cfg.Depth {
		c.out = e.r.proto.request(c.out, c.i, seq+uint32(m))
	}
	c.sentAt = e.now()
	c.awaiting = true
	e.armSend(c)
}

// schedule queues on c the open-loop batches whose time has come (their
// latency counts from that time), unless too many are unanswered, and
// sends them if c has no send in flight.
func (e *ringEngine) schedule(c *rconn, now, interval int64) {
	cfg := e.r.cfg
	if e.echo != nil && c.want == nil {
		c.want = make([]byte, cfg.Size)
		e.echo.fill(c.want, c.i, 0)
	}
	if c.unanswered == 0 {
		c.lastIO = now // the timeout runs from the first request unanswered
	}
	for c.next <= now && c.unanswered+cfg.Depth <= maxInFlight {
		seq := uint32(c.nextBatch * uint64(cfg.Depth))
		for m := range cfg.Depth {
			c.pend = e.r.proto.request(c.pend, c.i, seq+uint32(m))
		}
		c.sched = append(c.sched, c.next)
		c.unanswered += cfg.Depth
		c.nextBatch++
		c.next += interval
	}

	if !c.sending && len(c.pend) > 0 {
		c.out, c.pend = c.pend, c.out[:0]
		c.sent = 0
		e.armSend(c)
	}
}

// complete handles one completion.
func (e *ringEngine) complete(cq ioring.CQE, now int64, draining bool) {
	c := e.byIndex[cq.UserData>>8]
	switch cq.UserData & 0xff {
	case ropSend:
		c.sending = false
		if c.failed {
			return
		}
		if cq.Res < 0 {
			e.fail(c, fmt.Errorf("write: %w", syscall.Errno(-cq.Res)))
			return
		}
		c.sent += int(cq.Res)
		if c.sent < len(c.out) {
			e.armSend(c) // the rest of a short send (open loop)
			return
		}
		// Batches that came due while the send was in flight go now, even
		// once the window has ended: they were counted as sent, and the
		// drain waits for their answers.
		if len(c.pend) > 0 {
			c.out, c.pend = c.pend, c.out[:0]
			c.sent = 0
			e.armSend(c)
		}
	case ropRecv:
		more := cq.Flags&giouring.CQEFMore != 0
		var data []byte
		if cq.Flags&giouring.CQEFBuffer != 0 {
			bid := uint16(cq.Flags >> giouring.CQEBufferShift)
			var usedUp bool
			data, usedUp = e.bufs.Get(bid, max(int(cq.Res), 0), cq.Flags)
			if usedUp {
				defer e.bufs.Put(bid) // once the bytes are checked
			}
		}
		if !more {
			c.armed = false
		}
		switch {
		case c.failed:
			return
		case cq.Res == -int32(syscall.ENOBUFS):
			// Every buffer was taken: not the end of the stream.
		case cq.Res < 0:
			e.fail(c, fmt.Errorf("read: %w", syscall.Errno(-cq.Res)))
			return
		case cq.Res == 0:
			e.fail(c, fmt.Errorf("read: %w", io.ErrUnexpectedEOF))
			return
		case c.http != nil:
			c.lastIO = now // for the open loop's timeout
			e.receivedHTTP(c, data, now, draining)
		case e.r.cfg.Rate > 0:
			c.lastIO = now
			e.receivedOpen(c, data, now)
		default:
			e.receivedClosed(c, data, now, draining)
		}
		if !c.armed && !c.failed {
			e.rearm = append(e.rearm, c)
		}
	}
}

// receivedClosed checks data, the next bytes of c's batch; a whole batch
// is counted and, unless draining, the next one sent.
func (e *ringEngine) receivedClosed(c *rconn, data []byte, now int64, draining bool) {
	switch {
	case !c.awaiting:
		e.fail(c, fmt.Errorf("%d bytes came back after batch %d was whole", len(data), c.batch))
		return
	case c.got+len(data) > len(c.out):
		e.fail(c, fmt.Errorf("batch %d: %d bytes came back beyond the %d sent", c.batch, c.got+len(data)-len(c.out), len(c.out)))
		return
	}
	got := c.got + len(data)
	if string(data) != string(c.out[c.got:got]) {
		in := append(append([]byte(nil), c.out[:c.got]...), data...)
		e.fail(c, e.echo.mismatch(c.i, c.batch, 0, c.out[:got], in))
		return
	}
	c.got = got
	if got < len(c.out) {
		return
	}
	c.awaiting = false
	e.r.done(c.i, e.r.cfg.Depth, got, time.Duration(now-c.sentAt))
	if !draining {
		e.sendBatch(c, c.batch+1)
	}
}

// receivedHTTP parses data, the next bytes of c's response stream,
// response by response. In a closed loop, once the batch's last response
// is back and nothing beyond it, the batch is counted, with its latency
// from its send, and unless draining the next one sent; in an open loop
// each response is counted as it completes. Bytes beyond the responses
// asked for are an error.
func (e *ringEngine) receivedHTTP(c *rconn, data []byte, now int64, draining bool) {
	cfg := e.r.cfg
	open := cfg.Rate > 0
	for len(data) > 0 {
		if open && c.unanswered == 0 || !open && !c.awaiting {
			e.fail(c, fmt.Errorf("%w: %d bytes came back beyond the responses asked for", ErrBadResponse, len(data)))
			return
		}
		seq, batch := c.rseq, c.batch
		if open {
			batch = uint64(seq) / uint64(cfg.Depth)
		}
		used, size, err := c.http.next(data, seq, batch, int(seq-uint32(batch*uint64(cfg.Depth))))
		if err != nil {
			e.fail(c, err)
			return
		}
		data = data[used:]
		if size == 0 {
			return // the response goes on in a later receive
		}
		if open {
			e.answeredOpen(c, size, now)
			continue
		}
		c.rseq++
		c.got += size
		if c.rseq != uint32((c.batch+1)*uint64(cfg.Depth)) {
			continue
		}
		c.awaiting = false
		if len(data) > 0 {
			continue // bytes beyond the batch: failed above
		}
		e.r.done(c.i, cfg.Depth, c.got, time.Duration(now-c.sentAt))
		if !draining {
			e.sendBatch(c, c.batch+1)
		}
	}
}

// receivedOpen checks b, the next bytes of c's response stream, message
// by message, counting each with its latency from its batch's scheduled
// time.
func (e *ringEngine) receivedOpen(c *rconn, b []byte, now int64) {
	cfg := e.r.cfg
	if len(b) > c.unanswered*cfg.Size-c.roff {
		e.fail(c, fmt.Errorf("%d bytes came back beyond the %d asked for", len(b)-(c.unanswered*cfg.Size-c.roff), c.unanswered*cfg.Size-c.roff))
		return
	}
	for len(b) > 0 {
		k := min(len(b), cfg.Size-c.roff)
		if string(b[:k]) != string(c.want[c.roff:c.roff+k]) {
			got := make([]byte, cfg.Size)
			copy(got, c.want[:c.roff])
			copy(got[c.roff:], b[:k])
			batch := uint64(c.rseq) / uint64(cfg.Depth)
			e.fail(c, e.echo.mismatch(c.i, batch, int(uint64(c.rseq)%uint64(cfg.Depth))*cfg.Size, c.want, got[:c.roff+k]))
			return
		}
		b, c.roff = b[k:], c.roff+k
		if c.roff < cfg.Size {
			break
		}
		// Message rseq is complete.
		e.answeredOpen(c, cfg.Size, now)
		c.roff = 0
		e.echo.fill(c.want, c.i, c.rseq)
	}
}

// answeredOpen counts c's open-loop message rseq, of size bytes, answered
// now, with its latency from its batch's scheduled time.
func (e *ringEngine) answeredOpen(c *rconn, size int, now int64) {
	e.r.done(c.i, 1, size, time.Duration(now-c.sched[c.schedHead]))
	c.unanswered--
	c.rseq++
	if c.rseq%uint32(e.r.cfg.Depth) == 0 {
		c.schedHead++
		if c.schedHead == len(c.sched) {
			c.sched, c.schedHead = c.sched[:0], 0
		}
	}
}

// checkTimeouts fails connections whose server has not answered within
// the timeout.
func (e *ringEngine) checkTimeouts(now int64) {
	limit := int64(e.r.cfg.Timeout)
	for _, c := range e.conns {
		switch {
		case c.failed:
		case c.awaiting && now-c.sentAt > limit, c.unanswered > 0 && now-c.lastIO > limit:
			e.fail(c, fmt.Errorf("no answer within %v: %w", e.r.cfg.Timeout, os.ErrDeadlineExceeded))
		}
	}
}

// fail records c's error and stops it; its operations in flight end when
// the ring closes.
func (e *ringEngine) fail(c *rconn, err error) {
	if c.failed {
		return
	}
	c.failed = true
	e.live--
	var m *MismatchError
	if !errors.As(err, &m) {
		err = fmt.Errorf("loadgen: conn %d: %w", c.i, err)
	}
	e.r.fail(err)
}

// close closes the ring, which cancels what is in flight, then unmaps
// the buffers and closes the sockets.
func (e *ringEngine) close() {
	e.ring.Close()
	if e.bufs != nil {
		e.bufs.Close()
	}
	for _, c := range e.conns {
		unix.Close(c.fd)
		e.r.open.Add(-1)
	}
}
