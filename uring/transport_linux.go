package uring

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/merlin-net/merlin/internal/core"
	"github.com/merlin-net/merlin/transports"
	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// Transport is the io_uring transport. Make one with transports.Open("uring", cfg).
type Transport struct {
	cfg    transports.Config
	lim    core.Limits // the connections' time limits, from cfg
	log    core.Log
	opt    options
	feat   *features
	bufInc atomic.Uint64 // 1 if the buffer rings are consumed incrementally (IOU_PBUF_RING_INC)
	// thread holds the thread loops (nil with park=runtime) and runtime
	// the runtime loops: started by New with park=runtime, by the first
	// Listen or Dial that needs them with park=auto, never with
	// park=thread. rtMu serialises their start.
	thread  *loopSet
	runtime atomic.Pointer[loopSet]
	rtMu    sync.Mutex

	mu     sync.Mutex
	cond   sync.Cond // signalled when nconns reaches 0
	closed bool
	nconns int // conns opened (or dialing) whose OnClose has not returned
	// byID holds every listener that is open, or closed with descriptors
	// it handed to other loops (msgring) still on their way: the MSG_RING
	// names it by id.
	byID   map[uint32]*listener
	nextID uint32
	done   chan struct{}
}

var _ transports.Transport = (*Transport)(nil)

// loopSet is a transport's loops of one kind: Config.Loops of them, each
// with its ring and goroutine. A listener and the conns it accepts, or a
// dialed conn, live on the loops of one set.
type loopSet struct {
	runtime bool // runtime loops (park_linux.go); else thread loops
	loops   []*loop
	rr      atomic.Uint32  // round-robin for Dial and msgring hand-offs
	wg      sync.WaitGroup // the loops' goroutines
}

// startSet starts n loops and waits until each has set up its ring. If
// one fails, it stops them all and returns the first error.
func (t *Transport) startSet(n int, runtime bool) (*loopSet, error) {
	set := &loopSet{runtime: runtime}
	ready := make(chan error, n)
	for i := range n {
		l := &loop{t: t, set: set, id: i, stats: &loopStats{}, spares: core.NewSpares(keepSpare), timers: newTimerHeap()}
		if !runtime {
			l.raw.Within = t.opt.rawWait // a runtime loop never waits in io_uring_enter
		}
		set.loops = append(set.loops, l)
	}
	for _, l := range set.loops {
		l.start(&set.wg, ready)
	}
	var first error
	for range n {
		if err := <-ready; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		set.stop()
		return nil, first
	}
	return set, nil
}

// stop stops the set's loops once they are idle and waits for them.
func (s *loopSet) stop() {
	for _, l := range s.loops {
		l.postTask(func() { l.stopping = true })
	}
	s.wg.Wait()
}

// eachLoop runs f on every loop of t, of both sets.
func (t *Transport) eachLoop(f func(l *loop)) {
	for _, s := range [...]*loopSet{t.thread, t.runtime.Load()} {
		if s != nil {
			for _, l := range s.loops {
				f(l)
			}
		}
	}
}

// setFor returns the loops that serve the conns of h, a Listen's or a
// Dial's: by the park key, and with park=auto by whether h hands off.
func (t *Transport) setFor(h transports.Handler) (*loopSet, error) {
	switch {
	case t.opt.park == ParkThread:
		return t.thread, nil
	case t.opt.park == ParkRuntime, core.NewHandler(h).Handoff():
		return t.runtimeSet()
	}
	return t.thread, nil
}

// runtimeSet returns the runtime loops, started on first use. It fails
// with net.ErrClosed once t is closing: Close stops the sets it finds,
// and a set published after it looked would run on.
func (t *Transport) runtimeSet() (*loopSet, error) {
	if s := t.runtime.Load(); s != nil {
		return s, nil
	}
	t.rtMu.Lock()
	defer t.rtMu.Unlock()
	if s := t.runtime.Load(); s != nil {
		return s, nil
	}
	if t.isClosed() {
		return nil, net.ErrClosed
	}
	s, err := t.startSet(max(t.cfg.Loops, 1), true)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	closed := t.closed
	if !closed {
		t.runtime.Store(s)
	}
	t.mu.Unlock()
	if closed {
		s.stop()
		return nil, net.ErrClosed
	}
	return s, nil
}

// newTransport starts a transport with cfg, defaults filled in, and o,
// checked.
func newTransport(cfg transports.Config, o options) (*Transport, error) {
	f := probed()
	if err := f.check(o); err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:  cfg,
		lim:  core.NewLimits(cfg),
		log:  core.Log{Name: "uring", Logger: cfg.Logger},
		opt:  o,
		feat: f,
		byID: map[uint32]*listener{},
		done: make(chan struct{}),
	}
	t.cond.L = &t.mu
	if o.park == ParkRuntime {
		set, err := t.startSet(max(cfg.Loops, 1), true)
		if err != nil {
			return nil, err
		}
		t.runtime.Store(set)
		return t, nil
	}
	set, err := t.startSet(max(cfg.Loops, 1), false)
	if err != nil {
		return nil, err
	}
	t.thread = set
	return t, nil
}

