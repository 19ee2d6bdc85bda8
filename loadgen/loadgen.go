// Package loadgen is merlin's load generator: the same code behind
// `merlin load` and `merlin bench`.
//
// It drives the echo workload (every message carries its connection's index
// and a sequence number, then a seeded pattern shifted by both, so a
// dropped, repeated, reordered or cross-wired byte is caught with its
// offset) or plain HTTP/1.1 GETs with keep-alive (status, framing and body
// checked), in one of four modes: closed loop (Conns connections, Depth
// requests in flight each), open loop at a fixed offered Rate (wrk2's
// method: latency is measured from the time a request was meant to be
// sent, so a stalled server cannot hide its stall by slowing the client
// down), churn (connect, one exchange, close) and idle (hold Conns
// connections open). Latency goes into an HdrHistogram. The server is never
// trusted: all I/O has a deadline. With Config.TLS every connection is a
// crypto/tls client, its handshake done when it is dialed.
//
// A run dials, warms up for Config.Warmup, then measures for
// Config.Duration; only the measured window is counted in Result, and the
// generator's own CPU time over that window is reported beside it.
//
//	res, err := loadgen.Config{Addr: "127.0.0.1:7000", Conns: 64, Duration: 5 * time.Second}.Run(ctx)
package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config's fields.
const (
	DefaultNetwork   = "tcp"
	DefaultConns     = 1
	DefaultSize      = 64
	DefaultDepth     = 1
	DefaultDuration  = 10 * time.Second
	DefaultTimeout   = 10 * time.Second
	DefaultMaxErrors = 5
	DefaultHTTPPath  = "/plaintext"
)

// Workloads.
const (
	Echo = "echo" // echo: every byte comes back
	HTTP = "http" // HTTP/1.1 GET with keep-alive
)

// Engines.
const (
	EngineNet  = "net"
	EngineRing = "ring"
)

// EngineAvailable reports whether engine runs here, and if not, why.
func EngineAvailable(engine string) error {
	switch engine {
	case EngineNet:
		return nil
	case EngineRing:
		return ringAvailable()
	case EngineWrk:
		return wrkAvailable()
	}
	return fmt.Errorf("loadgen: unknown engine %q (want %s, %s or %s)", engine, EngineNet, EngineRing, EngineWrk)
}

// Modes.
const (
	Closed = "closed" // Conns connections, Depth requests in flight each (the default)
	Churn  = "churn"  // each of Conns workers: connect, one exchange, close, again
	Idle   = "idle"   // Conns connections, one exchange each, then held open
)

