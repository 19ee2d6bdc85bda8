// Package bench is merlin's throughput suite: it runs a matrix of servers
// and workloads on this host as BENCH.md says to measure, and records for
// every run the throughput, the server's CPU time per request (user and
// system apart, from /proc), its system calls per request (perf stat over
// the measured window) with the transport's own counters beside them,
// latency percentiles for open-loop runs, and memory per idle
// connection.
//
// Each run starts its server afresh as a process pinned to one CPU with
// GOMAXPROCS=1, drives it with loadgen from this process (pinned
// to another CPU), warms up, measures, and stops the server. Servers are
// interleaved within a round, and rounds repeat (Options.Count), so
// benchstat can compare medians. A closed-loop run whose server was under
// 90% busy is labelled client-bound: it measured the client.
//
// Where a tool is missing (perf, taskset, a second CPU) the figure it
// gives is left out and the report says why.
//
//	rep, err := bench.Run(ctx, bench.Options{Servers: servers, Workloads: ws, Count: 5, ...})
//	rep.WriteBenchfmt(os.Stdout)
package bench

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/merlin-net/merlin/internal/procstat"
	"github.com/merlin-net/merlin/internal/selfsigned"
	"github.com/merlin-net/merlin/loadgen"
)

// Workload kinds.
const (
	Echo  = "echo"  // ping-pong echo: closed loop, or open loop at a rate
	Churn = "churn" // connect, one echo exchange, close
	Idle  = "idle"  // connections held open: memory per connection
	HTTP  = "http"  // HTTP/1.1 GET with keep-alive
	// HTTPS is the http workload over TLS (Flags.HTTPTLS): servers run
	// their http app with -tls and the certificate Run makes, which the
	// generator trusts; its connections shake hands before the load.
	HTTPS = "https"
)

// Workload is one column of the matrix.
type Workload struct {
	Kind  string
	Conns int
	Size  int // echo and churn: message size
	Depth int // requests per write
	// Rate is "" for a closed loop, else the offered rate of an open
	// loop: requests per second ("20000"), or a percentage of the
	// slowest server's closed-loop throughput on the same workload
	// measured in this run ("80%").
	Rate string
}

// IsHTTP reports whether a workload kind is HTTP, in the clear or over
// TLS: its cells have no message size.
func IsHTTP(kind string) bool { return kind == HTTP || kind == HTTPS }

// app is the application a server runs for w: http (HTTP and HTTPS), or
// echo.
func (w Workload) app() string {
	if IsHTTP(w.Kind) {
		return "http"
	}
	return "echo"
}

// openLoop reports whether w is an open-loop run.
func (w Workload) openLoop() bool { return w.Rate != "" }

// closed returns w as a closed loop.
func (w Workload) closed() Workload { w.Rate = ""; return w }

// String names w in benchmark names: kind, then its parameters.
func (w Workload) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "conns=%d", w.Conns)
	if w.Kind == Echo || w.Kind == Churn {
		fmt.Fprintf(&b, "/size=%d", w.Size)
	}
	if w.Kind != Idle {
		fmt.Fprintf(&b, "/depth=%d", w.Depth)
	}
	if w.Rate != "" {
		fmt.Fprintf(&b, "/rate=%s", w.Rate)
	}
	return b.String()
}

// benchName is the Go benchmark name of w on server.
func benchName(w Workload, server string) string {
	kind := strings.ToUpper(w.Kind[:1]) + w.Kind[1:]
	if IsHTTP(w.Kind) {
		kind = strings.ToUpper(w.Kind)
	}
	return "Benchmark" + kind + "/server=" + server + "/" + w.String()
}

