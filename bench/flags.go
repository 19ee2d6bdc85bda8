package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// Flags are merlin bench's settings as a command line gives them: the one
// definition that merlin bench parses and merlin paper plans and runs its
// parts with. Register adds them to a flag set; after parsing, Check
// validates them and Options turns them into the Options of a run.
type Flags struct {
	Quick           bool
	Servers         string // comma list; "uring:minwait=50us" adds options to a transport's spec
	Netconn         bool
	Peers, PeersDir string
	Workloads       string
	Conns, Sizes    string
	Depths, Rates   string
	IdleConns       string
	Count           int
	Warmup          time.Duration
	Duration        time.Duration
	IdleHold        time.Duration
	Timeout         time.Duration
	ServerCPU       int
	ClientCPU       int
	Perf            string // auto, on, off
	Syscalls        SyscallsFlag
	Profile         bool
	KProfile        bool
	KProfilePeriod  time.Duration
	Out             string
	ClientTransport string
	Generator       string
	HTTPPath        string
	HTTPBody        string
	HTTPTLS         bool

	fs *flag.FlagSet // the set Register added the flags to: which were given
}

// Register adds the flags to fs, with their defaults and help.
func (f *Flags) Register(fs *flag.FlagSet) {
	f.fs = fs
	fs.BoolVar(&f.Quick, "quick", false, "a one-minute smoke run (sets the matrix and windows unless given)")
	fs.StringVar(&f.Servers, "servers", "", "comma list of `servers` to run (default: every available transport and its -netconn mode, and the -peers)")
	fs.BoolVar(&f.Netconn, "netconn", true, "add each transport behind the net.Conn adapter (NAME-netconn)")
	fs.StringVar(&f.Peers, "peers", "", "comma list of `peers` to build and run (peers/: gnet, nbio: echo only; fasthttp: http only; netstd: both)")
	fs.StringVar(&f.PeersDir, "peers-dir", "", "the peers/ `directory` (default: found from the working directory up)")
	fs.StringVar(&f.Workloads, "workloads", "echo", "comma list of `workloads`: echo, churn, idle, http (http needs servers with an http app: -app http)")
	fs.StringVar(&f.Conns, "conns", "64", "comma list of connection counts (echo, churn, http)")
	fs.StringVar(&f.Sizes, "sizes", "64", "comma list of echo message sizes (k suffix: 4k)")
	fs.StringVar(&f.Depths, "depths", "1,16", "comma list of pipelining depths")
	fs.StringVar(&f.Rates, "rates", "closed", "comma list of `rates`: closed, requests/s, or N% of the slowest server's closed-loop throughput")
	fs.StringVar(&f.IdleConns, "idle-conns", "1000", "comma list of idle connection counts (workload idle)")
	fs.IntVar(&f.Count, "count", 5, "rounds")
	fs.DurationVar(&f.Warmup, "warmup", 2*time.Second, "warm-up before each measured window")
	fs.DurationVar(&f.Duration, "duration", 10*time.Second, "measured window of each run")
	fs.DurationVar(&f.IdleHold, "idle-hold", time.Second, "how long idle connections are held before the server's memory is read")
	fs.DurationVar(&f.Timeout, "timeout", 10*time.Second, "bound on each dial, exchange and server start")
	fs.IntVar(&f.ServerCPU, "server-cpu", 0, "CPU the servers are pinned to, with taskset (-1: none; default 0)")
	fs.IntVar(&f.ClientCPU, "client-cpu", 1, "CPU the load generator is pinned to (-1: none)")
	fs.StringVar(&f.Perf, "perf", "auto", "count system calls with perf: auto (if it works here), on (required), off")
	fs.Var(&f.Syscalls, "syscalls", "add counts per system call name: -syscalls for the 43 calls a network server makes (the rest counted as other), -syscalls=all for every syscalls:sys_enter_* tracepoint (perf then takes 10 s or more to attach and detach). Either slows the servers: take throughput from runs without it")
	fs.BoolVar(&f.Profile, "profile", false, "keep a CPU profile of every server run in -out/profiles, its transport counters beside it (NAME.stats.json)")
	fs.DurationVar(&f.KProfilePeriod, "kprofile-period", DefaultKProfilePeriod, "-kprofile's sampling period (each sample costs the server a timer interrupt)")
	fs.BoolVar(&f.KProfile, "kprofile", false, "sample each server over the window with perf record (kernel and user stacks) and split its CPU per request by category (TCP/IP, copies, syscalls, epoll, io_uring, scheduler, runtime, transport, app, perf, other); keeps the recordings in -out/kprofile")
	fs.StringVar(&f.Out, "out", "", "`directory` for results.txt, .json, .csv (default: a new directory under the system's temporary one)")
	fs.StringVar(&f.ClientTransport, "client-transport", "net", "the load generator's transport `spec`: net (Go's net package) or a transport")
	fs.StringVar(&f.Generator, "generator", "", "the echo and http workloads' generator `engine`: ring (every connection from one thread through io_uring, busy-polling, so that even a C server is saturated) net (a goroutine per connection), or wrk (the wrk program, one thread: the http workload's closed loop only, whole seconds, statuses checked and bodies not); default ring where it runs, net with -client-transport; https always runs on net")
	fs.StringVar(&f.HTTPPath, "http-path", "/plaintext", "http: the path requested")
	fs.StringVar(&f.HTTPBody, "http-body", "", "http: the body every response must have (default: TechEmpower's for /plaintext and /json, the request's for /echo, any elsewhere)")
	fs.BoolVar(&f.HTTPTLS, "http-tls", false, "http: over TLS, as the workload https: servers run -tls with a certificate made for the run, which the generator verifies; servers that cannot serve TLS (merlin's transports without the adapter, most peers) are skipped")
}

