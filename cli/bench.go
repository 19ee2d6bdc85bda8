package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/merlin-net/merlin/bench"
	"github.com/merlin-net/merlin/internal/figures"
	"github.com/merlin-net/merlin/transports"
)

const benchSynopsis = `Usage: merlin bench [flags]

bench runs the throughput suite on this host: a matrix of servers x
workloads x connections x sizes x depths x rates, -count rounds. Every run
starts its server afresh (merlin serve, or a peer) pinned to -server-cpu
with GOMAXPROCS=1 and one loop, drives it from this process pinned to
-client-cpu, warms up, then measures for -duration. Servers are interleaved
within each round. The echo workload's generator drives every connection
from one thread through io_uring and never sleeps (-generator ring), so
that even a minimal C server is saturated; -generator net is a goroutine
per connection.

Servers: every transport this host runs (transports' Drivers), each also
behind the net.Conn adapter ("NAME-netconn", a goroutine per connection)
unless -netconn=false, and the peers named by -peers (built from peers/
with go build). -servers picks some by name.

For every run it records throughput; the server's CPU time per request,
user and system apart (/proc/PID/stat); its system calls per request
(perf stat -e raw_syscalls:sys_enter -p PID over the measured window),
with the transport's own counters beside them (t-syscalls: what the
transport counts itself, e.g. sockets leaves out the runtime's epoll);
p50/p99/p99.9 latency for open-loop runs (-rates; "80%" is 80% of the
slowest server's closed-loop throughput on the same workload, measured
first, so every server is compared at the same offered load); memory per
idle connection (-workloads idle). A closed-loop run whose server was
under 90% busy is labelled client-bound: it measured the client. CPU
claims across servers come from saturated runs, or from open-loop runs at
the same rate.

Output: one line per run in Go benchmark format on stdout as runs finish
(ns/op is wall time per request, so "benchstat -col /server" compares the
servers), then a table of medians; results.txt, results.json and
results.csv in -out. A progress bar with the time left goes to stderr on a
terminal. It exits 1 if a run failed (its line is a comment saying why).
The table gives each server's CPU per request over its floor's ("x floor":
the C server of its mechanism in the same cell, nginx for HTTP), and below
it servers are called cheaper only where a Mann-Whitney U test over the
rounds gives p < 0.05, with an interval for the ratio.

-kprofile samples each server over the window with perf record (kernel and
user stacks, every thread) and splits its CPU per request by category
(TCP/IP, copies, softirq, syscalls, epoll, io_uring, scheduler, transport,
app, Go runtime, perf, other: internal/kprofile/rules.txt), the samples'
sum beside the CPU measured from /proc, as a table and a stacked bar
figure per cell (-out/kprofile-CELL.svg, .png), keeping each run's
recording in -out/kprofile. It needs perf (Debian: linux-perf) and root,
or kernel.perf_event_paranoid 0 or lower.

-quick is a one-minute smoke run: every server, echo 64 B at 64
connections, depths 1 and 16, an open loop at 50% and idle memory, one
round of short windows. Its figures are a first look, not a measurement.

Examples:

	merlin bench -quick -peers gnet,netstd
	merlin bench -conns 1,64,256,1000 -sizes 64,4k -depths 1,16 -count 5 -peers gnet,netstd
	merlin bench -rates closed,80% -depths 1 -count 5
	merlin bench -servers sockets,uring -profile -syscalls -count 3
	merlin bench -servers sockets,uring -peers gnet -depths 1 -kprofile -count 3
`

