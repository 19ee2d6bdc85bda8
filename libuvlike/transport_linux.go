package libuvlike

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/merlin-net/merlin/internal/core"
	"github.com/merlin-net/merlin/transports"
)

func probe() (string, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return "", transports.Unsupported(fmt.Sprintf("libuvlike: epoll_create1: %v", err))
	}
	unix.Close(fd)
	return "epoll, eventfd", nil
}

// Transport is the libuvlike transport: Config.Loops loops, each a Loop on
// a goroutine of its own, serving the connections it accepted or dialed.
// Make one with New or transports.Open("libuvlike", cfg).
type Transport struct {
	cfg   transports.Config
	opt   Options
	loops []*evloop
	next  atomic.Uint32 // round-robin over the loops for Dial and listeners

	mu        sync.Mutex
	closed    bool // Shutdown or Close has begun
	listeners map[*listener]struct{}
	open      int           // connections opened and not yet closed; guarded by mu
	idle      chan struct{} // closed once closed is set and open is 0
	done      chan struct{} // closed once the loops have exited and their descriptors are closed
	wg        sync.WaitGroup

	// foreignSyscalls counts the system calls made on callers' goroutines
	// (Listen's socket, bind and listen; Listener.Close's shutdown).
	foreignSyscalls atomic.Uint64
}

var _ transports.Transport = (*Transport)(nil)

// New starts a transport with cfg (zero fields take their defaults) and
// opt: its loops run from now until Shutdown or Close.
func New(cfg transports.Config, opt Options) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:       cfg.WithDefaults(),
		opt:       opt,
		listeners: map[*listener]struct{}{},
		idle:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	for i := range t.cfg.Loops {
		el, err := newEvloop(t, i)
		if err != nil {
			for _, el := range t.loops {
				el.stop()
			}
			t.wg.Wait()
			return nil, err
		}
		t.loops = append(t.loops, el)
	}
	return t, nil
}

// Name returns "libuvlike".
func (t *Transport) Name() string { return "libuvlike" }

// Config returns the transport's configuration, defaults filled in.
func (t *Transport) Config() transports.Config { return t.cfg }

// Options returns the transport's own settings, defaults filled in.
func (t *Transport) Options() Options { return t.opt }

// Stats sums the loops' counters. Syscalls counts every system call the
// transport makes: on its loops (epoll_pwait, epoll_ctl, read, write,
// writev, accept4, ...) and for them on other goroutines (eventfd writes
// that wake a loop, Listen's socket calls).
//
// The loops count in memory of their own, with no atomic operation, and
// publish every 64 iterations and when they exit; Stats asks each loop to
// publish first (a wake-up, counted like any other) and waits up to 100 ms
// for it, so its figures are current unless a callback holds a loop that
// long.
func (t *Transport) Stats() transports.Stats {
	t.refreshStats()
	var s transports.Stats
	var raw uint64
	for _, el := range t.loops {
		s = s.Add(el.pub.Snapshot())
		s.Syscalls += el.loop.ForeignSyscalls()
		raw += el.raw.Load()
	}
	s.Syscalls += t.foreignSyscalls.Load()
	s.Extra = map[string]uint64{"raw_waits": raw}
	return s
}

// refreshStats has every loop publish its counters, waiting up to 100 ms.
func (t *Transport) refreshStats() {
	var wait []chan struct{}
	for _, el := range t.loops {
		if el.loop.InLoop() {
			el.publish()
			continue
		}
		done := make(chan struct{})
		if el.post(func() { el.publish(); close(done) }) {
			wait = append(wait, done)
		}
	}
	if len(wait) == 0 {
		return
	}
	timeout := time.NewTimer(100 * time.Millisecond)
	defer timeout.Stop()
	for _, done := range wait {
		select {
		case <-done:
		case <-timeout.C:
			return
		}
	}
}

// inCallback reports whether the caller runs on one of t's loops, where
// every callback runs.
func (t *Transport) inCallback() bool {
	for _, el := range t.loops {
		if el.loop.InLoop() {
			return true
		}
	}
	return false
}

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// pickLoop returns the next loop, round-robin.
func (t *Transport) pickLoop() *evloop {
	return t.loops[int(t.next.Add(1)-1)%len(t.loops)]
}