// Name returns "uring".
func (t *Transport) Name() string { return "uring" }

// Config returns the transport's configuration, defaults filled in.
func (t *Transport) Config() transports.Config { return t.cfg }

// Stats sums the loops' counters. Syscalls counts io_uring_enter calls
// and the few other system calls the loops make, and a runtime loop's
// parks in the netpoller, one each: a park is that loop's wait, as a
// waiting io_uring_enter is a thread loop's, made for it by the runtime's
// epoll_wait, which it cannot count (the conformance suite watches the
// counter to know that a transport waits again after an OnData). Extra
// adds io_uring's own counters, among them posted_wakeups (the wake-ups
// other goroutines made: eventfd writes to thread loops, pokes of runtime
// loops), setup_flags (the thread loops' rings; 0 with park=runtime), and
// runtime_loops and setup_flags_runtime once runtime loops have started.
func (t *Transport) Stats() transports.Stats {
	var s transports.Stats
	var sqes, cqes, enobufs, zc, zcCopy, cancels, sqFull, overflow, rawWaits, postedWakes, moves, inlineFull, inlineWakes uint64
	low := int64(-1)
	var stats []*loopStats
	t.eachLoop(func(l *loop) { stats = append(stats, l.stats) })
	for _, st := range stats {
		s = s.Add(st.Snapshot())
		sqes += st.sqes.Load()
		cqes += st.cqes.Load()
		enobufs += st.enobufs.Load()
		zc += st.zcSends.Load()
		zcCopy += st.zcCopy.Load()
		cancels += st.cancels.Load()
		sqFull += st.sqFull.Load()
		overflow += st.overflow.Load()
		rawWaits += st.rawWaits.Load()
		inlineFull += st.inlineFull.Load()
		inlineWakes += st.inlineWakes.Load()
		postedWakes += st.postedWakes.Load()
		moves += st.moves.Load()
		if b := st.bufLow.Load(); low < 0 || b < low {
			low = b
		}
	}
	perEnter := uint64(0)
	if s.Syscalls > 0 {
		perEnter = cqes * 1000 / s.Syscalls
	}
	var flags, rtFlags, rtLoops uint64
	if t.thread != nil {
		flags = uint64(ringFlags(t.feat, &t.opt, false) | setupCQSize)
	}
	if s := t.runtime.Load(); s != nil {
		rtFlags = uint64(ringFlags(t.feat, &t.opt, true) | setupCQSize)
		rtLoops = uint64(len(s.loops))
	}
	s.Extra = map[string]uint64{
		"submissions":          s.Syscalls,
		"sqes":                 sqes,
		"cqes":                 cqes,
		"cqes_per_enter_x1000": perEnter,
		"enobufs":              enobufs,
		"buf_low_water":        uint64(max(low, 0)),
		"zc_sends":             zc,
		"zc_copied":            zcCopy,
		"cancels":              cancels,
		"sq_full":              sqFull,
		"cq_overflow":          overflow,
		"raw_waits":            rawWaits,
		"inline_sends_full":    inlineFull,
		"inline_send_wakeups":  inlineWakes,
		"thread_moves":         moves,
		"posted_wakeups":       postedWakes,
		"setup_flags":          flags,
		"setup_flags_runtime":  rtFlags,
		"runtime_loops":        rtLoops,
		"buf_incremental":      t.bufInc.Load(),
	}
	return s
}

// inCallback reports whether the caller runs on one of t's loops, where
// every callback runs: the goroutine says it.
func (t *Transport) inCallback() bool {
	g := core.G()
	found := false
	t.eachLoop(func(l *loop) { found = found || l.g.Load() == g })
	return found
}

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// connAdd counts a new conn, unless t is closing.
func (t *Transport) connAdd() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.nconns++
	return true
}

// connDone counts a conn whose OnClose has returned (or a failed dial).
func (t *Transport) connDone() {
	t.mu.Lock()
	t.nconns--
	if t.nconns == 0 {
		t.cond.Broadcast()
	}
	t.mu.Unlock()
}

func (t *Transport) listenerByID(id uint32) *listener {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byID[id]
}

// forgetListener drops ln from byID: no descriptor can arrive for it any
// more.
func (t *Transport) forgetListener(ln *listener) {
	t.mu.Lock()
	if t.byID[ln.id] == ln {
		delete(t.byID, ln.id)
	}
	t.mu.Unlock()
}