// ParseFlags parses a merlin bench command line (no positional arguments)
// and checks it. Its errors are UsageErrors.
func ParseFlags(args []string) (*Flags, error) {
	f := new(Flags)
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.Register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, &UsageError{err}
	}
	if fs.NArg() > 0 {
		return nil, &UsageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if err := f.Check(); err != nil {
		return nil, err
	}
	return f, nil
}

// UsageError is a command line bench cannot run with: a bad flag or value.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, a ...any) error { return &UsageError{fmt.Errorf(format, a...)} }

// given reports whether the flag name was on the command line.
func (f *Flags) given(name string) bool {
	found := false
	if f.fs != nil {
		f.fs.Visit(func(fl *flag.Flag) { found = found || fl.Name == name })
	}
	return found
}

// Check applies -quick's settings to the flags not given, and validates
// the values. Its errors are UsageErrors.
func (f *Flags) Check() error {
	if f.Quick {
		f.quick()
	}
	if _, err := f.Matrix(); err != nil {
		return err
	}
	switch {
	case f.Count < 1:
		return usagef("-count must be at least 1")
	case f.Duration <= 0 || f.Warmup < 0 || f.Timeout <= 0 || f.IdleHold <= 0:
		return usagef("-duration, -timeout and -idle-hold must be positive, -warmup not negative")
	case f.Perf != "auto" && f.Perf != "on" && f.Perf != "off":
		return usagef("-perf %s: want auto, on or off", f.Perf)
	case f.Syscalls != "" && f.Perf == "off":
		return usagef("-syscalls counts with perf: it cannot run with -perf off")
	case f.KProfile && f.Perf == "off":
		return usagef("-kprofile samples with perf: it cannot run with -perf off")
	case f.KProfilePeriod < 10*time.Microsecond:
		return usagef("-kprofile-period must be at least 10µs")
	}
	return nil
}

// quick sets -quick's first look, about a minute, where not given: short
// windows, one round, sockets-netconn only.
func (f *Flags) quick() {
	set := func(name string, apply func()) {
		if !f.given(name) {
			apply()
		}
	}
	set("workloads", func() { f.Workloads = "echo,idle" })
	set("rates", func() { f.Rates = "closed,50%" })
	set("idle-conns", func() { f.IdleConns = "256" })
	set("count", func() { f.Count = 1 })
	set("warmup", func() { f.Warmup = 300 * time.Millisecond })
	set("duration", func() { f.Duration = 1500 * time.Millisecond })
	set("idle-hold", func() { f.IdleHold = 300 * time.Millisecond })
	set("netconn", func() { f.Netconn = false }) // sockets-netconn is added by servers
}