// connOpened counts a new connection, or reports false once the transport
// is closing (the connection must then be dropped without OnOpen).
func (t *Transport) connOpened() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.open++
	return true
}

// connClosed counts a connection whose OnClose has returned.
func (t *Transport) connClosed() {
	t.mu.Lock()
	t.open--
	if t.closed && t.open == 0 {
		close(t.idle)
	}
	t.mu.Unlock()
}

// Listen listens on a tcp, tcp4, tcp6 or unix address and serves every
// connection accepted there with h. With accept=reuseport, a TCP listener
// is one SO_REUSEPORT socket per loop; otherwise (and always on unix) it
// is one socket, whose loop hands connections to all loops in turn.
// Listen may be called from a callback: it does not wait for the loops.
func (t *Transport) Listen(network, address string, h transports.Handler) (transports.Listener, error) {
	if err := core.ListenError(network, t.isClosed()); err != nil {
		return nil, err
	}
	ra, err := resolve(network, address, true)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	ln := &listener{t: t, h: h, network: network, done: make(chan struct{})}
	n := 1
	if t.opt.Accept == AcceptReusePort && network != "unix" && len(t.loops) > 1 {
		n = len(t.loops)
	}
	sa := ra.sa
	flags := ra.bind
	if n > 1 {
		flags |= BindReusePort
	}
	for i := range n {
		fd, bound, err := t.listenSocket(ra.family, sa, flags)
		if err != nil {
			ln.closeFDs()
			return nil, &net.OpError{Op: "listen", Net: network, Addr: ra.addr, Err: err}
		}
		if i == 0 {
			// The others bind the port the first one got (port 0).
			sa = bound
			ln.addr = netAddr(network, bound)
			if network == "unix" {
				ln.path = ra.sa.(*unix.SockaddrUnix).Name
				ln.addr = ra.addr
			}
		}
		ln.fds = append(ln.fds, fd)
	}

	first := t.pickLoop()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		ln.unlink()
		ln.closeFDs()
		return nil, &net.OpError{Op: "listen", Net: network, Addr: ln.addr, Err: net.ErrClosed}
	}
	t.listeners[ln] = struct{}{}
	for i, fd := range ln.fds {
		el := first
		if n > 1 {
			el = t.loops[i]
		}
		lh := &lhandle{ln: ln, el: el, dispatch: n == 1 && len(t.loops) > 1}
		ln.handles = append(ln.handles, lh)
		if !el.post(func() { lh.start(fd) }) {
			t.foreignSyscalls.Add(1)
			unix.Close(fd)
		}
	}
	ln.fds = nil // owned by the loops now
	return ln, nil
}

// listenSocket makes a listening socket on the calling goroutine, so that
// Listen reports its errors at once, and returns it with the address it is
// bound to.
func (t *Transport) listenSocket(family int, sa unix.Sockaddr, flags int) (fd int, bound unix.Sockaddr, err error) {
	sys := func(name string, err error) error {
		t.foreignSyscalls.Add(1)
		if err != nil {
			return os.NewSyscallError(name, err)
		}
		return nil
	}
	fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err = sys("socket", err); err != nil {
		return -1, nil, err
	}
	fail := func(e error) (int, unix.Sockaddr, error) {
		unix.Close(fd)
		t.foreignSyscalls.Add(1)
		return -1, nil, e
	}
	if family != unix.AF_UNIX {
		if err := sys("setsockopt", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)); err != nil {
			return fail(err)
		}
	}
	if flags&BindReusePort != 0 {
		if err := sys("setsockopt", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)); err != nil {
			return fail(err)
		}
	}
	if family == unix.AF_INET6 {
		v := 0
		if flags&BindIPv6Only != 0 {
			v = 1
		}
		if err := sys("setsockopt", unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v)); err != nil {
			return fail(err)
		}
	}
	if err := sys("bind", unix.Bind(fd, sa)); err != nil {
		return fail(err)
	}
	if err := sys("listen", unix.Listen(fd, listenBacklog())); err != nil {
		if ua, ok := sa.(*unix.SockaddrUnix); ok && !abstractUnix(ua.Name) {
			unix.Unlink(ua.Name)
		}
		return fail(err)
	}
	bound, err = unix.Getsockname(fd)
	if err = sys("getsockname", err); err != nil {
		return fail(err)
	}
	return fd, bound, nil
}

