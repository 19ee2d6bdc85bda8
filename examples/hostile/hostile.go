// Package hostile is a transport written outside merlin, against its
// public packages only: it wraps another transport and makes its timing
// hostile, to test applications against what a network may do. Input is
// offered in pieces cut at random (OnData sees a prefix, and the rest
// once the prefix is consumed), every Write is cut into random pieces
// before it reaches the inner transport, and callbacks may be held back
// a random while. Everything else is the inner transport's.
//
// It registers itself as "hostile" (keys: inner, seed, delay), so that
// `merlin` binaries that import it serve it and bench it, and the
// conformance suite runs on it:
//
//	t, err := transports.Open("hostile:inner=uring,delay=200us", transports.Config{})
package hostile

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/merlin-net/merlin/transports"
)

func init() {
	transports.Register(transports.Driver{
		Name:    "hostile",
		Summary: "another transport with hostile timing: input offered in random pieces, writes cut up, callbacks delayed",
		Options: []transports.Option{
			{Key: "inner", Kind: transports.Enum, Default: "sockets", Values: []string{"sockets", "libuvlike", "uring"},
				Help: "the transport underneath"},
			{Key: "seed", Kind: transports.Int, Default: "1", Help: "seed of the random cuts and delays"},
			{Key: "delay", Kind: transports.Duration, Default: "0", Help: "callbacks are held back up to this long, one in four"},
		},
		Probe: func() (string, error) { return "a wrapper: it runs where its inner transport does", nil },
		New: func(cfg transports.Config, s transports.Settings) (transports.Transport, error) {
			t, err := New(cfg, Options{Inner: s.String("inner"), Seed: uint64(s.Int("seed")), Delay: s.Duration("delay")})
			if err != nil {
				return nil, err
			}
			return t, nil
		},
	})
}

// Options are the transport's own settings.
type Options struct {
	// Inner is the spec of the transport underneath. Default "sockets".
	Inner string
	// Seed seeds the random cuts and delays; each connection draws its
	// own stream from it.
	Seed uint64
	// Delay, if positive, holds one callback in four back for a random
	// time up to it.
	Delay time.Duration
}

// Transport is the hostile transport.
type Transport struct {
	inner transports.Transport
	opt   Options
	conns atomic.Uint64 // connections made: each one's random stream
}

// New opens opt.Inner with cfg and wraps it.
func New(cfg transports.Config, opt Options) (*Transport, error) {
	if opt.Inner == "" {
		opt.Inner = "sockets"
	}
	if opt.Delay < 0 {
		return nil, fmt.Errorf("hostile: negative delay %v", opt.Delay)
	}
	inner, err := transports.Open(opt.Inner, cfg)
	if err != nil {
		return nil, fmt.Errorf("hostile: inner transport: %w", err)
	}
	return &Transport{inner: inner, opt: opt}, nil
}

func (t *Transport) Name() string                       { return "hostile" }
func (t *Transport) Config() transports.Config          { return t.inner.Config() }
func (t *Transport) Stats() transports.Stats            { return t.inner.Stats() }
func (t *Transport) Shutdown(ctx context.Context) error { return t.inner.Shutdown(ctx) }
func (t *Transport) Close() error                       { return t.inner.Close() }

// Listen listens on the inner transport, with h behind the wrapper.
func (t *Transport) Listen(network, address string, h transports.Handler) (transports.Listener, error) {
	return t.inner.Listen(network, address, t.wrap(h))
}

// Dial dials through the inner transport and returns the wrapper's Conn,
// which OnOpen received.
func (t *Transport) Dial(ctx context.Context, network, address string, h transports.Handler) (transports.Conn, error) {
	c, err := t.inner.Dial(ctx, network, address, t.wrap(h))
	if err != nil {
		return nil, err
	}
	return c.Context().(*conn), nil // set by OnOpen, which has returned
}