// Options configure Run.
type Options struct {
	Servers   []Server
	Workloads []Workload
	Count     int           // rounds; default 1
	Warmup    time.Duration // before each measured window
	Duration  time.Duration // each measured window; default 10 s
	// IdleHold is how long idle connections are held before memory is
	// read; default 1 s.
	IdleHold time.Duration
	// Timeout bounds each of the generator's dials and exchanges, and a
	// server's start; default 10 s.
	Timeout time.Duration
	// ServerCPU and ClientCPU pin servers (through taskset) and this
	// process; -1 leaves them unpinned.
	ServerCPU, ClientCPU int
	// Taskset is the taskset command; "" with ServerCPU >= 0 is an
	// error.
	Taskset string
	// Perf is the perf command; "" leaves the system call counts out.
	Perf string
	// Syscalls adds a count per system call name: "net" for the calls
	// a network server makes (the rest counted as other), "all" for
	// every syscalls:sys_enter_* tracepoint (perf then takes seconds to
	// attach and detach); "" for none.
	Syscalls string
	// ProfileDir, if set, keeps a CPU profile of every server run there,
	// beside its transport's counters.
	ProfileDir string
	// KProfile samples every server over its measured window with perf
	// record (cpu-clock every KProfilePeriod, default 1 ms, kernel and
	// user stacks, every thread; the scheduler's switches and wake-ups)
	// and attributes its CPU time to categories (Record.KProfile); it
	// needs Perf. KProfileDir, if set,
	// keeps each run's recording and perf script there, gzipped.
	KProfile       bool
	KProfilePeriod time.Duration
	KProfileDir    string
	// Dial, if set, makes the generator's connections (a client
	// transport).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// ClientTransport names the generator's transport in the report.
	ClientTransport string
	// Generator is the load generator's engine (loadgen.Config.Engine)
	// for the echo and http workloads: loadgen.EngineRing,
	// loadgen.EngineNet, or "" for ring where it runs here and no Dial is
	// set, else net. Other workloads (https among them) always run on
	// net.
	Generator string
	// HTTPPath and HTTPBody configure the http workload.
	HTTPPath string
	HTTPBody []byte
	// Progress, if set, is called before each run and after the last.
	Progress func(Progress)
	// OnStart, if set, is called once the host is described and the
	// tools checked, before the first run; OnRecord after each run.
	OnStart  func(*Report)
	OnRecord func(Record)
	// OnServer, if set, is called with each server's process id once it
	// listens, before the load (started true), and once the load has
	// ended, before the server is stopped (started false): a test
	// measures the server independently there.
	OnServer func(pid int, started bool)
	// Log, if set, receives a line per event worth knowing (a failed run,
	// a missing tool).
	Log func(format string, a ...any)
}

// Progress says where a Run is.
type Progress struct {
	Done, Total int
	Elapsed     time.Duration
	Left        time.Duration // estimated
	Next        string        // the run about to start ("" at the end)
}

// Record is the result of one run: one server, one workload, one round.
type Record struct {
	Name   string `json:"name"` // Go benchmark name
	Round  int    `json:"round"`
	Server string `json:"server"`
	Kind   string `json:"kind"` // server kind
	// Engine is the load generator's engine in this run.
	Engine string `json:"engine,omitempty"`
	// Mechanism and Floor are the server's (see Server).
	Mechanism string  `json:"mechanism,omitempty"`
	Floor     bool    `json:"floor,omitempty"`
	Workload  string  `json:"workload"`
	Conns     int     `json:"conns"`
	Size      int     `json:"size"`
	Depth     int     `json:"depth"`
	Rate      string  `json:"rate,omitempty"`     // as asked
	RateRPS   float64 `json:"rate_rps,omitempty"` // offered, resolved
	Start     string  `json:"start"`              // RFC 3339
	LoadAvg   string  `json:"loadavg,omitempty"`  // /proc/loadavg at the start

	Seconds   float64 `json:"seconds"` // the measured window
	Requests  uint64  `json:"requests"`
	Bytes     uint64  `json:"bytes"`
	ReqPerSec float64 `json:"req_per_sec"`
	MBPerSec  float64 `json:"mb_per_sec"`

	ServerUserNs int64   `json:"server_user_ns"` // over the window
	ServerSysNs  int64   `json:"server_sys_ns"`
	ServerBusy   float64 `json:"server_busy"` // CPU time / window
	ServerVolCS  int64   `json:"server_voluntary_ctxsw"`
	ServerInvCS  int64   `json:"server_involuntary_ctxsw"`
	ClientUserNs int64   `json:"client_user_ns"`
	ClientSysNs  int64   `json:"client_sys_ns"`
	ClientBusy   float64 `json:"client_busy"`
	ClientBound  bool    `json:"client_bound"`

	// Syscalls is perf's raw_syscalls:sys_enter count over the window
	// (-1: not measured); SyscallsByName splits it with -syscalls.
	Syscalls       int64            `json:"syscalls"`
	SyscallsByName map[string]int64 `json:"syscalls_by_name,omitempty"`
	// TransportStats are the transport's own counters over the window
	// (merlin servers only).
	TransportStats map[string]uint64 `json:"transport_stats,omitempty"`
	// KProfile is where the server's CPU time went, by category
	// (Options.KProfile).
	KProfile *KProfile `json:"kprofile,omitempty"`

	P50ns  int64 `json:"p50_ns,omitempty"`
	P99ns  int64 `json:"p99_ns,omitempty"`
	P999ns int64 `json:"p999_ns,omitempty"`
	MaxNs  int64 `json:"max_ns,omitempty"`

	RSSBase    int64   `json:"rss_base,omitempty"` // idle: server RSS with no connection
	RSSLoaded  int64   `json:"rss_loaded,omitempty"`
	RSSPerConn float64 `json:"rss_per_conn,omitempty"`

	// TLSHandshakes counts the generator's TLS handshakes (https), over
	// the whole run: one per connection.
	TLSHandshakes uint64 `json:"tls_handshakes,omitempty"`

	Errors      uint64   `json:"errors"` // failed connections
	FirstErrors []string `json:"first_errors,omitempty"`
	// Err says why the run failed as a whole (the server did not start,
	// exited, or a measurement failed); its figures are then missing.
	Err     string   `json:"error,omitempty"`
	Notes   []string `json:"notes,omitempty"`
	Profile string   `json:"profile,omitempty"`
}