// Dial connects to address from a loop (round-robin) and returns once
// h.OnOpen has returned there. ctx bounds the connect.
func (t *Transport) Dial(ctx context.Context, network, address string, h transports.Handler) (transports.Conn, error) {
	if t.inCallback() {
		return nil, &net.OpError{Op: "dial", Net: network, Err: transports.ErrInCallback}
	}
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
	default:
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
	}
	if t.isClosed() {
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.ErrClosed}
	}
	ra, err := resolve(network, address, false)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	el := t.pickLoop()
	d := &dialer{el: el, h: h, network: network, ra: ra, done: make(chan dialResult, 1)}
	if !el.post(d.start) {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: ra.addr, Err: net.ErrClosed}
	}
	// The loop answers exactly once, unless it stopped before it ran
	// d.start: a teardown settles every dial it has begun before t.done
	// closes, so after t.done an answer is there or never comes.
	closed := func() dialResult {
		select {
		case r := <-d.done:
			return r
		default:
			return dialResult{err: d.opError(net.ErrClosed)}
		}
	}
	var r dialResult
	select {
	case r = <-d.done:
	case <-t.done:
		r = closed()
	case <-ctx.Done():
		cerr := ctx.Err()
		el.post(func() { d.cancel(cerr) })
		select {
		case r = <-d.done:
		case <-t.done:
			r = closed()
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return r.c, nil
}

// Shutdown closes the listeners, calls OnShutdown (or Close) for every
// connection on its loop, and waits until all have closed or ctx ends;
// then it aborts the rest and returns ctx.Err().
func (t *Transport) Shutdown(ctx context.Context) error {
	if t.inCallback() {
		return transports.ErrInCallback
	}
	if !t.beginClose() {
		<-t.done
		return nil
	}
	for _, el := range t.loops {
		el.post(el.shutdownConns)
	}
	var err error
	select {
	case <-t.idle:
	case <-ctx.Done():
		select {
		case <-t.idle:
		default:
			err = ctx.Err()
			for _, el := range t.loops {
				el.post(func() { el.killConns(net.ErrClosed) })
			}
			<-t.idle
		}
	}
	t.finishClose()
	return err
}

// Close closes the listeners and aborts every connection (their OnClose
// err matches net.ErrClosed), waits for the loops to exit and returns nil.
func (t *Transport) Close() error {
	if t.inCallback() {
		return transports.ErrInCallback
	}
	first := t.beginClose()
	// A Shutdown may be waiting: Close means now.
	for _, el := range t.loops {
		el.post(func() { el.killConns(net.ErrClosed) })
	}
	if first {
		<-t.idle
		t.finishClose()
	}
	<-t.done
	return nil
}

// beginClose marks t closed and closes its listeners. It reports whether
// this call was the first.
func (t *Transport) beginClose() bool {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return false
	}
	t.closed = true
	if t.open == 0 {
		close(t.idle)
	}
	ls := make([]*listener, 0, len(t.listeners))
	for ln := range t.listeners {
		ls = append(ls, ln)
	}
	t.mu.Unlock()
	for _, ln := range ls {
		ln.Close()
	}
	return true
}

// finishClose stops the loops, waits for them, and releases the waiters.
func (t *Transport) finishClose() {
	for _, el := range t.loops {
		el.stop()
	}
	t.wg.Wait()
	close(t.done)
}

// evloop is one loop of the transport: a Loop, its goroutine, and the
// state of the connections it serves.
type evloop struct {
	t     *Transport
	idx   int
	loop  *Loop
	async *Async
	buf   []byte // the read buffer, lent to one OnData at a time

	// Owned by the loop's goroutine.
	conns     map[*conn]struct{}
	dials     map[*dialer]struct{}
	handles   map[*lhandle]struct{}
	dirty     []*conn      // connections written in this iteration
	deferred  []*conn      // connections whose kept bytes are due (reading resumed)
	more      *Idle        // started while work is due that no check will meet
	handoffs  int          // connections whose handler hands off (Handoff)
	spares    *core.Spares // kept-input buffers of idle connections, for reuse
	log       core.Log
	limits    core.Limits // the connections' time limits
	idle      bool        // limits.Idle is on: reads and writes count as activity
	iter      uint32
	st        loopCounters
	stopping  bool
	maxWrite  int64
	halfWrite int64
	maxRead   int

	pub transports.Counters // published copy of the counters, for Stats
	raw atomic.Uint64       // published copy of Stats.RawWaits

	mu      sync.Mutex
	posted  []*conn  // connections with work from other goroutines; guarded by mu
	tasks   []func() // guarded by mu
	stopReq bool     // guarded by mu
	closed  bool     // no more posts: the loop is stopping; guarded by mu
	spareP  []*conn
	spareT  []func()
}

