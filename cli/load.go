package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/merlin-net/merlin/bench"
	"github.com/merlin-net/merlin/internal/procstat"
	"github.com/merlin-net/merlin/loadgen"
	"github.com/merlin-net/merlin/transports"
)

const loadSynopsis = `Usage: merlin load [flags]
       merlin load -check ADDR [-network NET]

load drives a server and checks every response. With -app echo, each
message carries its connection and sequence number and every echoed byte
is compared; with -app http, each request is a keep-alive HTTP/1.1 GET of
-path whose response must be 200 (and have -body, if given).

Modes:
  closed (default)  -conns connections, each writing -depth requests in one
                    write, reading every response, and starting again.
  open loop         -rate R: R requests per second offered over all
                    connections on a fixed schedule, whatever the server
                    does (wrk2's method); latency is measured from each
                    request's scheduled time, so a stall shows in the
                    percentiles instead of slowing the client down.
  -mode churn       each of -conns workers connects, makes one exchange of
                    -depth requests, closes, and again; a request is one
                    connection.
  -mode idle        -conns connections make one exchange each and are held
                    open for -duration.

The load runs -warmup, then is measured for -duration. It prints
requests/s, MB/s (payload checked, 10^6 bytes), errors, latency
percentiles (p50, p99, p99.9: open loop only, since a closed loop's
latency hides stalls), its own CPU time, and with -pid the server's CPU
time over the same window; a closed-loop run whose server was under 90%
busy is labelled client-bound (the figure is the client's). It ends with the same
in Go benchmark format, for benchstat:

	BenchmarkLoad/app=echo/conns=64/size=64/depth=1 N ns/op X req/s Y MB/s Z errors ...

With -transport SPEC the generator's connections are made through that
transport (transports.DialNet) instead of Go's net package.

-check ADDR grades an echo server from outside, by the conformance suite's
rules: integrity under pipelining, large messages, half-close, resets,
slow readers, many connections. It prints one line per check and exits 1
if any failed.

It exits 1 if any connection failed or any byte differed (the first
errors are printed), 2 on a usage error. SIGINT or SIGTERM ends the run
early.

Examples:

	merlin load -addr 127.0.0.1:7000 -conns 64 -size 4k -depth 16 -duration 5s
	merlin load -addr 127.0.0.1:7000 -conns 16 -rate 20000 -duration 10s
	merlin load -check 127.0.0.1:7000
`

// load is "merlin load".
func load(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("load", loadSynopsis)
	var a loadArgs
	a.register(fs)
	if status, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return status
	}
	if err := checkNetwork(a.network); err != nil {
		return usageError(fs, stderr, "%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if a.check != "" {
		return runCheck(ctx, a.network, a.check, a.cfg.Timeout, bench.SplitList(a.checks), stdout, stderr)
	}
	if err := a.finish(); err != nil {
		return usageError(fs, stderr, "%v", err)
	}
	if a.cfg.Workload != loadgen.Echo && a.cfg.Workload != loadgen.HTTP {
		return fail(stderr, "load", fmt.Errorf("unknown app %q (load drives: echo, http)", a.cfg.Workload))
	}
	closeClient, err := a.dialer()
	if err != nil {
		return fail(stderr, "load", err)
	}
	defer closeClient()
	var srv serverWindow
	if a.pid > 0 {
		if _, err := procstat.Read(a.pid); err != nil {
			return fail(stderr, "load", fmt.Errorf("-pid %d: %w", a.pid, err))
		}
		a.cfg.OnWindow = srv.sampler(a.pid)
	}
	if isTerminal(stdout) && !a.json {
		a.cfg.Progress = progressLines(stdout)
	}
	res, err := a.cfg.Run(ctx)
	if err != nil {
		return fail(stderr, "load", err)
	}
	return a.report(res, srv, stdout, stderr)
}

// loadArgs are merlin load's flags; most go straight into cfg.
type loadArgs struct {
	cfg           loadgen.Config
	network       string // cfg's, checked
	size, body    string
	spec          string
	pid           int
	check, checks string
	json          bool
}