// Matrix expands the list flags into workloads.
func (f *Flags) Matrix() ([]Workload, error) {
	cs, err := intList("conns", f.Conns)
	if err != nil {
		return nil, err
	}
	ss, err := intList("sizes", f.Sizes)
	if err != nil {
		return nil, err
	}
	ds, err := intList("depths", f.Depths)
	if err != nil {
		return nil, err
	}
	ics, err := intList("idle-conns", f.IdleConns)
	if err != nil {
		return nil, err
	}
	rs, err := rateList(f.Rates)
	if err != nil {
		return nil, err
	}
	var out []Workload
	hasHTTP := false
	for _, k := range SplitList(f.Workloads) {
		switch k {
		case Echo, HTTP:
			if k == HTTP {
				hasHTTP = true
			}
			for _, r := range rs {
				for _, c := range cs {
					for _, s := range ss {
						for _, d := range ds {
							kind := k
							if k == HTTP {
								s = 0
								if f.HTTPTLS {
									kind = HTTPS
								}
							}
							if w := (Workload{Kind: kind, Conns: c, Size: s, Depth: d, Rate: r}); !slices.Contains(out, w) {
								out = append(out, w)
							}
						}
					}
				}
			}
		case Churn:
			for _, c := range cs {
				for _, s := range ss {
					out = append(out, Workload{Kind: k, Conns: c, Size: s, Depth: 1})
				}
			}
		case Idle:
			for _, c := range ics {
				out = append(out, Workload{Kind: k, Conns: c, Size: 64, Depth: 1})
			}
		default:
			return nil, usagef("-workloads: unknown workload %q (want echo, churn, idle, http)", k)
		}
	}
	if f.HTTPTLS && !hasHTTP {
		return nil, usagef("-http-tls needs the http workload (-workloads http)")
	}
	if len(out) == 0 {
		return nil, usagef("the matrix is empty")
	}
	return out, nil
}

// rateList parses -rates: "" for closed, else the rate as given.
func rateList(s string) ([]string, error) {
	var rs []string
	for _, r := range SplitList(s) {
		switch {
		case r == "closed":
			rs = append(rs, "")
		case strings.HasSuffix(r, "%"):
			if p, err := strconv.ParseFloat(strings.TrimSuffix(r, "%"), 64); err != nil || p <= 0 {
				return nil, usagef("-rates: bad percentage %q", r)
			}
			rs = append(rs, r)
		default:
			if v, err := strconv.ParseFloat(r, 64); err != nil || v <= 0 {
				return nil, usagef("-rates: bad rate %q (want closed, a number of requests/s, or N%%)", r)
			}
			rs = append(rs, r)
		}
	}
	return rs, nil
}

func intList(name, s string) ([]int, error) {
	var out []int
	for _, f := range SplitList(s) {
		v, err := transports.ParseSize(f)
		if err != nil || v < 1 {
			return nil, usagef("-%s: bad value %q", name, f)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, usagef("-%s is empty", name)
	}
	return out, nil
}

// SplitList splits a comma list, dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Plan is what a command line will run, without running or building
// anything: its runs and their estimated time.
type Plan struct {
	Servers, Workloads, Count int
	Runs                      int
	Warmup, Duration          time.Duration
	Total                     time.Duration
}

// Plan estimates the runs of the checked flags, each taking overhead
// beyond its warm-up and window. Servers are counted as Options would
// list them, peers by name, unbuilt.
func (f *Flags) Plan(self string, overhead time.Duration) (Plan, error) {
	matrix, err := f.Matrix()
	if err != nil {
		return Plan{}, err
	}
	srvs, err := f.servers(self, nil)
	if err != nil {
		return Plan{}, err
	}
	o := Options{Servers: srvs, Workloads: matrix, Count: f.Count, Warmup: f.Warmup, Duration: f.Duration, IdleHold: f.IdleHold}
	runs, total := Estimate(o, overhead)
	return Plan{Servers: len(srvs), Workloads: len(matrix), Count: f.Count, Runs: runs, Warmup: f.Warmup, Duration: f.Duration, Total: total}, nil
}

// String describes p's runs, for a plan printed before a long run.
func (p Plan) String(overhead time.Duration) string {
	w := fmt.Sprint(p.Workloads)
	if n := p.Runs / max(1, p.Servers*p.Count); n > p.Workloads {
		// Relative rates need their closed loops measured first.
		w = fmt.Sprintf("(%d + %d closed loops for the rates)", p.Workloads, n-p.Workloads)
	}
	return fmt.Sprintf("%d runs = %d servers x %s workloads x %d rounds, each %v warm-up + %v window + %v overhead",
		p.Runs, p.Servers, w, p.Count, p.Warmup, p.Duration, overhead)
}

// Options turns the checked flags into the Options of a run whose servers
// run self's `serve` for merlin's transports, building the peers named
// (logf says how long that took) and creating the output directory. The
// directory is in Options' output fields and returned; close releases
// the client transport, if any.
func (f *Flags) Options(self string, logf func(string, ...any)) (o Options, dir string, close func(), err error) {
	close = func() {}
	matrix, err := f.Matrix()
	if err != nil {
		return o, "", close, err
	}
	o = Options{
		Count: f.Count, Warmup: f.Warmup, Duration: f.Duration, IdleHold: f.IdleHold, Timeout: f.Timeout,
		ServerCPU: f.ServerCPU, ClientCPU: f.ClientCPU, Syscalls: string(f.Syscalls),
		Workloads: matrix, ClientTransport: f.ClientTransport, Generator: f.Generator, HTTPPath: f.HTTPPath, Log: logf,
	}
	if f.HTTPBody != "" {
		o.HTTPBody = []byte(f.HTTPBody)
	}
	if err := f.pin(&o, logf); err != nil {
		return o, "", close, err
	}
	f.perf(&o, logf)
	build := func(names []string) ([]Server, error) {
		start := time.Now()
		ps, err := f.buildPeers(names)
		if err == nil {
			logf("built peers %s in %v", strings.Join(names, ","), time.Since(start).Round(time.Millisecond))
		}
		return ps, err
	}
	if o.Servers, err = f.servers(self, build); err != nil {
		return o, "", close, err
	}
	if f.ClientTransport != "net" {
		t, err := transports.Open(f.ClientTransport, transports.Config{})
		if err != nil {
			return o, "", close, fmt.Errorf("-client-transport: %w", err)
		}
		close = func() { t.Close() }
		o.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
			return transports.DialNet(ctx, t, network, address)
		}
	}
	if dir, err = f.outDir(); err != nil {
		close()
		return o, "", func() {}, err
	}
	if f.Profile {
		o.ProfileDir = filepath.Join(dir, "profiles")
	}
	if f.KProfile {
		o.KProfile, o.KProfilePeriod, o.KProfileDir = true, f.KProfilePeriod, filepath.Join(dir, "kprofile")
	}
	return o, dir, close, nil
}