// Listen listens on a tcp, tcp4, tcp6 or unix address.
func (t *Transport) Listen(network, address string, h transports.Handler) (transports.Listener, error) {
	if err := core.ListenError(network, t.isClosed()); err != nil {
		return nil, err
	}
	a, err := resolve(network, address)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	opErr := func(err error) error { return &net.OpError{Op: "listen", Net: network, Addr: a, Err: err} }
	sa, fam, err := sockaddrOf(network, a)
	if err != nil {
		return nil, opErr(err)
	}
	set, err := t.setFor(h)
	if err != nil {
		return nil, opErr(err)
	}
	reuse := t.opt.accept == AcceptReusePort && fam != unix.AF_UNIX && len(set.loops) > 1
	fd, err := t.listenSocket(network, sa, fam, reuse)
	if err != nil {
		return nil, opErr(err)
	}
	ln := &listener{t: t, set: set, h: h, network: network, family: fam, fds: []int{fd}, done: make(chan struct{})}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, opErr(err)
	}
	if fam == unix.AF_UNIX {
		name := a.(*net.UnixAddr).Name
		if !abstractUnix(name) {
			ln.path = name
		}
		ln.addr = &net.UnixAddr{Name: name, Net: "unix"}
		ln.local = ln.addr
	} else {
		ln.addr = sockaddrToAddr(network, bound)
		if ta := ln.addr.(*net.TCPAddr); !ta.IP.IsUnspecified() {
			ln.local = ln.addr
		}
	}
	if reuse {
		for range len(set.loops) - 1 {
			fd, err := t.listenSocket(network, bound, fam, true)
			if err != nil {
				for _, fd := range ln.fds {
					unix.Close(fd)
				}
				return nil, opErr(err)
			}
			ln.fds = append(ln.fds, fd)
		}
	}
	type place struct {
		l  *loop
		fd int
	}
	var places []place
	switch {
	case t.opt.accept == AcceptMsgRing:
		places = []place{{set.loops[0], fd}}
	case reuse:
		for i, l := range set.loops {
			places = append(places, place{l, ln.fds[i]})
		}
	default:
		for _, l := range set.loops {
			places = append(places, place{l, fd}) // exclusive wake-ups: one accept gets each connection
		}
	}
	ln.pending = len(places)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		for _, fd := range ln.fds {
			unix.Close(fd)
		}
		if ln.path != "" {
			unix.Unlink(ln.path)
		}
		return nil, opErr(net.ErrClosed)
	}
	t.nextID++
	ln.id = t.nextID
	t.byID[ln.id] = ln
	t.mu.Unlock()
	for _, p := range places {
		a := &acceptor{ln: ln, l: p.l, fd: p.fd}
		p.l.postTask(func() {
			l := a.l
			a.slot = uint32(len(l.acceptors))
			for i, x := range l.acceptors {
				if x == nil {
					a.slot = uint32(i)
					break
				}
			}
			if int(a.slot) == len(l.acceptors) {
				l.acceptors = append(l.acceptors, a)
			} else {
				l.acceptors[a.slot] = a
			}
			a.arm()
		})
	}
	return ln, nil
}

// Dial connects to address and returns once h.OnOpen has returned.
func (t *Transport) Dial(ctx context.Context, network, address string, h transports.Handler) (transports.Conn, error) {
	opErr := func(addr net.Addr, err error) error {
		return &net.OpError{Op: "dial", Net: network, Addr: addr, Err: err}
	}
	if t.inCallback() {
		return nil, opErr(nil, transports.ErrInCallback)
	}
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
	default:
		return nil, opErr(nil, net.UnknownNetworkError(network))
	}
	if t.isClosed() {
		return nil, opErr(nil, net.ErrClosed)
	}
	ra, err := resolve(network, address)
	if err != nil {
		return nil, opErr(nil, err)
	}
	set, err := t.setFor(h)
	if err != nil {
		return nil, opErr(ra, err)
	}
	sa, fam, err := sockaddrOf(network, ra)
	if err != nil {
		return nil, opErr(ra, err)
	}
	fd, err := socket(fam)
	if err != nil {
		return nil, opErr(ra, err)
	}
	if fam != unix.AF_UNIX && t.cfg.NoDelay.Or(true) {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	if !t.connAdd() {
		unix.Close(fd)
		return nil, opErr(ra, net.ErrClosed)
	}
	l := set.loops[int(set.rr.Add(1))%len(set.loops)]
	c := newConn(l, fd, network, h)
	c.raddr = ra
	d := &dialState{sa: rawSockaddr(sa), done: make(chan error, 1)}
	c.more().dial = d
	if testHookDialCounted != nil {
		testHookDialCounted()
	}
	l.postTask(func() {
		if l.stopping || t.isClosed() {
			// Close or Shutdown has begun, and its kill tasks may have
			// run here already, before c had a slot: a connect made now
			// would outlive them, and hold Close until the kernel gave
			// up on an address that never answers.
			unix.Close(fd)
			d.err = opErr(ra, net.ErrClosed)
			d.fail(c)
			return
		}
		l.addConn(c)
		s := l.sqe()
		s.OpCode = giouring.OpConnect
		s.Fd = int32(fd)
		s.Addr = uint64(uintptr(unsafe.Pointer(&d.sa[0])))
		s.Off = uint64(len(d.sa))
		s.UserData = mkUD(opConnect, 0, c.slot)
		c.inflight++
		d.connecting = true
	})
	stop := context.AfterFunc(ctx, func() {
		l.postTask(func() {
			if c.dialing() != nil && d.connecting {
				d.ctxErr = ctx.Err()
				l.cancel(mkUD(opConnect, 0, c.slot))
			}
		})
	})
	err = <-d.done
	stop()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// beginClose marks t closed; it reports whether this call was the first.
func (t *Transport) beginClose() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.closed = true
	return true
}