// Config describes one run. The zero value of a field means its default.
type Config struct {
	Network string // "tcp" (default), "tcp4", "tcp6" or "unix"
	Addr    string // the server's address; required
	// Workload is Echo (default) or HTTP.
	Workload string
	// Mode is Closed (default), Churn or Idle. A Rate makes a Closed run
	// open-loop.
	Mode  string
	Conns int // connections (workers in Churn); default 1
	Size  int // echo: bytes per message (http: per POST body of EchoPath); default 64
	// Depth is the number of requests written together: in a closed loop,
	// the requests in flight per connection; open-loop, the requests sent
	// at each scheduled time. Default 1.
	Depth int
	// Rate, if positive, runs open-loop: requests per second offered over
	// all connections, each connection sending its share on a fixed
	// schedule whatever the answers do. Latency is measured from each
	// request's scheduled time.
	Rate float64
	// Warmup is how long the load runs before the measured window; not
	// counted.
	Warmup time.Duration
	// Duration is the measured window; default 10 s. Requests in flight
	// when it ends are finished and checked, not counted.
	Duration time.Duration
	// Timeout bounds each dial and each exchange; a server slower than
	// that is an error. Default 10 s.
	Timeout time.Duration
	// Seed selects the payload pattern.
	Seed uint64
	// MaxErrors is how many error messages Result keeps (all are
	// counted). Default 5.
	MaxErrors int
	// HTTPPath is the path requested (default /plaintext); HTTPHost the
	// Host header (default the address). HTTPBody, if not nil, is the body
	// every response must have; if nil, TechEmpower's paths have theirs
	// checked (/plaintext: PlaintextBody; /json: JSONBody, or any JSON
	// encoding of the same object) and other paths may have any body.
	// HTTPPath EchoPath (without HTTPBody) makes each request a POST of
	// Size bytes, the echo workload's message, which must come back as
	// the response's body.
	HTTPPath, HTTPHost string
	HTTPBody           []byte
	// Dial makes the connections; nil means Go's net package. With
	// transports.DialNet it puts the client on any transport.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// TLS, if set, makes every connection a TLS client with this
	// configuration (on the connection Dial made), its handshake part of
	// dialing: before the load starts in the closed and open loops and
	// idle, inside each cycle in churn. Without a ServerName (and without
	// InsecureSkipVerify) the host of Addr is verified; the HTTP workload
	// offers ALPN http/1.1 unless NextProtos says otherwise. EngineNet
	// only.
	TLS *tls.Config
	// Engine is how the generator drives its connections: EngineNet
	// (default), a goroutine per connection on Go's net package (or
	// Dial), for every workload and mode; or EngineRing, every
	// connection from one thread through io_uring, busy-polling, for the
	// closed and open loops of both workloads, in the clear (Linux 6.1
	// and later), so that the generator is never what limits a server; or
	// EngineWrk, the wrk program, for the HTTP workload's closed loop. A
	// Dial and TLS apply to EngineNet only.
	Engine string
	// Progress, if set, is called about once a second from a goroutine of
	// Run with the totals so far.
	Progress func(Progress)
	// OnWindow, if set, is called when the measured window starts (start
	// true; nothing is counted yet) and when it ends (start false; nothing
	// more is counted), from Run's goroutine. A benchmark samples the
	// server there.
	OnWindow func(start bool)
}

// Progress is a snapshot of a run in progress.
type Progress struct {
	Elapsed   time.Duration // since the load started (after dialing)
	Measuring bool          // in the measured window (else warming up or draining)
	Requests  uint64        // requests completed and checked, warm-up included
	Bytes     uint64        // payload bytes checked, warm-up included
	Errors    uint64
}

// Result is the outcome of a run: what was completed in the measured
// window.
type Result struct {
	Config  Config        // the run's Config, defaults filled in
	Elapsed time.Duration // the measured window
	// Requests counts requests completed and checked in the window: echo
	// messages, HTTP responses, or in Churn connections (each a connect,
	// one exchange of Depth requests, and a close).
	Requests uint64
	// Bytes counts payload bytes checked in the window: echo, one
	// direction; HTTP, whole responses.
	Bytes uint64
	// Errors counts failed connections, over the whole run: a connection
	// stops at its first error (a failed dial, write or read, a mismatch, a
	// bad response), since its stream can no longer be trusted.
	Errors uint64
	// FirstErrors holds the first Config.MaxErrors errors.
	FirstErrors []error
	// Open is the number of connections open when the window ended.
	Open int
	// Handshakes counts the TLS handshakes completed (Config.TLS), over
	// the whole run.
	Handshakes uint64
	// Latency holds the latency of every request completed in the
	// window: from its scheduled send time when open-loop, from its
	// write otherwise (closed-loop latency suffers coordinated omission:
	// report it with care).
	Latency *Histogram
	// ClientUser and ClientSys are this process's CPU time over the
	// window.
	ClientUser, ClientSys time.Duration
}

// RequestsPerSecond returns the rate of checked requests.
func (r Result) RequestsPerSecond() float64 { return perSecond(r.Requests, r.Elapsed) }

// MBPerSecond returns the rate of checked payload, in 10⁶ bytes per second
// as Go benchmarks count.
func (r Result) MBPerSecond() float64 { return perSecond(r.Bytes, r.Elapsed) / 1e6 }