// bench is "merlin bench".
func benchCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench", benchSynopsis)
	quick := fs.Bool("quick", false, "a one-minute smoke run (sets the matrix and windows unless given)")
	servers := fs.String("servers", "", "comma list of `servers` to run (default: every available transport and its -netconn mode, and the -peers)")
	netconn := fs.Bool("netconn", true, "add each transport behind the net.Conn adapter (NAME-netconn)")
	peers := fs.String("peers", "", "comma list of `peers` to build and run (peers/: gnet, nbio: echo only; fasthttp: http only; netstd: both)")
	peersDir := fs.String("peers-dir", "", "the peers/ `directory` (default: found from the working directory up)")
	workloads := fs.String("workloads", "echo", "comma list of `workloads`: echo, churn, idle, http (http needs servers with an http app: -app http)")
	conns := fs.String("conns", "64", "comma list of connection counts (echo, churn, http)")
	sizes := fs.String("sizes", "64", "comma list of echo message sizes (k suffix: 4k)")
	depths := fs.String("depths", "1,16", "comma list of pipelining depths")
	rates := fs.String("rates", "closed", "comma list of `rates`: closed, requests/s, or N% of the slowest server's closed-loop throughput")
	idleConns := fs.String("idle-conns", "1000", "comma list of idle connection counts (workload idle)")
	count := fs.Int("count", 5, "rounds")
	warmup := fs.Duration("warmup", 2*time.Second, "warm-up before each measured window")
	duration := fs.Duration("duration", 10*time.Second, "measured window of each run")
	idleHold := fs.Duration("idle-hold", time.Second, "how long idle connections are held before the server's memory is read")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on each dial, exchange and server start")
	serverCPU := fs.Int("server-cpu", 0, "CPU the servers are pinned to, with taskset (-1: none; default 0)")
	clientCPU := fs.Int("client-cpu", 1, "CPU the load generator is pinned to (-1: none)")
	perfMode := fs.String("perf", "auto", "count system calls with perf: auto (if it works here), on (required), off")
	var syscallsFlag syscallsValue
	fs.Var(&syscallsFlag, "syscalls", "add counts per system call name: -syscalls for the 43 calls a network server makes (the rest counted as other), -syscalls=all for every syscalls:sys_enter_* tracepoint (perf then takes 10 s or more to attach and detach). Either slows the servers: take throughput from runs without it")
	profile := fs.Bool("profile", false, "keep a CPU profile of every server run in -out/profiles, its transport counters beside it (NAME.stats.json)")
	kprofilePeriod := fs.Duration("kprofile-period", bench.DefaultKProfilePeriod, "-kprofile's sampling period (each sample costs the server a timer interrupt)")
	kprofileFlag := fs.Bool("kprofile", false, "sample each server over the window with perf record (kernel and user stacks) and split its CPU per request by category (TCP/IP, copies, syscalls, epoll, io_uring, scheduler, runtime, transport, app, perf, other); keeps the recordings in -out/kprofile")
	out := fs.String("out", "", "`directory` for results.txt, .json, .csv (default: a new directory under the system's temporary one)")
	clientSpec := fs.String("client-transport", "net", "the load generator's transport `spec`: net (Go's net package) or a transport")
	generator := fs.String("generator", "", "the echo workload's generator `engine`: ring (every connection from one thread through io_uring, busy-polling, so that even a C server is saturated) or net (a goroutine per connection); default ring where it runs, net with -client-transport")
	httpPath := fs.String("http-path", "/plaintext", "http: the path requested")
	httpBody := fs.String("http-body", "", "http: the body every response must have (default: TechEmpower's for /plaintext and /json, the request's for /echo, any elsewhere)")
	if status, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return status
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		// A first look in about a minute: short windows, one round.
		def := func(name string, p *string, v string) {
			if !set[name] {
				*p = v
			}
		}
		def("workloads", workloads, "echo,idle")
		def("rates", rates, "closed,50%")
		def("idle-conns", idleConns, "256")
		if !set["count"] {
			*count = 1
		}
		if !set["warmup"] {
			*warmup = 300 * time.Millisecond
		}
		if !set["duration"] {
			*duration = 1500 * time.Millisecond
		}
		if !set["idle-hold"] {
			*idleHold = 300 * time.Millisecond
		}
		if !set["netconn"] {
			*netconn = false // sockets-netconn only, added below
		}
	}

	matrix, err := buildMatrix(*workloads, *conns, *sizes, *depths, *rates, *idleConns)
	if err != nil {
		return usageError(fs, stderr, "%v", err)
	}
	switch {
	case *count < 1:
		return usageError(fs, stderr, "-count must be at least 1")
	case *duration <= 0 || *warmup < 0 || *timeout <= 0 || *idleHold <= 0:
		return usageError(fs, stderr, "-duration, -timeout and -idle-hold must be positive, -warmup not negative")
	case *perfMode != "auto" && *perfMode != "on" && *perfMode != "off":
		return usageError(fs, stderr, "-perf %s: want auto, on or off", *perfMode)
	case syscallsFlag != "" && *perfMode == "off":
		return usageError(fs, stderr, "-syscalls needs perf")
	case *kprofileFlag && *perfMode == "off":
		return usageError(fs, stderr, "-kprofile needs perf")
	case *kprofilePeriod < 10*time.Microsecond:
		return usageError(fs, stderr, "-kprofile-period must be at least 10µs")
	}

	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "merlin bench: "+format+"\n", a...) }
	opts := bench.Options{
		Count: *count, Warmup: *warmup, Duration: *duration, IdleHold: *idleHold, Timeout: *timeout,
		ServerCPU: *serverCPU, ClientCPU: *clientCPU, Syscalls: string(syscallsFlag),
		Workloads: matrix, ClientTransport: *clientSpec, Generator: *generator, HTTPPath: *httpPath, Log: logf,
	}
	if *httpBody != "" {
		opts.HTTPBody = []byte(*httpBody)
	}

	// Pinning: two CPUs and taskset, else unpinned, said loudly.
	if *serverCPU >= 0 || *clientCPU >= 0 {
		if runtime.NumCPU() < 2 {
			logf("one CPU: servers and the generator run unpinned on it (figures are then not comparable with pinned runs)")
			opts.ServerCPU, opts.ClientCPU = -1, -1
		} else if *serverCPU >= 0 {
			ts, err := exec.LookPath("taskset")
			if err != nil {
				return fail(stderr, "bench", fmt.Errorf("pinning servers needs taskset (util-linux): %w; or run with -server-cpu -1", err))
			}
			opts.Taskset = ts
		}
	}

	switch {
	case *perfMode == "on" || *kprofileFlag:
		// -kprofile fails early, naming what is missing, without perf.
		opts.Perf = "perf"
	case *perfMode == "auto":
		if _, err := bench.ProbePerf("perf"); err != nil {
			logf("system calls will not be counted: %v", err)
		} else {
			opts.Perf = "perf"
		}
	}

	self, err := os.Executable()
	if err != nil {
		return fail(stderr, "bench", err)
	}
	srvs, err := benchServers(self, *servers, *netconn, *quick && !set["netconn"])
	if err != nil {
		return fail(stderr, "bench", err)
	}
	if *peers != "" {
		dir := *peersDir
		if dir == "" {
			wd, _ := os.Getwd()
			if dir, err = bench.FindPeers(wd); err != nil {
				return fail(stderr, "bench", err)
			}
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		start := time.Now()
		ps, err := bench.BuildPeers(goCommand(), dir, filepath.Join(cache, "merlin", "peers"), splitList(*peers))
		if err != nil {
			return fail(stderr, "bench", err)
		}
		logf("built peers %s in %v", *peers, time.Since(start).Round(time.Millisecond))
		srvs = append(srvs, ps...)
	}
	if *servers != "" {
		srvs, err = pickServers(srvs, splitServers(*servers))
		if err != nil {
			return fail(stderr, "bench", err)
		}
	}
	opts.Servers = srvs

	if *clientSpec != "net" {
		t, err := transports.Open(*clientSpec, transports.Config{})
		if err != nil {
			return fail(stderr, "bench", fmt.Errorf("-client-transport: %w", err))
		}
		defer t.Close()
		opts.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
			return transports.DialNet(ctx, t, network, address)
		}
	}

	dir := *out
	if dir == "" {
		dir, err = os.MkdirTemp("", "merlin-bench-"+time.Now().Format("20060102-150405")+"-")
		if err != nil {
			return fail(stderr, "bench", err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(stderr, "bench", err)
	}
	if *profile {
		opts.ProfileDir = filepath.Join(dir, "profiles")
	}
	if *kprofileFlag {
		opts.KProfile, opts.KProfilePeriod, opts.KProfileDir = true, *kprofilePeriod, filepath.Join(dir, "kprofile")
	}

	var names []string
	for _, s := range srvs {
		names = append(names, s.Name)
	}
	logf("%d servers (%s), %d workloads, %d rounds, %v warm-up + %v per run; results in %s",
		len(srvs), strings.Join(names, ", "), len(matrix), *count, *warmup, *duration, dir)

	// stdout: the configuration, a benchmark line per run as it ends,
	// then the table.
	bar := newProgressBar(stderr)
	defer bar.finish()
	opts.Progress = bar.update
	opts.OnStart = func(rep *bench.Report) { rep.WriteHeader(stdout) }
	opts.OnRecord = func(r bench.Record) {
		bar.clear()
		r.WriteLine(stdout)
		bar.redraw()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, runErr := bench.Run(ctx, opts)
	bar.finish()
	if rep == nil {
		return fail(stderr, "bench", runErr)
	}
	fmt.Fprintln(stdout)
	rep.WriteTable(stdout)
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{{"results.txt", rep.WriteBenchfmt}, {"results.json", rep.WriteJSON}, {"results.csv", rep.WriteCSV}} {
		if err := writeFile(filepath.Join(dir, f.name), f.write); err != nil {
			return fail(stderr, "bench", err)
		}
	}
	if *kprofileFlag {
		n := 0
		for _, f := range figures.KProfiles("kprofile", rep.Summaries()) {
			svg, png, err := f.Bytes()
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, f.Name+".svg"), svg, 0o644)
			}
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, f.Name+".png"), png, 0o644)
			}
			if err != nil {
				return fail(stderr, "bench", err)
			}
			n++
		}
		if n > 0 {
			fmt.Fprintf(stdout, "\nkprofile: figures in %s/kprofile-*.{svg,png}, recordings in %s/kprofile\n", dir, dir)
		}
	}
	fmt.Fprintf(stdout, "\nresults: %s/results.{txt,json,csv}  (compare: benchstat -col /server %s/results.txt)\n", dir, dir)

	failed := 0
	for _, r := range rep.Records {
		if r.Failed() {
			failed++
		}
	}
	if runErr != nil {
		return fail(stderr, "bench", fmt.Errorf("stopped early: %w", runErr))
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "merlin bench: %d of %d runs failed (see the comments in the output)\n", failed, len(rep.Records))
		return 1
	}
	return 0
}

