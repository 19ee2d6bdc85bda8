package sockets

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/merlin-net/merlin/internal/core"
	"github.com/merlin-net/merlin/transports"
)

func init() {
	transports.Register(transports.Driver{
		Name:       "sockets",
		Summary:    "Go's net package: a goroutine per connection, the runtime's poller underneath",
		Ignores:    []string{"loops"},
		Preference: 10,
		Probe:      func() (string, error) { return "Go " + runtime.Version() + " net package", nil },
		New: func(cfg transports.Config, _ transports.Settings) (transports.Transport, error) {
			t, err := New(cfg, Options{})
			if err != nil {
				return nil, err // not a nil *Transport in a non-nil interface
			}
			return t, nil
		},
	})
}

// Transport is the sockets transport. Make one with New or with
// transports.Open("sockets", cfg).
type Transport struct {
	cfg transports.Config
	lim core.Limits // the time limits of cfg
	log core.Log
	// stats are shards of the counters: each connection's goroutine adds
	// to its own shard (conn.st), so that connections on different CPUs
	// do not contend for one cache line on every read and write; Stats
	// sums them. Listeners and Dial count in shard 0.
	stats     [statShards]transports.Counters
	nextShard atomic.Uint32

	mu        sync.Mutex
	cond      *sync.Cond // signalled when conns empties
	closed    bool       // Shutdown or Close has begun: no new listeners or conns
	listeners map[*listener]struct{}
	conns     map[*conn]struct{}
	// loops holds the goroutine ids of the connections' goroutines, the
	// only ones that run callbacks; see inCallback.
	loops map[uint64]struct{}
	done  chan struct{} // closed once Shutdown or Close has finished
	// wg counts the goroutines t started and the Dials in flight (whose
	// sockets t opened).
	wg sync.WaitGroup

	// stopDials cancels closing, which ends every Dial still connecting,
	// when Shutdown or Close begins.
	closing   context.Context
	stopDials context.CancelFunc
}

var _ transports.Transport = (*Transport)(nil)

// Options are the transport's own settings, beyond transports.Config:
// it has none, as Go's net package decides the rest. The type keeps
// every transport's constructor the same shape.
type Options struct{}

// New returns a Transport with cfg (zero fields take their defaults).
func New(cfg transports.Config, _ Options) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	t := &Transport{
		cfg:       cfg,
		lim:       core.NewLimits(cfg),
		log:       core.Log{Name: "sockets", Logger: cfg.Logger},
		listeners: map[*listener]struct{}{},
		conns:     map[*conn]struct{}{},
		loops:     map[uint64]struct{}{},
		done:      make(chan struct{}),
	}
	t.cond = sync.NewCond(&t.mu)
	t.closing, t.stopDials = context.WithCancel(context.Background())
	return t, nil
}

// Name returns "sockets".
func (t *Transport) Name() string { return "sockets" }

// Config returns the transport's configuration, defaults filled in.
func (t *Transport) Config() transports.Config { return t.cfg }

// Stats returns the transport's counters. Wakeups and Events count the
// times a connection's goroutine found its socket readable after waiting.
func (t *Transport) Stats() transports.Stats {
	var s transports.Stats
	for i := range t.stats {
		s = s.Add(t.stats[i].Snapshot())
	}
	return s
}

// statShards is how many shards of counters a Transport keeps: connections
// share one only beyond this many.
const statShards = 64

// Listen listens on a tcp, tcp4, tcp6 or unix address and serves every
// connection accepted there with h.
func (t *Transport) Listen(network, address string, h transports.Handler) (transports.Listener, error) {
	if err := core.ListenError(network, t.isClosed()); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	lc.SetMultipathTCP(false) // plain TCP, as every transport (DESIGN.md)
	nl, err := lc.Listen(context.Background(), network, address)
	if err != nil {
		return nil, err
	}
	l := &listener{t: t, nl: nl, h: h, network: network, stop: make(chan struct{})}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		nl.Close()
		return nil, &net.OpError{Op: "listen", Net: network, Addr: nl.Addr(), Err: net.ErrClosed}
	}
	t.listeners[l] = struct{}{}
	t.wg.Add(1)
	t.mu.Unlock()
	go l.acceptLoop()
	return l, nil
}

// Dial connects to address and returns once h.OnOpen has returned.
func (t *Transport) Dial(ctx context.Context, network, address string, h transports.Handler) (transports.Conn, error) {
	if t.inCallback() {
		return nil, &net.OpError{Op: "dial", Net: network, Err: transports.ErrInCallback}
	}
	// The dial counts in t.wg until its socket is a conn or closed, and
	// Shutdown or Close ends it: they return only once every descriptor
	// t opened is closed, and a connect to an address that never answers
	// would hold them for the kernel's SYN timeout.
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.ErrClosed}
	}
	t.wg.Add(1)
	t.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(t.closing, cancel)
	var d net.Dialer
	d.SetMultipathTCP(false)
	nc, err := d.DialContext(ctx, network, address)
	stop()
	cancel()
	if err != nil {
		t.wg.Done()
		if t.closing.Err() != nil {
			oe := &net.OpError{Op: "dial", Net: network, Err: net.ErrClosed}
			if e, ok := err.(*net.OpError); ok {
				oe.Addr = e.Addr
			}
			return nil, oe
		}
		return nil, err
	}
	c, err := t.start(nc, network, h, &t.stats[0].Dialed)
	t.wg.Done()
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: nc.RemoteAddr(), Err: err}
	}
	<-c.opened
	return c, nil
}