// loopCounters are the transport's own counters on a loop, beside the
// Loop's.
type loopCounters struct {
	accepted, dialed, closed, readPauses, acceptErrors uint64
}

func newEvloop(t *Transport, idx int) (*evloop, error) {
	loop, err := NewLoop(LoopOptions{EdgeTriggered: t.opt.EdgeTriggered, LockOSThread: t.opt.LockOSThread, RawWait: t.opt.RawWait})
	if err != nil {
		return nil, err
	}
	el := &evloop{
		t:         t,
		idx:       idx,
		loop:      loop,
		buf:       make([]byte, t.opt.ReadBuffer),
		conns:     map[*conn]struct{}{},
		dials:     map[*dialer]struct{}{},
		handles:   map[*lhandle]struct{}{},
		maxWrite:  int64(t.cfg.MaxWriteBuffer),
		halfWrite: int64(t.cfg.MaxWriteBuffer / 2),
		maxRead:   t.cfg.MaxReadBuffer,
		spares:    core.NewSpares(t.opt.ReadBuffer),
		log:       core.Log{Name: "libuvlike", Logger: t.cfg.Logger},
		limits:    core.NewLimits(t.cfg),
		idle:      t.cfg.IdleTimeout > 0,
	}
	if t.opt.Park == ParkInRuntime {
		if err := loop.SetPark(ParkRuntime); err != nil {
			loop.Close()
			return nil, err
		}
	}
	if el.async, err = loop.NewAsync(el.onAsync); err != nil {
		loop.Close()
		return nil, err
	}
	el.more = loop.NewIdle()
	loop.NewCheck().Start(el.check)
	started := make(chan struct{})
	t.wg.Add(1)
	go el.run(started)
	<-started // loop.InLoop works from now on
	return el, nil
}

// addConn counts c among el's connections; a loop with park=auto parks
// in the runtime while one of them hands off.
func (el *evloop) addConn(c *conn) {
	el.conns[c] = struct{}{}
	if c.h.Handoff() {
		if el.handoffs++; el.handoffs == 1 && el.t.opt.Park == ParkAuto && !el.t.opt.LockOSThread {
			el.setPark(ParkRuntime)
		}
	}
}

// removeConn forgets c.
func (el *evloop) removeConn(c *conn) {
	delete(el.conns, c)
	if c.h.Handoff() {
		if el.handoffs--; el.handoffs == 0 && el.t.opt.Park == ParkAuto && !el.t.opt.LockOSThread {
			el.setPark(ParkThread)
		}
	}
}

// setPark changes how the loop waits, and logs why it could not.
func (el *evloop) setPark(p Park) {
	if err := el.loop.SetPark(p); err != nil {
		el.t.cfg.Logger.Warn("libuvlike: the loop goes on blocking its thread", "loop", el.idx, "err", err)
	}
}

// run is the loop's goroutine.
func (el *evloop) run(started chan<- struct{}) {
	defer el.t.wg.Done()
	first := true
	el.loop.NewIdle().Start(func(h *Idle) {
		// Runs once Run has recorded its goroutine.
		if first {
			first = false
			close(started)
		}
		h.Stop()
	})
	if err := el.loop.Run(); err != nil {
		el.t.cfg.Logger.Error("libuvlike: loop failed", "loop", el.idx, "err", err)
		el.teardown()
		el.loop.runClosing()
	}
	if first {
		close(started)
	}
	el.mu.Lock()
	el.closed = true // no more posts: nothing would run them
	el.mu.Unlock()
	if err := el.loop.Close(); err != nil {
		el.t.cfg.Logger.Error("libuvlike: closing loop", "loop", el.idx, "err", err)
	}
	el.publish()
}