// pin pins servers and the generator: on two CPUs with taskset, else
// unpinned, said loudly.
func (f *Flags) pin(o *Options, logf func(string, ...any)) error {
	if f.ServerCPU < 0 && f.ClientCPU < 0 {
		return nil
	}
	if runtime.NumCPU() < 2 {
		logf("one CPU: servers and the generator run unpinned on it (figures are then not comparable with pinned runs)")
		o.ServerCPU, o.ClientCPU = -1, -1
		return nil
	}
	if f.ServerCPU >= 0 {
		ts, err := exec.LookPath("taskset")
		if err != nil {
			return fmt.Errorf("pinning servers needs taskset (util-linux): %w; or run with -server-cpu -1", err)
		}
		o.Taskset = ts
	}
	return nil
}

// perf sets the perf command where -perf, -syscalls or -kprofile want it.
func (f *Flags) perf(o *Options, logf func(string, ...any)) {
	switch {
	case f.Perf == "on" || f.KProfile:
		// -kprofile fails early, naming what is missing, without perf.
		o.Perf = "perf"
	case f.Perf == "auto":
		if _, err := ProbePerf("perf"); err != nil {
			logf("system calls will not be counted: %v", err)
		} else {
			o.Perf = "perf"
		}
	}
}

// outDir makes -out, or a new temporary directory.
func (f *Flags) outDir() (string, error) {
	if f.Out == "" {
		return os.MkdirTemp("", "merlin-bench-"+time.Now().Format("20060102-150405")+"-")
	}
	return f.Out, os.MkdirAll(f.Out, 0o755)
}

// servers lists the servers to run: merlin's transports (self serve),
// then the peers (built by build; with build nil, named only), then
// those -servers picks.
func (f *Flags) servers(self string, build func([]string) ([]Server, error)) ([]Server, error) {
	srvs, err := transportServers(self, f.Servers, f.Netconn, f.Quick && !f.given("netconn"))
	if err != nil {
		return nil, err
	}
	if peers := SplitList(f.Peers); len(peers) > 0 {
		var ps []Server
		if build == nil {
			for _, p := range peers {
				// Unbuilt, unasked: taken to serve every app, TLS too.
				ps = append(ps, Server{Name: p, Kind: KindPeer, TLS: true})
			}
		} else if ps, err = build(peers); err != nil {
			return nil, err
		}
		srvs = append(srvs, ps...)
	}
	if f.Servers != "" {
		srvs, err = PickServers(srvs, SplitServers(f.Servers))
	}
	if err == nil && len(srvs) == 0 {
		err = errors.New("no servers to run: no transport runs here, and no -peers")
	}
	return srvs, err
}