func (a *loadArgs) register(fs *flag.FlagSet) {
	c := &a.cfg
	fs.StringVar(&c.Workload, "app", "echo", "workload: echo, or http (GET with keep-alive)")
	fs.StringVar(&c.Mode, "mode", "closed", "`mode`: closed (open loop with -rate), churn or idle")
	fs.StringVar(&a.network, "network", "tcp", "`network`: tcp, tcp4, tcp6 or unix")
	fs.StringVar(&c.Addr, "addr", "", "server `address`: host:port (default "+defaultAddr+"), or for unix a socket path (required)")
	fs.IntVar(&c.Conns, "conns", 64, "concurrent connections (workers for churn)")
	fs.StringVar(&a.size, "size", "64", "echo message `size` in bytes (k and m suffixes: 4k)")
	fs.IntVar(&c.Depth, "depth", 1, "requests per write (pipelining depth)")
	fs.Float64Var(&c.Rate, "rate", 0, "open loop: requests per second offered over all connections (0: closed loop)")
	fs.DurationVar(&c.Warmup, "warmup", 0, "how long to run before measuring")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "the measured window (requests in flight when it ends are finished, not counted)")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "bound on each dial and each exchange")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed of the payload pattern")
	fs.StringVar(&c.HTTPPath, "path", loadgen.DefaultHTTPPath, "http: the path requested")
	fs.StringVar(&a.body, "body", "", "http: the body every response must have (default: TechEmpower's for /plaintext and /json, the request's for /echo, any elsewhere)")
	fs.StringVar(&a.spec, "transport", "net", "the client's transport `spec`: net (Go's net package) or a transport (see \"merlin transports\")")
	fs.StringVar(&c.Engine, "engine", loadgen.EngineNet, "how the generator drives its connections: net (a goroutine each, any workload), ring (one thread through io_uring, busy-polling: echo and http in the clear, closed and open loops; never the bottleneck) or wrk (the wrk program, one thread: http's closed loop, whole seconds, statuses checked and bodies not)")
	fs.IntVar(&a.pid, "pid", 0, "the server's process `id`: report its CPU time over the window, and whether the run was client-bound")
	fs.StringVar(&a.check, "check", "", "grade the echo server at `address` (see above) instead of loading it")
	fs.StringVar(&a.checks, "checks", "", "with -check: a comma `list` of the checks to run (default all)")
	fs.BoolVar(&a.json, "json", false, "print the result as one JSON object instead of text")
}

// finish validates a load run's flags and completes cfg from them.
func (a *loadArgs) finish() error {
	c := &a.cfg
	c.Network = a.network
	if c.Addr == "" {
		if c.Network == "unix" {
			return errors.New("-network unix needs -addr, a socket path")
		}
		c.Addr = defaultAddr
	}
	sz, err := transports.ParseSize(a.size)
	switch {
	case err != nil || sz < 1:
		return fmt.Errorf("-size %s: want a positive byte count", a.size)
	case c.Conns < 1 || c.Depth < 1:
		return errors.New("-conns and -depth must be at least 1")
	case c.Duration <= 0 || c.Timeout <= 0 || c.Warmup < 0:
		return errors.New("-duration and -timeout must be positive, -warmup not negative")
	case c.Rate < 0:
		return errors.New("-rate must not be negative")
	}
	c.Size = sz
	if a.body != "" {
		c.HTTPBody = []byte(a.body)
	}
	return nil
}

// dialer makes cfg dial through the -transport spec, unless it is net;
// close releases that transport.
func (a *loadArgs) dialer() (close func(), err error) {
	if a.spec == "net" {
		return func() {}, nil
	}
	t, err := transports.Open(a.spec, transports.Config{})
	if err != nil {
		return nil, err
	}
	a.cfg.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		return transports.DialNet(ctx, t, network, address)
	}
	return func() { t.Close() }, nil
}

// progressLines prints a line of throughput per progress report.
func progressLines(w io.Writer) func(loadgen.Progress) {
	var last loadgen.Progress
	return func(p loadgen.Progress) {
		secs := (p.Elapsed - last.Elapsed).Seconds()
		phase := "warm-up"
		if p.Measuring {
			phase = "measuring"
		}
		fmt.Fprintf(w, "%6.1fs %12.0f req/s %10.2f MB/s %6d errors  %s\n", p.Elapsed.Seconds(),
			float64(p.Requests-last.Requests)/secs, float64(p.Bytes-last.Bytes)/secs/1e6, p.Errors, phase)
		last = p
	}
}

// report prints res (text or JSON) and returns the exit status: 1 if a
// connection failed or nothing completed.
func (a *loadArgs) report(res loadgen.Result, srv serverWindow, stdout, stderr io.Writer) int {
	rep := newLoadReport(res, srv, a.pid > 0)
	if a.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		rep.print(stdout, a.spec)
	}
	if res.Errors > 0 {
		fmt.Fprintf(stderr, "merlin load: %d of %d connections failed; first: %v\n", res.Errors, res.Config.Conns, res.FirstErrors[0])
		return 1
	}
	if res.Requests == 0 && res.Config.Mode != loadgen.Idle {
		fmt.Fprintf(stderr, "merlin load: no request completed\n")
		return 1
	}
	return 0
}

// serverWindow samples a server process at the edges of the measured
// window.
type serverWindow struct {
	before, after procstat.Sample
	err           error
}