func (t *Transport) wrap(h transports.Handler) *handler {
	w := &handler{t: t, h: h}
	w.onEOF, _ = h.(transports.ReadEOFHandler)
	w.onDrain, _ = h.(transports.DrainHandler)
	w.onShut, _ = h.(transports.ShutdownHandler)
	w.onTimer, _ = h.(transports.TimerHandler)
	if d, ok := h.(transports.FullDuplexHandler); ok {
		w.duplex = d.FullDuplex()
	}
	if o, ok := h.(transports.HandoffHandler); ok {
		w.handoff = o.Handoff()
	}
	return w
}

// handler is the inner transport's application: it runs the real one's
// callbacks on the wrapper's Conn, which it keeps in the inner Conn's
// Context. It implements every optional ability, doing what the inner
// transport would where the real handler lacks one.
type handler struct {
	t       *Transport
	h       transports.Handler
	onEOF   transports.ReadEOFHandler
	onDrain transports.DrainHandler
	onShut  transports.ShutdownHandler
	onTimer transports.TimerHandler
	duplex  bool
	handoff bool
}

func (w *handler) OnOpen(c transports.Conn) {
	n := w.t.conns.Add(1)
	wc := &conn{Conn: c, rng: rand.New(rand.NewPCG(w.t.opt.Seed, n)), delay: w.t.opt.Delay,
		maxWrite: w.t.inner.Config().MaxWriteBuffer, maxRead: w.t.inner.Config().MaxReadBuffer, duplex: w.duplex}
	wc.wseq.Store(n << 32)
	c.SetContext(wc)
	wc.hold()
	w.h.OnOpen(wc)
}

// OnData offers in to the real handler in pieces, as if the bytes had
// come in a few reads: first what it kept last time (the contract: in
// begins with every byte kept) and a random part of what it has not
// seen, then on from where it stopped while it consumes all it is
// offered. Where it consumes less than a piece that was not all of in,
// it is offered the rest at once: it must never wait for bytes that have
// already come.
func (w *handler) OnData(c transports.Conn, in []byte) int {
	wc := c.Context().(*conn)
	off, whole := 0, false
	for off < len(in) && wc.reading() {
		end := len(in)
		if !whole && wc.shown < end {
			// What is left unseen stays with the inner transport if the
			// handler pauses now, counted there with what the handler
			// keeps against MaxReadBuffer: at most half of it.
			lo := max(wc.shown, len(in)-wc.maxRead/2-1)
			end = lo + 1 + wc.rng.IntN(len(in)-lo)
		}
		wc.hold()
		n := w.h.OnData(wc, in[off:end])
		if n < 0 || n > end-off {
			wc.shown = 0
			return -1 // out of range: the inner transport aborts c
		}
		off += n
		wc.shown = max(end, wc.shown)
		if off < end {
			if end == len(in) {
				break // it has seen everything and wants more
			}
			whole = true
		}
	}
	wc.shown -= min(off, wc.shown) // of what the inner transport keeps
	return off
}

func (w *handler) OnClose(c transports.Conn, err error) {
	wc := c.Context().(*conn)
	wc.hold()
	w.h.OnClose(wc, err)
}

func (w *handler) OnReadEOF(c transports.Conn) {
	wc := c.Context().(*conn)
	if w.onEOF == nil {
		wc.Close() // what the inner transport does without OnReadEOF
		return
	}
	wc.hold()
	w.onEOF.OnReadEOF(wc)
}

func (w *handler) OnDrain(c transports.Conn) {
	if w.onDrain != nil {
		wc := c.Context().(*conn)
		wc.hold()
		w.onDrain.OnDrain(wc)
	}
}

func (w *handler) OnShutdown(c transports.Conn) {
	wc := c.Context().(*conn)
	if w.onShut == nil {
		wc.Close() // what the inner transport does without OnShutdown
		return
	}
	wc.hold()
	w.onShut.OnShutdown(wc)
}

func (w *handler) OnTimer(c transports.Conn) {
	if w.onTimer != nil {
		wc := c.Context().(*conn)
		wc.hold()
		w.onTimer.OnTimer(wc)
	}
}