// start registers nc and starts its goroutine, which calls OnOpen first.
func (t *Transport) start(nc net.Conn, network string, h transports.Handler, counter interface{ Add(uint64) uint64 }) (*conn, error) {
	if tc, ok := nc.(*net.TCPConn); ok && !t.cfg.NoDelay.Or(true) {
		tc.SetNoDelay(false) // Go sets TCP_NODELAY on every TCP conn
	}
	c, err := newConn(t, nc, network, h)
	if err != nil {
		nc.Close()
		return nil, err
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		nc.Close()
		return nil, net.ErrClosed
	}
	t.conns[c] = struct{}{}
	t.wg.Add(1)
	t.mu.Unlock()
	counter.Add(1)
	go c.run()
	return c, nil
}

// removeConn forgets c once its OnClose has returned. It counts c closed
// first, so that Shutdown, woken by the broadcast, finds nothing open in
// Stats.
func (t *Transport) removeConn(c *conn) {
	c.st.Closed.Add(1)
	t.mu.Lock()
	delete(t.conns, c)
	if len(t.conns) == 0 {
		t.cond.Broadcast()
	}
	t.mu.Unlock()
}

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// Shutdown closes the listeners, asks every connection to finish
// (OnShutdown, or Close) and waits until all have closed or ctx ends; then
// it aborts the rest and returns ctx.Err().
func (t *Transport) Shutdown(ctx context.Context) error {
	if t.inCallback() {
		return transports.ErrInCallback
	}
	conns, first := t.beginClose()
	if !first {
		<-t.done
		return nil
	}
	for _, c := range conns {
		c.requestShutdown()
	}
	// Wait for the conns to close, or for ctx; a goroutine turns ctx's end
	// into a broadcast on t.cond.
	stop := context.AfterFunc(ctx, func() {
		t.mu.Lock()
		t.cond.Broadcast()
		t.mu.Unlock()
	})
	t.mu.Lock()
	for len(t.conns) > 0 && ctx.Err() == nil {
		t.cond.Wait()
	}
	rest := t.connList()
	t.mu.Unlock()
	stop()
	var err error
	if len(rest) > 0 {
		err = ctx.Err()
		for _, c := range rest {
			c.kill(net.ErrClosed)
		}
	}
	t.finishClose()
	return err
}

// Close closes the listeners and aborts every connection; their OnClose
// err matches net.ErrClosed.
func (t *Transport) Close() error {
	if t.inCallback() {
		return transports.ErrInCallback
	}
	conns, first := t.beginClose()
	if !first {
		// A Shutdown may be waiting: Close means now.
		t.mu.Lock()
		conns = t.connList()
		t.mu.Unlock()
	}
	for _, c := range conns {
		c.kill(net.ErrClosed)
	}
	if first {
		t.finishClose()
	}
	<-t.done
	return nil
}

// beginClose marks t closed and closes its listeners. It returns the open
// conns, and whether this call was the first.
func (t *Transport) beginClose() ([]*conn, bool) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, false
	}
	t.closed = true
	t.stopDials()
	var ls []*listener
	for l := range t.listeners {
		ls = append(ls, l)
	}
	t.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.connList(), true
}

// finishClose waits for every goroutine of t, then releases waiters.
func (t *Transport) finishClose() {
	t.wg.Wait()
	close(t.done)
}

func (t *Transport) connList() []*conn {
	cs := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		cs = append(cs, c)
	}
	return cs
}

// inCallback reports whether the calling goroutine is one of t's
// connection goroutines, which is where every callback runs.
func (t *Transport) inCallback() bool {
	id := core.GoID()
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.loops[id]
	return ok
}

func (t *Transport) addLoop(id uint64) {
	t.mu.Lock()
	t.loops[id] = struct{}{}
	t.mu.Unlock()
}

func (t *Transport) removeLoop(id uint64) {
	t.mu.Lock()
	delete(t.loops, id)
	t.mu.Unlock()
}

// listener is one listening socket and its accept goroutine.
type listener struct {
	t       *Transport
	nl      net.Listener
	h       transports.Handler
	network string

	once sync.Once
	stop chan struct{} // closed by Close, ends a back-off wait
}

func (l *listener) Addr() net.Addr { return l.nl.Addr() }

// Done is closed once l is (transports.DoneListener).
func (l *listener) Done() <-chan struct{} { return l.stop }

// Close stops accepting; connections already accepted go on.
func (l *listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		err = l.nl.Close()
		l.t.mu.Lock()
		delete(l.t.listeners, l)
		l.t.mu.Unlock()
	})
	return err
}

// acceptLoop accepts until the listener is closed. No accept error ends
// it: core.Backoff says which retry at once and which back off.
func (l *listener) acceptLoop() {
	defer l.t.wg.Done()
	st := &l.t.stats[0]
	var backoff core.Backoff
	for {
		nc, err := l.nl.Accept()
		st.Syscalls.Add(1)
		if err == nil {
			backoff.Accepted()
			if _, err := l.t.start(nc, l.network, l.h, &st.Accepted); err != nil && !errors.Is(err, net.ErrClosed) {
				l.t.cfg.Logger.Warn("sockets: dropping accepted connection", "err", err)
			}
			continue
		}
		select {
		case <-l.stop:
			return
		default:
		}
		st.AcceptErrors.Add(1)
		wait, log := backoff.Failed(err)
		if log {
			l.t.cfg.Logger.Error("sockets: accept", "addr", l.nl.Addr(), "err", err)
		}
		if wait == 0 {
			continue
		}
		timer := time.NewTimer(wait)
		select {
		case <-l.stop:
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}