// Failed reports whether the run's figures cannot be trusted.
func (r Record) Failed() bool { return r.Err != "" || r.Errors > 0 }

// perReq divides v by the run's requests.
func (r Record) perReq(v float64) float64 {
	if r.Requests == 0 {
		return 0
	}
	return v / float64(r.Requests)
}

// Report is the outcome of Run.
type Report struct {
	Host     Host      `json:"host"`
	Started  time.Time `json:"started"`
	Elapsed  float64   `json:"elapsed_seconds"`
	Settings Settings  `json:"settings"`
	Records  []Record  `json:"records"`
}

// Settings is what a reader needs of the Options.
type Settings struct {
	Servers          []string `json:"servers"`
	Count            int      `json:"count"`
	WarmupSeconds    float64  `json:"warmup_seconds"`
	DurationSeconds  float64  `json:"duration_seconds"`
	Pinning          string   `json:"pinning"`
	ServerGOMAXPROCS int      `json:"server_gomaxprocs"`
	ClientTransport  string   `json:"client_transport"`
	Generator        string   `json:"generator"` // the echo and http workloads' engine
	Perf             string   `json:"perf"`
	Notes            []string `json:"notes,omitempty"`

	// KProfile describes the sampling of Options.KProfile ("" without).
	KProfile string `json:"kprofile,omitempty"`
}

// clientBoundBelow is the server busy fraction under which a closed-loop
// run is labelled client-bound.
const clientBoundBelow = 0.9

// run is one planned run.
type plannedRun struct {
	srv   Server
	w     Workload
	round int
}

// planRuns orders the runs of o. Phase 1: closed loops (including those
// relative rates need), phase 2: open loops, phase 3: churn and idle.
// Within a phase, rounds; within a round, workloads; within a workload,
// every server, the order rotated each round.
func planRuns(o Options) []plannedRun {
	count := max(o.Count, 1)
	var closed, open, other []Workload
	for _, w := range o.Workloads {
		switch {
		case w.Kind == Churn || w.Kind == Idle:
			other = append(other, w)
		case w.openLoop():
			open = append(open, w)
			if strings.HasSuffix(w.Rate, "%") && !slices.Contains(closed, w.closed()) && !slices.Contains(o.Workloads, w.closed()) {
				closed = append(closed, w.closed())
			}
		default:
			closed = append(closed, w)
		}
	}
	var plan []plannedRun
	for _, phase := range [][]Workload{closed, open, other} {
		for round := range count {
			for _, w := range phase {
				for i := range o.Servers {
					srv := o.Servers[(i+round)%len(o.Servers)]
					if srv.serves(w) {
						plan = append(plan, plannedRun{srv: srv, w: w, round: round})
					}
				}
			}
		}
	}
	return plan
}

// Estimate returns the runs Run would make with o, and the time they
// take if each costs its warm-up and window (or, for idle, IdleHold) plus
// overhead: starting and stopping the server, attaching perf, dialing.
// Closed-loop runs that relative rates need are counted.
func Estimate(o Options, overhead time.Duration) (runs int, total time.Duration) {
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.IdleHold <= 0 {
		o.IdleHold = time.Second
	}
	b := &bencher{o: o}
	plan := planRuns(o)
	for _, pr := range plan {
		total += b.window(pr.w) + overhead
	}
	return len(plan), total
}