// ClientBusy returns the generator's CPU time over the window divided by
// the window: 1 is one core kept busy.
func (r Result) ClientBusy() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.ClientUser+r.ClientSys) / float64(r.Elapsed)
}

// OpenLoop reports whether the run was open-loop.
func (r Result) OpenLoop() bool { return r.Config.Rate > 0 && r.Config.Mode == Closed }

func perSecond(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Network == "" {
		c.Network = DefaultNetwork
	}
	if c.Workload == "" {
		c.Workload = Echo
	}
	if c.Mode == "" {
		c.Mode = Closed
	}
	if c.Engine == "" {
		c.Engine = EngineNet
	}
	if c.Conns == 0 {
		c.Conns = DefaultConns
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Depth == 0 {
		c.Depth = DefaultDepth
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxErrors == 0 {
		c.MaxErrors = DefaultMaxErrors
	}
	if c.HTTPPath == "" {
		c.HTTPPath = DefaultHTTPPath
	}
	if c.HTTPHost == "" {
		c.HTTPHost = c.Addr
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Addr == "":
		return errors.New("loadgen: no address")
	case c.Workload != Echo && c.Workload != HTTP:
		return fmt.Errorf("loadgen: unknown workload %q (want %s or %s)", c.Workload, Echo, HTTP)
	case c.Mode != Closed && c.Mode != Churn && c.Mode != Idle:
		return fmt.Errorf("loadgen: unknown mode %q (want %s, %s or %s)", c.Mode, Closed, Churn, Idle)
	case c.Conns < 0 || c.Size < 0 || c.Depth < 0:
		return fmt.Errorf("loadgen: negative conns (%d), size (%d) or depth (%d)", c.Conns, c.Size, c.Depth)
	case c.Depth > (1<<30)/c.Size:
		return fmt.Errorf("loadgen: a batch of %d x %d bytes is over 1 GiB", c.Depth, c.Size)
	case c.Duration < 0 || c.Timeout < 0 || c.Warmup < 0:
		return errors.New("loadgen: negative duration, warm-up or timeout")
	case c.Rate < 0:
		return errors.New("loadgen: negative rate")
	case c.Engine != EngineNet && c.Engine != EngineRing && c.Engine != EngineWrk:
		return fmt.Errorf("loadgen: unknown engine %q (want %s, %s or %s)", c.Engine, EngineNet, EngineRing, EngineWrk)
	case c.Engine == EngineWrk:
		return c.validateWrk()
	case c.Engine == EngineRing && c.Mode != Closed:
		return fmt.Errorf("loadgen: the %s engine runs closed and open loops, not %s", EngineRing, c.Mode)
	case c.Engine == EngineRing && c.TLS != nil:
		return fmt.Errorf("loadgen: the %s engine speaks in the clear: TLS applies to the %s engine", EngineRing, EngineNet)
	case c.Engine == EngineRing && c.Dial != nil:
		return fmt.Errorf("loadgen: the %s engine makes its own sockets: Dial applies to the %s engine", EngineRing, EngineNet)
	case c.Rate > 0 && c.Mode != Closed:
		return fmt.Errorf("loadgen: a rate applies to the closed mode (open loop), not to %s", c.Mode)
	case c.Rate > 0 && (c.Workload == Echo || c.HTTPPath == EchoPath) && c.Size*c.Depth > inlineWrite:
		return fmt.Errorf("loadgen: open-loop batches are limited to %d bytes", inlineWrite)
	}
	return nil
}

// Run runs the load and returns what was checked. Its error is only for an
// invalid Config; I/O errors and mismatches are in Result. Cancelling ctx
// ends the run early (the window then ends at once) and interrupts
// blocked I/O; that is not counted as an error.
func (c Config) Run(ctx context.Context) (Result, error) {
	c = c.withDefaults()
	if err := c.validate(); err != nil {
		return Result{}, err
	}
	if c.Engine == EngineWrk {
		return c.runWrk(ctx)
	}
	r := newRun(c)
	if r.cfg.Dial == nil {
		d := net.Dialer{Timeout: c.Timeout}
		r.cfg.Dial = d.DialContext
	}

	if c.Engine == EngineRing {
		if err := ringAvailable(); err != nil {
			return Result{}, err
		}
	}

	var wg sync.WaitGroup
	ready := make(chan struct{}, c.Conns)
	if c.Engine == EngineRing {
		wg.Go(func() {
			if err := r.runRing(ctx, ready); err != nil {
				r.fail(err)
			}
		})
	}
	for i := range c.Conns {
		if c.Engine == EngineRing {
			break
		}
		wg.Go(func() {
			var err error
			switch {
			case c.Mode == Churn:
				ready <- struct{}{}
				err = r.churn(ctx, i)
			case c.Mode == Idle:
				err = r.idle(ctx, i, ready)
			case c.Rate > 0:
				err = r.openLoop(ctx, i, ready)
			default:
				err = r.closedLoop(ctx, i, ready)
			}
			if err != nil {
				r.fail(err)
			}
		})
	}
	// Every worker says it is ready (dialed, or failed) before the load
	// starts, so that dialing is not measured.
	for range c.Conns {
		select {
		case <-ready:
		case <-ctx.Done():
		}
	}
	// Without a warm-up the window opens before the load starts, so that
	// its first requests are counted.
	var w window
	if c.Warmup <= 0 {
		w = r.openWindow()
	}
	r.startTime = time.Now() // the open loop's schedule starts here
	close(r.start)
	go func() {
		wg.Wait()
		close(r.workersDone)
	}()
	var pwg sync.WaitGroup
	done := make(chan struct{})
	if c.Progress != nil {
		pwg.Go(func() { r.report(done) })
	}
	if c.Warmup > 0 {
		r.sleep(ctx, c.Warmup)
		w = r.openWindow()
	}

	r.sleep(ctx, c.Duration)
	res := r.closeWindow(w)
	close(r.stop)
	<-r.workersDone
	close(done)
	pwg.Wait()

	res.Config = c
	res.Errors = r.errors.Load()
	res.Handshakes = r.handshakes.Load()
	r.mu.Lock()
	res.FirstErrors = r.first
	r.mu.Unlock()
	res.Latency = r.hist.merge()
	return res, nil
}

// window holds the counters at the start of the measured window.
type window struct {
	t0       time.Time
	u0, s0   time.Duration
	req0, b0 uint64
}

// openWindow starts the measured window.
func (r *run) openWindow() window {
	if r.cfg.OnWindow != nil {
		r.cfg.OnWindow(true)
	}
	var w window
	w.u0, w.s0 = cpuTime()
	w.t0 = time.Now()
	r.countMu.Lock()
	w.req0, w.b0 = r.requests.Load(), r.bytes.Load()
	r.measuring.Store(true)
	r.countMu.Unlock()
	return w
}

// closeWindow ends the measured window and returns what it counted.
func (r *run) closeWindow(w window) Result {
	r.countMu.Lock()
	r.measuring.Store(false)
	req1, b1 := r.requests.Load(), r.bytes.Load()
	r.countMu.Unlock()
	t1 := time.Now()
	u1, s1 := cpuTime()
	open := int(r.open.Load())
	if r.cfg.OnWindow != nil {
		r.cfg.OnWindow(false)
	}
	return Result{
		Elapsed:    t1.Sub(w.t0),
		Requests:   req1 - w.req0,
		Bytes:      b1 - w.b0,
		Open:       open,
		ClientUser: u1 - w.u0,
		ClientSys:  s1 - w.s0,
	}
}

// sleep waits for d, or until ctx ends or every worker has stopped (all
// failed).
func (r *run) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-r.workersDone:
	}
}