// buildPeers builds the peers named, from -peers-dir (or the peers/ found
// from the working directory up), into the user's cache.
func (f *Flags) buildPeers(names []string) ([]Server, error) {
	dir := f.PeersDir
	if dir == "" {
		wd, _ := os.Getwd()
		var err error
		if dir, err = FindPeers(wd); err != nil {
			return nil, err
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	return BuildPeers(goCommand(), dir, filepath.Join(cache, "merlin", "peers"), names)
}

// goCommand returns the go command to build peers with: the one in PATH,
// else where Go's installer puts it.
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// transportServers lists the default servers: every registered transport
// this host runs, on one loop, run by self's serve, and with netconn each
// behind the adapter (with quickNetconn, only sockets').
func transportServers(self, selected string, netconn, quickNetconn bool) ([]Server, error) {
	var out []Server
	for _, d := range transports.Drivers() {
		if _, err := d.Probe(); err != nil {
			if selected != "" && slices.Contains(SplitList(selected), d.Name) {
				return nil, fmt.Errorf("transport %s does not run here: %w", d.Name, err)
			}
			continue
		}
		argv := []string{self, "serve", "-transport", d.Name + ":loops=1"}
		mech := MechEpoll // sockets through Go's netpoller, libuvlike its own
		if d.Name == "uring" {
			mech = MechUring
		}
		out = append(out, Server{Name: d.Name, Kind: KindTransport, Argv: argv, Stats: true, Mechanism: mech})
		if netconn || selected != "" || (quickNetconn && d.Name == "sockets") {
			// -tls runs the app behind the adapter: only the netconn
			// servers serve TLS (an inline server given -tls would
			// silently be its netconn twin).
			out = append(out, Server{Name: d.Name + "-netconn", Kind: KindNetConn, Argv: append(slices.Clone(argv), "-netconn"), Stats: true, Mechanism: mech, TLS: true})
		}
	}
	return out, nil
}

// PickServers keeps the servers named, in the order named. A name with
// options, "uring:minwait=50us", is that server with the options added to
// its transport spec, so that settings can be compared in one run.
func PickServers(all []Server, names []string) ([]Server, error) {
	var out []Server
	for _, n := range names {
		base, opts, _ := strings.Cut(n, ":")
		i := slices.IndexFunc(all, func(s Server) bool { return s.Name == base })
		switch {
		case i < 0:
			var have []string
			for _, s := range all {
				have = append(have, s.Name)
			}
			return nil, fmt.Errorf("no server %q here (have: %s; peers need -peers)", n, strings.Join(have, ", "))
		case opts != "":
			srv, err := withOptions(all[i], n, opts)
			if err != nil {
				return nil, err
			}
			out = append(out, srv)
		default:
			out = append(out, all[i])
		}
	}
	return out, nil
}

// SplitServers splits a -servers list; a key=value item after a server
// with options belongs to it: "uring:a=1,b=2,gnet" is uring:a=1,b=2 and
// gnet.
func SplitServers(s string) []string {
	var out []string
	for _, item := range SplitList(s) {
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
func withOptions(srv Server, name, opts string) (Server, error) {
	j := slices.Index(srv.Argv, "-transport")
	if srv.Kind == KindPeer || j < 0 || j+1 >= len(srv.Argv) {
		return Server{}, fmt.Errorf("server %q: options are for merlin's transports, not %s", name, srv.Name)
	}
	spec := srv.Argv[j+1] + "," + opts
	if _, err := transports.ParseSpec(spec); err != nil {
		return Server{}, fmt.Errorf("server %q: %w", name, err)
	}
	srv.Name = name
	srv.Argv = slices.Clone(srv.Argv)
	srv.Argv[j+1] = spec
	return srv, nil
}

// SyscallsFlag is -syscalls: a boolean flag (the network calls, "net")
// that also takes "all".
type SyscallsFlag string

func (v *SyscallsFlag) String() string { return string(*v) }

// Set parses the flag's value.
func (v *SyscallsFlag) Set(s string) error {
	switch s {
	case "true", "net":
		*v = "net"
	case "all":
		*v = "all"
	case "false", "":
		*v = ""
	default:
		return errors.New("want true, net or all")
	}
	return nil
}

// IsBoolFlag lets -syscalls go without a value.
func (v *SyscallsFlag) IsBoolFlag() bool { return true }