// Run runs the matrix and returns every run's record. Its error is for
// options it cannot run with; a failed run is a Record with Err set.
// Cancelling ctx stops after the run in progress (which is cut short).
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Count <= 0 {
		o.Count = 1
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.IdleHold <= 0 {
		o.IdleHold = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	if len(o.Servers) == 0 || len(o.Workloads) == 0 {
		return nil, fmt.Errorf("bench: nothing to run (%d servers, %d workloads)", len(o.Servers), len(o.Workloads))
	}
	rep := &Report{Host: describeHost(), Started: time.Now()}
	rep.Settings = Settings{
		Count: o.Count, WarmupSeconds: o.Warmup.Seconds(), DurationSeconds: o.Duration.Seconds(),
		ServerGOMAXPROCS: 1, ClientTransport: cmp.Or(o.ClientTransport, "net"), Perf: "not used",
	}
	for _, s := range o.Servers {
		rep.Settings.Servers = append(rep.Settings.Servers, s.Name)
	}
	b := &bencher{o: o, rep: rep}
	err := b.setup()
	rep.Settings.Generator = b.generator
	if b.unpin != nil {
		// A caller may run again (merlin paper runs one bench per part).
		defer b.unpin()
	}
	if err != nil {
		return nil, err
	}
	if b.tlsDir != "" {
		defer os.RemoveAll(b.tlsDir)
	}
	if f := strings.Fields(rep.Host.LoadAvg); len(f) > 0 {
		if l, err := strconv.ParseFloat(f[0], 64); err == nil && l >= 1 {
			o.Log("the load average is %s before the first run: other work shares this machine, expect noisy figures", f[0])
		}
	}

	plan := planRuns(o)
	if b.tls != nil {
		for _, s := range o.Servers {
			if !s.TLS {
				o.Log("%s does not serve TLS: its %s runs are skipped", s.Name, HTTPS)
			}
		}
	}

	if o.OnStart != nil {
		o.OnStart(rep)
	}
	start := time.Now()
	var spent time.Duration // time of the runs so far, to estimate the rest
	for i, pr := range plan {
		if ctx.Err() != nil {
			break
		}
		if o.Progress != nil {
			o.Progress(Progress{Done: i, Total: len(plan), Elapsed: time.Since(start), Left: b.estimate(plan[i:], spent, i), Next: pr.srv.Name + " " + pr.w.Kind + " " + pr.w.String()})
		}
		t := time.Now()
		rec := b.runOne(ctx, pr)
		spent += time.Since(t)
		if rec.Err != "" {
			o.Log("%s round %d: %s", rec.Name, rec.Round, rec.Err)
		} else if rec.Errors > 0 {
			o.Log("%s round %d: %d connections failed; first: %s", rec.Name, rec.Round, rec.Errors, rec.FirstErrors[0])
		}
		rep.Records = append(rep.Records, rec)
		if o.OnRecord != nil {
			o.OnRecord(rec)
		}
	}
	if o.Progress != nil {
		o.Progress(Progress{Done: len(rep.Records), Total: len(plan), Elapsed: time.Since(start)})
	}
	rep.Elapsed = time.Since(rep.Started).Seconds()
	return rep, ctx.Err()
}

// bencher holds a Run's state.
type bencher struct {
	o   Options
	rep *Report
	pin []string // the command prefix that pins a server
	// unpin, if set, gives this process back the CPUs and GOMAXPROCS it
	// had before setup pinned it.
	unpin func()
	// generator is the echo and http workloads' engine, resolved by
	// setup.
	generator string
	// tls is the generator's TLS configuration for https runs, trusting
	// the certificate setup made; tlsArgs give a server that certificate
	// (in tlsDir, removed when Run ends). Unset without https workloads.
	tls     *tls.Config
	tlsArgs []string
	tlsDir  string
}

// engine is the generator's engine for a run of w: the one resolved for
// echo and http, which the ring engine runs in the clear (and wrk, http
// alone, which setup checks); net for the rest (churn and idle, and
// https, whose TLS the ring and wrk engines do not speak).
func (b *bencher) engine(w Workload) string {
	if w.Kind == Echo || w.Kind == HTTP {
		return b.generator
	}
	return loadgen.EngineNet
}

// setup pins this process and checks the tools.
func (b *bencher) setup() error {
	o := b.o
	s := &b.rep.Settings
	s.Pinning = "none"
	if o.ServerCPU >= 0 || o.ClientCPU >= 0 {
		cpus, err := allowedCPUs()
		if err != nil {
			return err
		}
		for _, c := range []int{o.ServerCPU, o.ClientCPU} {
			if c >= 0 && !slices.Contains(cpus, c) {
				return fmt.Errorf("bench: CPU %d is not one this process may use (%v)", c, cpus)
			}
		}
		if o.ServerCPU >= 0 {
			if o.Taskset == "" {
				return fmt.Errorf("bench: pinning servers needs taskset (util-linux)")
			}
			b.pin = []string{o.Taskset, "-c", strconv.Itoa(o.ServerCPU)}
		}
		if o.ClientCPU >= 0 {
			if err := pinSelf(o.ClientCPU); err != nil {
				return err
			}
			// One CPU, one P: a second would only time-slice with the
			// first.
			procs := runtime.GOMAXPROCS(1)
			b.unpin = func() {
				setAffinity(cpus)
				runtime.GOMAXPROCS(procs)
			}
		}
		s.Pinning = fmt.Sprintf("server=%s,client=%s", cpuName(o.ServerCPU), cpuName(o.ClientCPU))
	}
	if o.Perf != "" {
		v, err := ProbePerf(o.Perf)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		s.Perf = v
		b.rep.Host.Perf = v
	}
	if o.ProfileDir != "" {
		if err := os.MkdirAll(o.ProfileDir, 0o755); err != nil {
			return err
		}
	}
	switch b.generator = o.Generator; {
	case b.generator == "" && o.Dial == nil:
		b.generator = loadgen.EngineRing
		if err := loadgen.EngineAvailable(loadgen.EngineRing); err != nil {
			o.Log("the load generator runs on Go's net package, a goroutine per connection: %v", err)
			b.generator = loadgen.EngineNet
		}
	case b.generator == "":
		b.generator = loadgen.EngineNet
	case b.generator == loadgen.EngineRing && o.Dial != nil:
		return fmt.Errorf("bench: the %s generator makes its own sockets: it cannot run on a client transport", loadgen.EngineRing)
	case b.generator == loadgen.EngineWrk && o.Dial != nil:
		return fmt.Errorf("bench: the %s generator makes its own connections: it cannot run on a client transport", loadgen.EngineWrk)
	default:
		if err := loadgen.EngineAvailable(b.generator); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	if b.generator == loadgen.EngineWrk {
		for _, w := range o.Workloads {
			switch {
			case w.Kind != HTTP:
				return fmt.Errorf("bench: the %s generator drives the http workload only, not %s", loadgen.EngineWrk, w.Kind)
			case w.openLoop():
				return fmt.Errorf("bench: the %s generator runs closed loops only, not the rate %s", loadgen.EngineWrk, w.Rate)
			}
		}
		if o.HTTPPath == loadgen.EchoPath || o.HTTPBody != nil {
			return fmt.Errorf("bench: the %s generator sends GETs and checks statuses only: no %s, no -http-body", loadgen.EngineWrk, loadgen.EchoPath)
		}
		if o.Warmup%time.Second != 0 || o.Duration%time.Second != 0 {
			return fmt.Errorf("bench: the %s generator runs whole seconds: -warmup %v, -duration %v", loadgen.EngineWrk, o.Warmup, o.Duration)
		}
	}
	if slices.ContainsFunc(o.Workloads, func(w Workload) bool { return w.Kind == HTTPS }) {
		if err := b.setupTLS(); err != nil {
			return fmt.Errorf("bench: the https workload's certificate: %w", err)
		}
	}
	if o.KProfile {
		if o.Perf == "" {
			return fmt.Errorf("bench: -kprofile needs perf (Debian: apt-get install linux-perf)")
		}
		if err := ProbeKProfile(o.Perf); err != nil {
			return fmt.Errorf("bench: -kprofile: %w", err)
		}
		where := "every CPU"
		if o.ServerCPU >= 0 {
			where = fmt.Sprintf("CPU %d", o.ServerCPU)
		}
		s.KProfile = fmt.Sprintf("perf record -e cpu-clock every %v -g and the scheduler's switches and wake-ups on %s, the server's samples; categories by internal/kprofile/rules.txt", b.kprofilePeriod(), where)
		if o.KProfileDir != "" {
			if err := os.MkdirAll(o.KProfileDir, 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}

// setupTLS makes a self-signed certificate for the https runs, writes it
// and its key for the servers' -tls-cert and -tls-key, and has the
// generator trust it (and only it): every handshake verifies the server.
func (b *bencher) setupTLS() error {
	certPEM, keyPEM, err := selfsigned.New(time.Now())
	if err != nil {
		return err
	}
	pool, err := selfsigned.Pool(certPEM)
	if err != nil {
		return err
	}
	if b.tlsDir, err = os.MkdirTemp("", "merlin-bench-tls-"); err != nil {
		return err
	}
	cert, key := filepath.Join(b.tlsDir, "cert.pem"), filepath.Join(b.tlsDir, "key.pem")
	if err := os.WriteFile(cert, certPEM, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		return err
	}
	b.tls = &tls.Config{RootCAs: pool}
	b.tlsArgs = []string{"-tls", "-tls-cert", cert, "-tls-key", key}
	return nil
}

// kprofilePeriod is Options.KProfilePeriod or its default.
func (b *bencher) kprofilePeriod() time.Duration {
	return cmp.Or(b.o.KProfilePeriod, DefaultKProfilePeriod)
}

// kprofilePin keeps perf record off the server's CPU: on the client's,
// where its reading of the samples competes with the generator, not with
// the server it measures.
func (b *bencher) kprofilePin() []string {
	if b.o.Taskset == "" || b.o.ClientCPU < 0 || b.o.ClientCPU == b.o.ServerCPU {
		return nil
	}
	return []string{b.o.Taskset, "-c", strconv.Itoa(b.o.ClientCPU)}
}

// perfTimeout bounds perf's answers: attaching to every syscall
// tracepoint takes it seconds.
func (b *bencher) perfTimeout() time.Duration {
	if b.o.Syscalls == "all" {
		return 12 * b.o.Timeout
	}
	return 3 * b.o.Timeout
}

func cpuName(c int) string {
	if c < 0 {
		return "any"
	}
	return strconv.Itoa(c)
}

// runOverhead is a first guess of a run's time beyond its warm-up and
// window: starting and stopping the server, perf, dialing.
const runOverhead = 400 * time.Millisecond

// estimate guesses the time the runs left will take.
func (b *bencher) estimate(left []plannedRun, spent time.Duration, done int) time.Duration {
	var planned time.Duration
	for _, pr := range left {
		planned += b.window(pr.w) + runOverhead
	}
	if done == 0 {
		return planned
	}
	// Scale by how the runs so far compared with their plan.
	var plannedDone time.Duration
	for _, r := range b.rep.Records {
		plannedDone += b.window(Workload{Kind: r.Workload}) + runOverhead
	}
	if plannedDone <= 0 {
		return planned
	}
	return time.Duration(float64(planned) * float64(spent) / float64(plannedDone))
}

// window is the warm-up and measured time of a run of w.
func (b *bencher) window(w Workload) time.Duration {
	if w.Kind == Idle {
		return b.o.IdleHold
	}
	return b.o.Warmup + b.o.Duration
}

// resolveRate turns w's rate into requests per second.
func (b *bencher) resolveRate(w Workload) (float64, error) {
	if !w.openLoop() {
		return 0, nil
	}
	if pct, ok := strings.CutSuffix(w.Rate, "%"); ok {
		p, err := strconv.ParseFloat(pct, 64)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("bad rate %q", w.Rate)
		}
		// The slowest server's median closed-loop throughput.
		byServer := map[string][]float64{}
		for _, r := range b.rep.Records {
			if r.Rate == "" && !r.Failed() && r.Workload == w.Kind && r.Conns == w.Conns && r.Size == w.Size && r.Depth == w.Depth {
				byServer[r.Server] = append(byServer[r.Server], r.ReqPerSec)
			}
		}
		slowest := 0.0
		for _, v := range byServer {
			if m := median(v); slowest == 0 || m < slowest {
				slowest = m
			}
		}
		if slowest == 0 {
			return 0, fmt.Errorf("rate %s: no closed-loop run of %s %s succeeded to take it from", w.Rate, w.Kind, w.closed())
		}
		return slowest * p / 100, nil
	}
	r, err := strconv.ParseFloat(w.Rate, 64)
	if err != nil || r <= 0 {
		return 0, fmt.Errorf("bad rate %q", w.Rate)
	}
	return r, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// runOne runs one server on one workload.
func (b *bencher) runOne(ctx context.Context, pr plannedRun) (rec Record) {
	o, w, srv := b.o, pr.w, pr.srv
	rec = Record{
		Name: benchName(w, srv.Name), Round: pr.round, Server: srv.Name, Kind: srv.Kind, Mechanism: srv.Mechanism, Floor: srv.Floor,
		Workload: w.Kind, Conns: w.Conns, Size: w.Size, Depth: w.Depth, Rate: w.Rate,
		Start: time.Now().Format(time.RFC3339), Syscalls: -1,
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		rec.LoadAvg = strings.TrimSpace(string(b))
	}
	fail := func(format string, a ...any) Record {
		rec.Err = fmt.Sprintf(format, a...)
		return rec
	}
	rate, err := b.resolveRate(w)
	if err != nil {
		return fail("%v", err)
	}
	rec.RateRPS = rate

	extra := []string{"-app", w.app()}
	if w.Kind == HTTPS {
		extra = append(extra, b.tlsArgs...)
	}
	if o.ProfileDir != "" {
		rec.Profile = filepath.Join(o.ProfileDir, fmt.Sprintf("%s-r%d.pprof", strings.ReplaceAll(strings.TrimPrefix(rec.Name, "Benchmark"), "/", "_"), pr.round))
		extra = append(extra, "-cpuprofile", rec.Profile)
	}
	p, err := startServer(srv, b.pin, []string{"GOMAXPROCS=1"}, extra, 3*o.Timeout)
	if err != nil {
		return fail("%v", err)
	}
	defer func() {
		if err := p.stop(o.Timeout + 5*time.Second); err != nil && rec.Err == "" {
			rec.Err = err.Error()
		}
	}()
	base, err := procstat.Read(p.pid)
	if err != nil {
		return fail("%v", err)
	}
	if o.OnServer != nil {
		o.OnServer(p.pid, true)
	}

	var perf *perfCounter
	if o.Perf != "" && w.Kind != Idle {
		if perf, err = startPerf(o.Perf, p.pid, o.Syscalls); err != nil {
			return fail("%v", err)
		}
		defer perf.close()
	}
	var kp *kprofileRecorder
	if o.KProfile && w.Kind != Idle {
		if kp, err = startKProfile(b.kprofilePin(), o.Perf, p.pid, o.ServerCPU, b.kprofilePeriod()); err != nil {
			return fail("%v", err)
		}
		defer kp.close()
	}

	cfg := loadgen.Config{
		Network: "tcp", Addr: p.addr, Conns: w.Conns, Size: w.Size, Depth: w.Depth, Rate: rate,
		Warmup: o.Warmup, Duration: o.Duration, Timeout: o.Timeout, Dial: o.Dial,
		HTTPPath: o.HTTPPath, HTTPBody: o.HTTPBody, Engine: b.engine(w),
	}
	rec.Engine = cfg.Engine
	switch w.Kind {
	case HTTP:
		cfg.Workload = loadgen.HTTP
	case HTTPS:
		cfg.Workload, cfg.TLS = loadgen.HTTP, b.tls
	case Churn:
		cfg.Mode = loadgen.Churn
	case Idle:
		cfg.Mode, cfg.Warmup, cfg.Duration = loadgen.Idle, 0, o.IdleHold
	}
	var (
		before, after procstat.Sample
		st0, st1      map[string]uint64
		winErr        []string
	)
	note := func(err error) {
		if err != nil {
			winErr = append(winErr, err.Error())
		}
	}
	cfg.OnWindow = func(start bool) {
		if start {
			var err error
			st0, err = p.stats(o.Timeout)
			note(err)
			if perf != nil {
				note(perf.command("enable", b.perfTimeout()))
			}
			// The samples' window next to /proc's, inside perf stat's.
			if kp != nil {
				note(kp.command("enable", b.perfTimeout()))
			}
			before, err = procstat.Read(p.pid)
			note(err)
			return
		}
		var err error
		after, err = procstat.Read(p.pid)
		note(err)
		if kp != nil {
			note(kp.command("disable", b.perfTimeout()))
		}
		if perf != nil {
			note(perf.command("disable", b.perfTimeout()))
		}
		st1, err = p.stats(o.Timeout)
		note(err)
	}
	res, err := cfg.Run(ctx)
	if o.OnServer != nil {
		o.OnServer(p.pid, false)
	}
	if err != nil {
		return fail("%v", err)
	}
	if len(winErr) > 0 {
		return fail("measuring: %s", strings.Join(winErr, "; "))
	}
	if !p.running() {
		return fail("%s exited during the run: %v\nstderr:\n%s", srv.Name, p.err, p.stderr)
	}

	rec.Seconds = res.Elapsed.Seconds()
	rec.Requests, rec.Bytes = res.Requests, res.Bytes
	rec.ReqPerSec, rec.MBPerSec = res.RequestsPerSecond(), res.MBPerSecond()
	rec.Errors = res.Errors
	rec.TLSHandshakes = res.Handshakes
	for _, e := range res.FirstErrors {
		rec.FirstErrors = append(rec.FirstErrors, e.Error())
	}
	d := after.Sub(before)
	rec.ServerUserNs, rec.ServerSysNs = d.User.Nanoseconds(), d.Sys.Nanoseconds()
	rec.ServerVolCS, rec.ServerInvCS = d.VolCtxSw, d.InvolCtxSw
	if res.Elapsed > 0 {
		rec.ServerBusy = float64(d.CPU()) / float64(res.Elapsed)
	}
	rec.ClientUserNs, rec.ClientSysNs, rec.ClientBusy = res.ClientUser.Nanoseconds(), res.ClientSys.Nanoseconds(), res.ClientBusy()
	rec.ClientBound = !w.openLoop() && w.Kind != Idle && rec.ServerBusy < clientBoundBelow
	if st0 != nil && st1 != nil {
		rec.TransportStats = map[string]uint64{}
		for k, v := range st1 {
			if k == "open" {
				rec.TransportStats[k] = v
				continue
			}
			rec.TransportStats[k] = v - st0[k]
		}
	}
	if w.openLoop() && res.Latency.Count() > 0 {
		rec.P50ns = res.Latency.Quantile(0.5).Nanoseconds()
		rec.P99ns = res.Latency.Quantile(0.99).Nanoseconds()
		rec.P999ns = res.Latency.Quantile(0.999).Nanoseconds()
		rec.MaxNs = res.Latency.Max().Nanoseconds()
		if rec.ReqPerSec < 0.95*rate {
			rec.Notes = append(rec.Notes, fmt.Sprintf("achieved %.0f of %.0f req/s offered", rec.ReqPerSec, rate))
		}
	}
	if w.Kind == Idle {
		rec.RSSBase, rec.RSSLoaded = base.RSS, after.RSS
		if res.Open > 0 {
			rec.RSSPerConn = float64(after.RSS-base.RSS) / float64(res.Open)
		}
		if res.Open != w.Conns {
			rec.Notes = append(rec.Notes, fmt.Sprintf("%d of %d connections open", res.Open, w.Conns))
		}
	}
	if rec.Profile != "" {
		// The transport's counters beside the profile (the profile itself
		// is complete once the server has exited).
		b, _ := json.MarshalIndent(map[string]any{"name": rec.Name, "round": rec.Round, "window_seconds": rec.Seconds,
			"requests": rec.Requests, "transport_stats": rec.TransportStats}, "", "  ")
		if err := os.WriteFile(strings.TrimSuffix(rec.Profile, ".pprof")+".stats.json", append(b, '\n'), 0o644); err != nil {
			return fail("%v", err)
		}
	}
	if perf != nil {
		counts, err := perf.finish(b.perfTimeout())
		if err != nil {
			return fail("%v", err)
		}
		rec.Syscalls = counts["total"]
		if o.Syscalls != "" {
			delete(counts, "total")
			rec.SyscallsByName = counts
		}
	}
	if kp != nil {
		name := fmt.Sprintf("%s-r%d", strings.ReplaceAll(strings.TrimPrefix(rec.Name, "Benchmark"), "/", "_"), pr.round)
		prof, files, err := kp.finish(b.perfTimeout(), o.KProfileDir, name)
		if err != nil {
			return fail("-kprofile: %v", err)
		}
		rec.KProfile = kprofileOf(prof, b.kprofilePeriod(), rec.Requests, rec.ServerUserNs+rec.ServerSysNs, o.ServerCPU >= 0, files)
		if sh := rec.KProfile.SharedCPU; sh > sharedCPUNote {
			rec.Notes = append(rec.Notes, fmt.Sprintf("CPU %d shared: %.0f%% to other processes", o.ServerCPU, 100*sh))
		}
	}
	return rec
}