// run is the shared state of one Run.
type run struct {
	cfg   Config
	proto protocol
	tls   *tls.Config   // Config.TLS completed by clientTLS; nil in the clear
	start chan struct{} // closed when the load starts
	stop  chan struct{} // closed when the window has ended
	// workersDone is closed once every worker has returned.
	workersDone chan struct{}

	startTime time.Time // set before start is closed

	requests, bytes, errors atomic.Uint64
	// countMu makes a completion's requests, bytes and whether its
	// latency is recorded one step for the window's edges, which read the
	// pair and flip measuring as of the same moment.
	countMu    sync.Mutex
	handshakes atomic.Uint64
	open       atomic.Int64
	measuring  atomic.Bool
	hist       *shardedHist

	mu    sync.Mutex
	first []error // guarded by mu
}

func newRun(c Config) *run {
	r := &run{
		cfg:         c,
		start:       make(chan struct{}),
		stop:        make(chan struct{}),
		workersDone: make(chan struct{}),
		hist:        newShardedHist(min(c.Conns, 16)),
	}
	if c.TLS != nil {
		r.tls = clientTLS(c)
	}
	if c.Workload == HTTP {
		r.proto = newHTTPProto(c)
	} else {
		r.proto = &echoProto{size: c.Size, pattern: newPattern(c.Seed, c.Size)}
	}
	return r
}