func (w *serverWindow) sampler(pid int) func(start bool) {
	return func(start bool) {
		s, err := procstat.Read(pid)
		if err != nil && w.err == nil {
			w.err = err
		}
		if start {
			w.before = s
		} else {
			w.after = s
		}
	}
}

// clientBoundBelow is the server busy fraction under which a run is
// labelled client-bound: the server's core had time to spare, so the
// figure measures the client.
const clientBoundBelow = 0.9

// loadReport is what load prints, as text or JSON.
type loadReport struct {
	Name           string   `json:"name"` // the benchmark name
	Network        string   `json:"network"`
	Addr           string   `json:"addr"`
	App            string   `json:"app"`
	Path           string   `json:"path,omitempty"` // http: the path requested
	Mode           string   `json:"mode"`
	Conns          int      `json:"conns"`
	Size           int      `json:"size"`
	Depth          int      `json:"depth"`
	Rate           float64  `json:"rate,omitempty"`
	Seconds        float64  `json:"seconds"`
	Requests       uint64   `json:"requests"`
	Bytes          uint64   `json:"bytes"`
	Errors         uint64   `json:"errors"`
	FirstErrors    []string `json:"first_errors,omitempty"`
	ReqPerSec      float64  `json:"req_per_sec"`
	MBPerSec       float64  `json:"mb_per_sec"`
	OpenConns      int      `json:"open_conns"`
	P50ns          int64    `json:"p50_ns,omitempty"`
	P99ns          int64    `json:"p99_ns,omitempty"`
	P999ns         int64    `json:"p999_ns,omitempty"`
	MaxNs          int64    `json:"max_ns,omitempty"`
	ClientUserNs   int64    `json:"client_user_ns"`
	ClientSysNs    int64    `json:"client_sys_ns"`
	ClientBusy     float64  `json:"client_busy"`
	ServerUserNs   int64    `json:"server_user_ns,omitempty"`
	ServerSysNs    int64    `json:"server_sys_ns,omitempty"`
	ServerBusy     float64  `json:"server_busy,omitempty"`
	ServerError    string   `json:"server_error,omitempty"`
	ClientBound    bool     `json:"client_bound,omitempty"`
	ServerObserved bool     `json:"server_observed"`
}

func newLoadReport(res loadgen.Result, srv serverWindow, observed bool) loadReport {
	c := res.Config
	r := loadReport{
		Network: c.Network, Addr: c.Addr, App: c.Workload, Mode: c.Mode,
		Conns: c.Conns, Size: c.Size, Depth: c.Depth, Rate: c.Rate,
		Seconds: res.Elapsed.Seconds(), Requests: res.Requests, Bytes: res.Bytes, Errors: res.Errors,
		ReqPerSec: res.RequestsPerSecond(), MBPerSec: res.MBPerSecond(), OpenConns: res.Open,
		ClientUserNs: res.ClientUser.Nanoseconds(), ClientSysNs: res.ClientSys.Nanoseconds(), ClientBusy: res.ClientBusy(),
		ServerObserved: observed,
	}
	if c.Workload == loadgen.HTTP {
		r.Path = c.HTTPPath
		if r.Path == "" {
			r.Path = loadgen.DefaultHTTPPath
		}
	}
	if c.Workload == loadgen.HTTP {
		r.Size = 0
	}
	for _, e := range res.FirstErrors {
		r.FirstErrors = append(r.FirstErrors, e.Error())
	}
	if res.OpenLoop() && res.Latency.Count() > 0 {
		r.P50ns = res.Latency.Quantile(0.5).Nanoseconds()
		r.P99ns = res.Latency.Quantile(0.99).Nanoseconds()
		r.P999ns = res.Latency.Quantile(0.999).Nanoseconds()
		r.MaxNs = res.Latency.Max().Nanoseconds()
	}
	if observed {
		if srv.err != nil {
			r.ServerError = srv.err.Error()
		} else {
			d := srv.after.Sub(srv.before)
			r.ServerUserNs, r.ServerSysNs = d.User.Nanoseconds(), d.Sys.Nanoseconds()
			if res.Elapsed > 0 {
				r.ServerBusy = float64(d.CPU()) / float64(res.Elapsed)
			}
			// An open-loop run leaves the server idle on purpose: its
			// figures are per request at the offered rate.
			r.ClientBound = !res.OpenLoop() && r.ServerBusy < clientBoundBelow
		}
	}
	r.Name = r.benchName()
	return r
}