// benchServers lists the default servers: every registered transport
// this host runs, on one loop, and with netconn each behind the adapter
// (with quickNetconn, only sockets').
func benchServers(self, selected string, netconn, quickNetconn bool) ([]bench.Server, error) {
	var out []bench.Server
	for _, d := range transports.Drivers() {
		if _, err := d.Probe(); err != nil {
			if selected != "" && slices.Contains(splitList(selected), d.Name) {
				return nil, fmt.Errorf("transport %s does not run here: %w", d.Name, err)
			}
			continue
		}
		spec := d.Name + ":loops=1"
		argv := []string{self, "serve", "-transport", spec}
		mech := bench.MechEpoll // sockets through Go's netpoller, libuvlike its own
		if d.Name == "uring" {
			mech = bench.MechUring
		}
		out = append(out, bench.Server{Name: d.Name, Kind: bench.KindTransport, Argv: argv, Stats: true, Mechanism: mech})
		if netconn || selected != "" || (quickNetconn && d.Name == "sockets") {
			out = append(out, bench.Server{Name: d.Name + "-netconn", Kind: bench.KindNetConn, Argv: append(slices.Clone(argv), "-netconn"), Stats: true, Mechanism: mech})
		}
	}
	return out, nil
}

// pickServers keeps the servers named, in the order named. A name with
// options, "uring:minwait=50us", is that server with the options added to
// its transport spec, so that settings can be compared in one run.
func pickServers(all []bench.Server, names []string) ([]bench.Server, error) {
	var out []bench.Server
	for _, n := range names {
		base, opts, _ := strings.Cut(n, ":")
		i := slices.IndexFunc(all, func(s bench.Server) bool { return s.Name == base })
		if i >= 0 && opts != "" {
			srv, err := withOptions(all[i], n, opts)
			if err != nil {
				return nil, err
			}
			out = append(out, srv)
			continue
		}
		if i < 0 {
			var have []string
			for _, s := range all {
				have = append(have, s.Name)
			}
			return nil, fmt.Errorf("no server %q here (have: %s; peers need -peers)", n, strings.Join(have, ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// splitServers splits the -servers list; a key=value item after a server
// with options belongs to it: "uring:a=1,b=2,gnet" is uring:a=1,b=2 and
// gnet.
func splitServers(s string) []string {
	var out []string
	for _, item := range splitList(s) {
		if n := len(out); n > 0 && strings.Contains(out[n-1], ":") && strings.Contains(item, "=") && !strings.Contains(item, ":") {
			out[n-1] += "," + item
			continue
		}
		out = append(out, item)
	}
	return out
}

// withOptions returns srv, named name, with opts appended to the spec
// after its -transport flag.
func withOptions(srv bench.Server, name, opts string) (bench.Server, error) {
	j := slices.Index(srv.Argv, "-transport")
	if srv.Kind == bench.KindPeer || j < 0 || j+1 >= len(srv.Argv) {
		return bench.Server{}, fmt.Errorf("server %q: options are for merlin's transports, not %s", name, srv.Name)
	}
	spec := srv.Argv[j+1] + "," + opts
	if _, err := transports.ParseSpec(spec); err != nil {
		return bench.Server{}, fmt.Errorf("server %q: %w", name, err)
	}
	srv.Name = name
	srv.Argv = slices.Clone(srv.Argv)
	srv.Argv[j+1] = spec
	return srv, nil
}

// buildMatrix expands the list flags into workloads.
func buildMatrix(workloads, conns, sizes, depths, rates, idleConns string) ([]bench.Workload, error) {
	cs, err := intList("conns", conns, transports.ParseSize)
	if err != nil {
		return nil, err
	}
	ss, err := intList("sizes", sizes, transports.ParseSize)
	if err != nil {
		return nil, err
	}
	ds, err := intList("depths", depths, transports.ParseSize)
	if err != nil {
		return nil, err
	}
	ics, err := intList("idle-conns", idleConns, transports.ParseSize)
	if err != nil {
		return nil, err
	}
	var rs []string
	for _, r := range splitList(rates) {
		switch {
		case r == "closed":
			rs = append(rs, "")
		case strings.HasSuffix(r, "%"):
			if p, err := strconv.ParseFloat(strings.TrimSuffix(r, "%"), 64); err != nil || p <= 0 {
				return nil, fmt.Errorf("-rates: bad percentage %q", r)
			}
			rs = append(rs, r)
		default:
			if v, err := strconv.ParseFloat(r, 64); err != nil || v <= 0 {
				return nil, fmt.Errorf("-rates: bad rate %q (want closed, a number of requests/s, or N%%)", r)
			}
			rs = append(rs, r)
		}
	}
	var out []bench.Workload
	for _, k := range splitList(workloads) {
		switch k {
		case bench.Echo, bench.HTTP:
			for _, r := range rs {
				for _, c := range cs {
					for _, s := range ss {
						for _, d := range ds {
							if k == bench.HTTP {
								s = 0
							}
							w := bench.Workload{Kind: k, Conns: c, Size: s, Depth: d, Rate: r}
							if !slices.Contains(out, w) {
								out = append(out, w)
							}
						}
					}
				}
			}
		case bench.Churn:
			for _, c := range cs {
				for _, s := range ss {
					out = append(out, bench.Workload{Kind: k, Conns: c, Size: s, Depth: 1})
				}
			}
		case bench.Idle:
			for _, c := range ics {
				out = append(out, bench.Workload{Kind: k, Conns: c, Size: 64, Depth: 1})
			}
		default:
			return nil, fmt.Errorf("-workloads: unknown workload %q (want echo, churn, idle, http)", k)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the matrix is empty")
	}
	return out, nil
}

func intList(name, s string, parse func(string) (int, error)) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		v, err := parse(f)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("-%s: bad value %q", name, f)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-%s is empty", name)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// goCommand returns the go command to build peers with: the one in PATH,
// else where Go's installer puts it.
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// progressBar draws a progress line on a terminal: runs done, time
// spent, time left, and the run in progress; redrawn every second.
type progressBar struct {
	w  io.Writer
	on bool

	mu    sync.Mutex
	p     bench.Progress // guarded by mu
	at    time.Time      // when p arrived; guarded by mu
	drawn bool           // guarded by mu
	stop  chan struct{}
	done  chan struct{}
}

func newProgressBar(w io.Writer) *progressBar {
	b := &progressBar{w: w, on: isTerminal(w), stop: make(chan struct{}), done: make(chan struct{})}
	if !b.on {
		close(b.done)
		return b
	}
	go func() {
		defer close(b.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.redraw()
			case <-b.stop:
				return
			}
		}
	}()
	return b
}

func (b *progressBar) update(p bench.Progress) {
	b.mu.Lock()
	b.p, b.at = p, time.Now()
	b.mu.Unlock()
	b.redraw()
}

// redraw draws the bar with the time since the last update accounted.
func (b *progressBar) redraw() {
	if !b.on {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.at.IsZero() {
		return
	}
	p := b.p
	since := time.Since(b.at)
	p.Elapsed += since
	p.Left = max(p.Left-since, 0)
	const width = 30
	filled := 0
	if p.Total > 0 {
		filled = width * p.Done / p.Total
	}
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	next := p.Next
	if len(next) > 48 {
		next = next[:48]
	}
	fmt.Fprintf(b.w, "\r\033[K[%s] %d/%d  %s elapsed, ~%s left  %s", bar, p.Done, p.Total, clock(p.Elapsed), clock(p.Left), next)
	b.drawn = true
}

// clear erases the bar, so that another line can be printed.
func (b *progressBar) clear() {
	if !b.on {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
}

// finish erases the bar and stops redrawing; it may be called twice.
func (b *progressBar) finish() {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
	b.clear()
}

// clock formats d as m:ss.
func clock(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// syscallsValue is -syscalls: a boolean flag (the network calls) that
// also takes "all".
type syscallsValue string

func (v *syscallsValue) String() string { return string(*v) }

func (v *syscallsValue) Set(s string) error {
	switch s {
	case "true", "net":
		*v = "net"
	case "all":
		*v = "all"
	case "false", "":
		*v = ""
	default:
		return fmt.Errorf("want true, net or all")
	}
	return nil
}

func (v *syscallsValue) IsBoolFlag() bool { return true }