// closeListeners closes every listener and waits for them, and for those
// closed from a callback whose descriptors are still on their way.
func (t *Transport) closeListeners() {
	t.mu.Lock()
	var ls []*listener
	for _, ln := range t.byID {
		ls = append(ls, ln)
	}
	t.mu.Unlock()
	for _, ln := range ls {
		ln.Close()
	}
}

// eachConn runs f on every open conn, on its loop.
func (t *Transport) eachConn(f func(c *conn)) {
	t.eachLoop(func(l *loop) {
		l.postTask(func() {
			for _, c := range l.conns {
				if c != nil {
					f(c)
				}
			}
		})
	})
}

// waitConns waits until no conn is left, or ctx ends (it reports whether
// all are gone).
func (t *Transport) waitConns(ctx context.Context) bool {
	stop := context.AfterFunc(ctx, func() {
		t.mu.Lock()
		t.cond.Broadcast()
		t.mu.Unlock()
	})
	defer stop()
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.nconns > 0 && ctx.Err() == nil {
		t.cond.Wait()
	}
	return t.nconns == 0
}

// killAll aborts every conn with net.ErrClosed.
func (t *Transport) killAll() {
	t.eachConn(func(c *conn) {
		if c.kill(net.ErrClosed) {
			c.l.markDirty(c)
		}
	})
}

// stopLoops stops the loops of both sets once they are idle and waits
// for them. t is closed by now: no runtime set can start after it looks.
func (t *Transport) stopLoops() {
	t.rtMu.Lock() // a runtime set starting now is published, or stopped, first
	rt := t.runtime.Load()
	t.rtMu.Unlock()
	for _, s := range [...]*loopSet{t.thread, rt} {
		if s != nil {
			s.stop()
		}
	}
}

// Shutdown closes the listeners, asks every conn to finish (OnShutdown,
// or Close) and waits until all have closed or ctx ends; then it aborts
// the rest and returns ctx.Err().
func (t *Transport) Shutdown(ctx context.Context) error {
	if t.inCallback() {
		return transports.ErrInCallback
	}
	if !t.beginClose() {
		<-t.done
		return nil
	}
	t.closeListeners()
	t.eachConn(func(c *conn) {
		switch {
		case c.opened:
			c.requestShutdown()
		case c.dialing() != nil:
			// Its Dial would fail with net.ErrClosed once connected:
			// end it now rather than wait for the connect.
			if c.kill(net.ErrClosed) {
				c.l.markDirty(c)
			}
		}
	})
	var err error
	if !t.waitConns(ctx) {
		err = ctx.Err()
		t.killAll()
		t.waitConns(context.Background())
	}
	t.finishClose()
	return err
}

// Close closes the listeners and aborts every conn; their OnClose err
// matches net.ErrClosed.
func (t *Transport) Close() error {
	if t.inCallback() {
		return transports.ErrInCallback
	}
	if !t.beginClose() {
		t.killAll() // a Shutdown may be waiting: Close means now
		<-t.done
		return nil
	}
	t.closeListeners()
	t.killAll()
	if testHookCloseKilled != nil {
		testHookCloseKilled()
	}
	t.waitConns(context.Background())
	t.finishClose()
	return nil
}

// Test hooks, nil outside tests: testHookDialCounted runs in Dial once
// the dial counts as a conn, before its connect is posted to the loop;
// testHookCloseKilled runs in Close once it has posted its kill tasks.
var testHookDialCounted, testHookCloseKilled func()

func (t *Transport) finishClose() {
	t.stopLoops()
	t.mu.Lock()
	t.byID = map[uint32]*listener{}
	t.mu.Unlock()
	close(t.done)
}