func (w *handler) FullDuplex() bool { return w.duplex }

// Handoff passes on what the real handler asks of the inner transport's
// loops.
func (w *handler) Handoff() bool { return w.handoff }

// conn is the Conn the real handler sees: the inner one, with Write cut
// up and its own Context.
type conn struct {
	transports.Conn
	ctx any // the real handler's Context

	// Owned by the callbacks (serialised by the inner transport).
	rng   *rand.Rand
	delay time.Duration
	shown int // leading bytes of the inner transport's kept input the handler has been offered

	maxWrite int  // the inner transport's MaxWriteBuffer
	maxRead  int  // and its MaxReadBuffer
	duplex   bool // the real handler is a FullDuplexHandler

	// paused and closed are set before PauseRead, or Close or Abort,
	// reach the inner Conn (ResumeRead clears paused): OnData offers no
	// further piece once they have returned.
	paused, closed atomic.Bool
	// wseq seeds the cuts of each Write, which any goroutine may make;
	// wmu keeps one Write's pieces together, as one Write is.
	wseq atomic.Uint64
	wmu  sync.Mutex
}

// reading reports whether OnData may offer another piece: as the inner
// transport would start another OnData, not after PauseRead, Close or
// Abort, nor with output at MaxWriteBuffer unless full duplex.
func (c *conn) reading() bool {
	return !c.paused.Load() && !c.closed.Load() && (c.duplex || c.Conn.OutboundBuffered() < c.maxWrite)
}

func (c *conn) Context() any     { return c.ctx }
func (c *conn) SetContext(v any) { c.ctx = v }

// hold holds a callback back, one in four, up to the delay.
func (c *conn) hold() {
	if c.delay > 0 && c.rng.IntN(4) == 0 {
		time.Sleep(time.Duration(c.rng.Int64N(int64(c.delay))))
	}
}

// Write hands p to the inner Conn in random pieces, each a Write of its
// own. It takes all of p or none, as one Write does: Close, Abort and
// CloseWrite wait for it (see Close), and where the connection ends
// abortively after some pieces (a reset, a limit, the transport's
// Close), the Write is ordered before the end: it returns len(p), and
// its bytes are lost with the rest of the output, as any Write's that
// the end found queued.
func (c *conn) Write(p []byte) (int, error) {
	r := rand.New(rand.NewPCG(c.wseq.Add(1), uint64(len(p))))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	done := 0
	for done < len(p) || len(p) == 0 {
		k := len(p) - done
		if k > 1 {
			k = 1 + r.IntN(k)
		}
		n, err := c.Conn.Write(p[done : done+k])
		done += n
		switch {
		case err != nil && done > 0 && errors.Is(err, net.ErrClosed):
			return len(p), nil
		case err != nil || len(p) == 0:
			return done, err
		}
	}
	return done, nil
}

// SetTimer sets the inner Conn's timer: its OnTimer comes to the real
// handler through the wrapper's. The inner Conn of every transport
// hostile wraps in this repository is a TimerConn; of one that is not,
// the timer never runs out (and the conformance suite says so).
func (c *conn) SetTimer(d time.Duration) {
	if tc, ok := c.Conn.(transports.TimerConn); ok {
		tc.SetTimer(d)
	}
}

func (c *conn) PauseRead() {
	c.paused.Store(true)
	c.Conn.PauseRead()
}

func (c *conn) ResumeRead() {
	c.paused.Store(false)
	c.Conn.ResumeRead()
}

// CloseWrite, Close and Abort wait for a Write under way: one cut into
// pieces must not fail half-way, having written some, where the inner
// Write would have taken all or nothing.
func (c *conn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.Conn.CloseWrite()
}

func (c *conn) Close() error {
	c.closed.Store(true)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.Conn.Close()
}

func (c *conn) Abort() error {
	c.closed.Store(true)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.Conn.Abort()
}