// post queues f to run on the loop, and reports false if the loop is
// stopping (f will not run).
func (el *evloop) post(f func()) bool {
	el.mu.Lock()
	if el.closed {
		el.mu.Unlock()
		return false
	}
	el.tasks = append(el.tasks, f)
	el.mu.Unlock()
	el.async.Send()
	return true
}

// postConn queues c, which has work from another goroutine. The caller
// holds c.mu.
func (el *evloop) postConn(c *conn) {
	el.mu.Lock()
	ok := !el.closed
	if ok {
		el.posted = append(el.posted, c)
	}
	el.mu.Unlock()
	if ok {
		el.async.Send()
	}
}

// stop asks the loop to tear down and exit.
func (el *evloop) stop() {
	el.mu.Lock()
	el.stopReq = true
	el.mu.Unlock()
	el.async.Send()
}

// onAsync runs the work other goroutines queued.
func (el *evloop) onAsync(*Async) {
	el.mu.Lock()
	posted, tasks, stop := el.posted, el.tasks, el.stopReq
	el.posted, el.tasks = el.spareP[:0], el.spareT[:0]
	if stop {
		el.closed = true
	}
	el.mu.Unlock()
	for i, c := range posted {
		posted[i] = nil
		c.applyCommands()
	}
	for i, f := range tasks {
		tasks[i] = nil
		f()
	}
	el.spareP, el.spareT = posted[:0], tasks[:0]
	if stop {
		el.teardown()
		el.loop.Stop()
	}
}

// check runs after the I/O callbacks of an iteration: their work, and,
// every 64 iterations, the counters. Work its own callbacks leave (input
// kept while the output drained, due at once) is the idle handle's.
func (el *evloop) check(*Check) {
	el.work()
	if el.workLeft() {
		el.startMore()
	}
	el.iter++
	if el.iter&63 == 0 {
		el.publish()
	}
}

// workAdded is called when a connection joins dirty or deferred. Work
// made while no check is due (by timers, write or close callbacks) starts
// the idle handle, which does it before the poll and keeps the poll from
// waiting while work is left. (A prepare handle run in every iteration
// for this rare work cost a hundred instructions an iteration, counted
// with callgrind.)
func (el *evloop) workAdded() {
	if !el.loop.checksDue {
		el.startMore()
	}
}

// startMore starts the idle handle (again: Start is idempotent).
func (el *evloop) startMore() { el.more.Start(el.moreWork) }

// moreWork does the work made since the check phase, once, as the check
// does, and stops once none is left: while it runs, the poll does not
// wait, and the check after it meets what its callbacks left.
func (el *evloop) moreWork(h *Idle) {
	el.work()
	if !el.workLeft() {
		h.Stop()
	}
}

// workLeft reports whether a connection waits for its kept bytes or its
// flush.
func (el *evloop) workLeft() bool { return len(el.deferred) > 0 || len(el.dirty) > 0 }

// work offers kept bytes where reading resumed, then flushes every
// connection written since the last call, if there is any of either: each
// one's output goes out with one system call, and what the socket did not
// take goes to write requests.
func (el *evloop) work() {
	if el.workLeft() {
		el.workDue()
	}
}

func (el *evloop) workDue() {
	for i := 0; i < len(el.deferred); i++ {
		c := el.deferred[i]
		el.deferred[i] = nil
		c.state &^= cfDeferred
		c.offerKept()
	}
	el.deferred = el.deferred[:0]
	// A connection the callbacks below (OnDrain) write to is marked again
	// and comes later in this loop.
	for i := 0; i < len(el.dirty); i++ {
		c := el.dirty[i]
		el.dirty[i] = nil
		c.state &^= cfDirty
		if c.tryable() {
			c.wrote(c.tcp.TryWrite(c.out))
		}
		c.queueRest()
	}
	el.dirty = el.dirty[:0]
}