// done counts n requests of b bytes completed, and their latency.
func (r *run) done(conn int, n int, b int, lat time.Duration) {
	r.countMu.Lock()
	r.requests.Add(uint64(n))
	r.bytes.Add(uint64(b))
	measured := r.measuring.Load()
	r.countMu.Unlock()
	// Recorded after the lock: the histograms are merged only once every
	// worker has returned.
	if measured {
		r.hist.record(conn, lat, n)
	}
}

// ended reports whether the window has ended (or the caller cancelled).
func (r *run) ended(ctx context.Context) bool {
	select {
	case <-r.stop:
		return true
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

func (r *run) fail(err error) {
	r.errors.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.first) < r.cfg.MaxErrors {
		r.first = append(r.first, err)
	}
}

// report calls Config.Progress once a second until done is closed.
func (r *run) report(done <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			r.cfg.Progress(Progress{
				Elapsed:   time.Since(r.startTime),
				Measuring: r.measuring.Load(),
				Requests:  r.requests.Load(),
				Bytes:     r.bytes.Load(),
				Errors:    r.errors.Load(),
			})
		}
	}
}

// clientTLS returns c.TLS completed: the host of c.Addr as the name to
// verify if none is given, and ALPN http/1.1 for the HTTP workload.
func clientTLS(c Config) *tls.Config {
	t := c.TLS.Clone()
	if t.ServerName == "" && !t.InsecureSkipVerify {
		t.ServerName = "localhost" // a unix socket's path is no host
		if host, _, err := net.SplitHostPort(c.Addr); err == nil {
			t.ServerName = host
		}
	}
	if c.Workload == HTTP && t.NextProtos == nil {
		t.NextProtos = []string{"http/1.1"}
	}
	return t
}

// dial connects worker i, and shakes hands over TLS if the run is, with
// a deadline-bounded context.
func (r *run) dial(ctx context.Context, i int) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	c, err := r.cfg.Dial(dctx, r.cfg.Network, r.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("loadgen: conn %d: %w", i, err)
	}
	if r.tls != nil {
		tc := tls.Client(c, r.tls)
		err := tc.HandshakeContext(dctx)
		if err == nil && !tc.ConnectionState().HandshakeComplete {
			err = errors.New("handshake incomplete")
		}
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("loadgen: conn %d: TLS handshake: %w", i, err)
		}
		r.handshakes.Add(1)
		c = tc
	}
	r.open.Add(1)
	return c, nil
}

// hangUp closes c, which dial opened.
func (r *run) hangUp(c net.Conn) {
	c.Close()
	r.open.Add(-1)
}

// waitStart waits for the load to start; false if ctx ended first.
func (r *run) waitStart(ctx context.Context) bool {
	select {
	case <-r.start:
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}

// interruptOnCancel makes cancelling ctx interrupt c's blocked I/O; call
// the result to stop.
func interruptOnCancel(ctx context.Context, c net.Conn) func() bool {
	return context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
}