// benchName is the Go benchmark name of the run.
func (r loadReport) benchName() string {
	var b strings.Builder
	fmt.Fprintf(&b, "BenchmarkLoad/app=%s", r.App)
	if r.Mode != loadgen.Closed {
		fmt.Fprintf(&b, "/mode=%s", r.Mode)
	}
	if r.App == loadgen.HTTP && r.Path != "" && r.Path != loadgen.DefaultHTTPPath {
		// benchfmt splits names at '/': /json is path=json.
		fmt.Fprintf(&b, "/path=%s", strings.ReplaceAll(strings.TrimPrefix(r.Path, "/"), "/", "_"))
	}
	fmt.Fprintf(&b, "/conns=%d", r.Conns)
	if r.App == loadgen.Echo || r.Path == loadgen.EchoPath {
		fmt.Fprintf(&b, "/size=%d", r.Size)
	}
	fmt.Fprintf(&b, "/depth=%d", r.Depth)
	if r.Rate > 0 {
		fmt.Fprintf(&b, "/rate=%.0f", r.Rate)
	}
	return b.String()
}

func (r loadReport) print(w io.Writer, spec string) {
	what := fmt.Sprintf("%d conns, %d x %d bytes per write", r.Conns, r.Depth, r.Size)
	if r.App == loadgen.HTTP {
		what = fmt.Sprintf("%d conns, %d GETs of %s per write", r.Conns, r.Depth, r.Path)
		if r.Path == loadgen.EchoPath {
			what = fmt.Sprintf("%d conns, %d POSTs of %d bytes to %s per write", r.Conns, r.Depth, r.Size, r.Path)
		}
	}
	if r.Mode != loadgen.Closed {
		what += ", mode " + r.Mode
	}
	if r.Rate > 0 {
		what += fmt.Sprintf(", open loop at %.0f req/s", r.Rate)
	}
	if spec != "net" {
		what += ", client transport " + spec
	}
	fmt.Fprintf(w, "%s %s: %s, %v\n", r.Network, r.Addr, what, time.Duration(r.Seconds*1e9).Round(time.Millisecond))
	fmt.Fprintf(w, "requests: %d (%.0f req/s)\n", r.Requests, r.ReqPerSec)
	fmt.Fprintf(w, "throughput: %.2f MB/s\n", r.MBPerSec)
	if r.Mode == loadgen.Idle {
		fmt.Fprintf(w, "open connections at the end: %d\n", r.OpenConns)
	}
	if r.P50ns > 0 {
		fmt.Fprintf(w, "latency (from scheduled send): p50 %v, p99 %v, p99.9 %v, max %v\n",
			time.Duration(r.P50ns), time.Duration(r.P99ns), time.Duration(r.P999ns), time.Duration(r.MaxNs))
	}
	fmt.Fprintf(w, "client CPU: user %v, system %v (%.0f%% of a core)\n",
		time.Duration(r.ClientUserNs).Round(time.Millisecond), time.Duration(r.ClientSysNs).Round(time.Millisecond), 100*r.ClientBusy)
	if r.ServerObserved {
		if r.ServerError != "" {
			fmt.Fprintf(w, "server CPU: %s\n", r.ServerError)
		} else {
			label := ""
			if r.ClientBound {
				label = " (client-bound: the server had time to spare)"
			}
			fmt.Fprintf(w, "server CPU: user %v, system %v (%.0f%% of a core)%s\n",
				time.Duration(r.ServerUserNs).Round(time.Millisecond), time.Duration(r.ServerSysNs).Round(time.Millisecond), 100*r.ServerBusy, label)
		}
	}
	fmt.Fprintf(w, "errors: %d\n", r.Errors)
	for _, e := range r.FirstErrors {
		fmt.Fprintf(w, "\t%s\n", e)
	}
	fmt.Fprintln(w, r.benchLine())
}

// benchLine formats the run as a Go benchmark result line: N is the
// number of requests and ns/op the window's time per request over all
// connections.
func (r loadReport) benchLine() string {
	var nsPerOp float64
	if r.Requests > 0 {
		nsPerOp = r.Seconds * 1e9 / float64(r.Requests)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d %.1f ns/op %.1f req/s %.2f MB/s %d errors", r.Name, r.Requests, nsPerOp, r.ReqPerSec, r.MBPerSec, r.Errors)
	if r.P50ns > 0 {
		fmt.Fprintf(&b, " %d p50-ns %d p99-ns %d p99.9-ns", r.P50ns, r.P99ns, r.P999ns)
	}
	if r.Requests > 0 {
		fmt.Fprintf(&b, " %.0f client-cpu-ns/req", float64(r.ClientUserNs+r.ClientSysNs)/float64(r.Requests))
		if r.ServerObserved && r.ServerError == "" {
			fmt.Fprintf(&b, " %.0f user-ns/req %.0f sys-ns/req", float64(r.ServerUserNs)/float64(r.Requests), float64(r.ServerSysNs)/float64(r.Requests))
		}
	}
	return b.String()
}