// publish copies the loop's counters where Stats reads them.
func (el *evloop) publish() {
	s, p := &el.loop.Stats, &el.pub
	store := func(a *atomic.Uint64, v uint64) {
		if a.Load() != v {
			a.Store(v)
		}
	}
	store(&p.Syscalls, s.Syscalls)
	store(&p.Wakeups, s.Wakeups)
	store(&p.Events, s.Events)
	store(&p.Reads, s.Reads)
	store(&p.Writes, s.Writes)
	store(&p.BytesIn, s.BytesIn)
	store(&p.BytesOut, s.BytesOut)
	store(&p.Accepted, el.st.accepted)
	store(&p.Dialed, el.st.dialed)
	store(&p.Closed, el.st.closed)
	store(&p.ReadPauses, el.st.readPauses)
	store(&el.raw, s.RawWaits)
	store(&p.AcceptErrors, el.st.acceptErrors)
}

// shutdownConns asks every connection to finish: OnShutdown, or Close.
func (el *evloop) shutdownConns() {
	for _, c := range el.connList() {
		c.requestShutdown()
	}
}

// killConns aborts every connection with err.
func (el *evloop) killConns(err error) {
	for _, c := range el.connList() {
		c.kill(err)
	}
}

func (el *evloop) connList() []*conn {
	cs := make([]*conn, 0, len(el.conns))
	for c := range el.conns {
		cs = append(cs, c)
	}
	return cs
}

// teardown closes everything left on the loop before it exits: listening
// handles, connections (none, normally: the transport waits for them),
// dials in progress, and the async handle.
func (el *evloop) teardown() {
	el.stopping = true
	for lh := range el.handles {
		lh.close()
	}
	el.killConns(net.ErrClosed)
	for d := range el.dials {
		d.cancel(net.ErrClosed)
	}
	el.async.Close(nil)
}

// lhandle is one listening socket of a listener, on its loop.
type lhandle struct {
	ln       *listener
	el       *evloop
	tcp      TCP
	dispatch bool // hand connections to all loops in turn
	rr       int
	backoff  core.Backoff
	timer    Timer
	started  bool // start has run
	closed   bool
}

// start registers the listening socket fd with the loop.
func (lh *lhandle) start(fd int) {
	el := lh.el
	el.loop.InitTCP(&lh.tcp)
	el.loop.InitTimer(&lh.timer)
	lh.tcp.Open(fd)
	lh.started = true
	if lh.ln.closed.Load() || el.stopping {
		lh.closed = true
		lh.tcp.Close(nil)
		return
	}
	el.handles[lh] = struct{}{}
	if err := lh.tcp.Listen(listenBacklog(), lh.onConnection); err != nil {
		el.t.cfg.Logger.Error("libuvlike: listen", "addr", lh.ln.addr, "err", err)
		lh.close()
	}
}

// onConnection takes a new connection, or backs off after an accept
// error as core.Backoff says: the errors a retry fixes (ECONNABORTED,
// EPROTO, EINTR) go on to the next accept at once; the others pause the
// listener (PauseListen, which ends the reactor's accepts for this
// event) until the back-off's timer resumes it.
func (lh *lhandle) onConnection(server *TCP, err error) {
	el := lh.el
	if lh.ln.closed.Load() {
		lh.close()
		return
	}
	if err != nil {
		el.st.acceptErrors++
		wait, log := lh.backoff.Failed(err)
		if log {
			el.t.cfg.Logger.Error("libuvlike: accept", "addr", lh.ln.addr, "err", err)
		}
		if wait > 0 {
			server.PauseListen()
			lh.timer.Start(lh.resume, wait, 0)
		}
		return
	}
	lh.backoff.Accepted()
	fd, sa, err := server.AcceptFD()
	if err != nil {
		return
	}
	target := el
	if lh.dispatch {
		target = el.t.loops[lh.rr%len(el.t.loops)]
		lh.rr++
	}
	if target == el {
		el.openConn(fd, sa, lh.ln)
		return
	}
	ln := lh.ln
	if !target.post(func() { target.openConn(fd, sa, ln) }) {
		el.loop.sysClose(fd)
	}
}

func (lh *lhandle) resume(*Timer) {
	if !lh.closed {
		lh.tcp.ResumeListen()
	}
}

// close closes the listening socket.
func (lh *lhandle) close() {
	if lh.closed || !lh.started {
		return
	}
	lh.closed = true
	lh.timer.Stop()
	delete(lh.el.handles, lh)
	lh.tcp.Close(nil)
}

// listener is a transports.Listener: one listening socket, or one per
// loop.
type listener struct {
	t       *Transport
	h       transports.Handler
	network string
	addr    net.Addr
	path    string     // unix: the socket file, removed by Close
	fds     []int      // until handed to the loops
	handles []*lhandle // immutable once Listen returns

	closed atomic.Bool   // set by the first Close
	done   chan struct{} // closed by the first Close
}

func (ln *listener) Addr() net.Addr { return ln.addr }

// Done is closed once ln is (transports.DoneListener).
func (ln *listener) Done() <-chan struct{} { return ln.done }

// Close stops accepting and removes a unix socket's file; connections
// accepted go on. The loops close the listening sockets; Close waits for
// them, except when called from a callback (it would wait for its own
// loop), where the other loops close theirs right after. A later Close
// waits as the first does, and from a callback not at all: the first may
// be waiting for the caller's loop.
func (ln *listener) Close() error {
	t := ln.t
	wait := !t.inCallback()
	if ln.closed.Swap(true) {
		if wait {
			<-ln.done
		}
		return nil
	}
	t.mu.Lock()
	delete(t.listeners, ln)
	t.mu.Unlock()
	ln.unlink()
	var wg sync.WaitGroup
	for _, lh := range ln.handles {
		if lh.el.loop.InLoop() {
			lh.close() // a start still queued sees ln.closed
			continue
		}
		wg.Add(1)
		if !lh.el.post(func() { lh.close(); wg.Done() }) {
			wg.Done() // the loop has stopped: it closed the socket
		}
	}
	if wait {
		wg.Wait()
	}
	close(ln.done)
	return nil
}

func (ln *listener) unlink() {
	if ln.path != "" && !abstractUnix(ln.path) {
		os.Remove(ln.path)
	}
}

func (ln *listener) closeFDs() {
	for _, fd := range ln.fds {
		unix.Close(fd)
		ln.t.foreignSyscalls.Add(1)
	}
	ln.fds = nil
}

// dialer is a Dial in progress, on its loop.
type dialer struct {
	el      *evloop
	h       transports.Handler
	network string
	ra      sockAddr
	c       *conn
	req     ConnectReq
	done    chan dialResult // one result
	settled bool            // owned by the loop
}

type dialResult struct {
	c   *conn
	err error
}

// start connects, on the loop.
func (d *dialer) start() {
	el := d.el
	if el.stopping || el.t.isClosed() {
		d.finish(dialResult{err: d.opError(net.ErrClosed)})
		return
	}
	d.c = newConn(el, d.h, d.network)
	el.loop.InitTCP(&d.c.tcp)
	if err := d.c.tcp.Connect(&d.req, d.ra.sa, d.connected); err != nil {
		d.c.tcp.Close(nil)
		d.finish(dialResult{err: d.opError(err)})
		return
	}
	el.dials[d] = struct{}{}
}

// connected completes the connect.
func (d *dialer) connected(_ *ConnectReq, err error) {
	el := d.el
	delete(el.dials, d)
	if d.settled {
		return // canceled
	}
	c := d.c
	if err == nil && !el.t.connOpened() {
		err = net.ErrClosed
	}
	if err != nil {
		c.tcp.Close(nil)
		d.finish(dialResult{err: d.opError(err)})
		return
	}
	if err := c.setup(nil); err != nil { // the peer's address from getpeername, as package net reports it
		el.t.connClosed()
		c.tcp.Close(nil)
		d.finish(dialResult{err: d.opError(err)})
		return
	}
	el.st.dialed++
	el.addConn(c)
	c.open()
	d.finish(dialResult{c: c})
}

// cancel ends a dial still connecting with err.
func (d *dialer) cancel(err error) {
	if d.settled {
		return
	}
	delete(d.el.dials, d)
	if d.c != nil {
		d.c.tcp.Close(nil) // the connect request completes with ErrCanceled, ignored
	}
	d.finish(dialResult{err: d.opError(err)})
}

func (d *dialer) finish(r dialResult) {
	d.settled = true
	d.done <- r
}

func (d *dialer) opError(err error) error {
	return &net.OpError{Op: "dial", Net: d.network, Addr: d.ra.addr, Err: err}
}
