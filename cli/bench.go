package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/merlin-net/merlin/bench"
	"github.com/merlin-net/merlin/internal/figures"
)

const benchSynopsis = `Usage: merlin bench [flags]

bench runs the throughput suite on this host: a matrix of servers x
workloads x connections x sizes x depths x rates, -count rounds. Every run
starts its server afresh (merlin serve, or a peer) pinned to -server-cpu
with GOMAXPROCS=1 and one loop, drives it from this process pinned to
-client-cpu, warms up, then measures for -duration. Servers are interleaved
within each round. The echo and http workloads' generator drives every
connection from one thread through io_uring and never sleeps (-generator
ring), so that even a minimal C server is saturated; -generator net is a
goroutine per connection, as https, churn and idle always are.

Servers: every transport this host runs (transports' Drivers), each also
behind the net.Conn adapter ("NAME-netconn", a goroutine per connection)
unless -netconn=false, and the peers named by -peers (built from peers/
with go build). -servers picks some by name.

-http-tls runs the http workload over TLS, as the workload https: every
server is given -tls with a certificate made for the run, which the
generator verifies, and its connections shake hands when dialed, before
the load starts. Only servers that serve TLS run it: merlin's behind the
net.Conn adapter (NAME-netconn) and the peers that say tls=true (netstd,
fasthttp); the others are skipped.

For every run it records throughput; the server's CPU time per request
(from its CPU clock, split into user and system as /proc/PID/stat's 10 ms
ticks split it); its system calls per request
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
rounds gives p < 0.05, with an interval for the ratio; from -count 6 on,
also round by round ("by round": a Wilcoxon signed-rank test on each
round's ratio, the servers of a round having run back to back).

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
	merlin bench -servers libuvlike-netconn,uring-netconn,netstd -peers netstd -workloads http -http-tls -conns 256 -depths 1
`

// benchCmd is "merlin bench".
func benchCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench", benchSynopsis)
	var f bench.Flags
	f.Register(fs)
	if status, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return status
	}
	if err := f.Check(); err != nil {
		return usageError(fs, stderr, "%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	failed, err := runBench(ctx, &f, stdout, stderr)
	var ue *bench.UsageError
	switch {
	case errors.As(err, &ue):
		return usageError(fs, stderr, "%v", err)
	case err != nil:
		return fail(stderr, "bench", err)
	case failed > 0:
		return 1
	}
	return 0
}

// runBench runs the checked flags f: the plan on stderr, a benchmark line
// per run and the table on stdout, the results into f's directory. It
// returns how many runs failed; its error is for a bench that could not
// start or was stopped. merlin paper runs each part through it.
func runBench(ctx context.Context, f *bench.Flags, stdout, stderr io.Writer) (failed int, err error) {
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "merlin bench: "+format+"\n", a...) }
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	opts, dir, closeClient, err := f.Options(self, logf)
	if err != nil {
		return 0, err
	}
	defer closeClient()
	var names []string
	for _, s := range opts.Servers {
		names = append(names, s.Name)
	}
	logf("%d servers (%s), %d workloads, %d rounds, %v warm-up + %v per run; results in %s",
		len(opts.Servers), strings.Join(names, ", "), len(opts.Workloads), opts.Count, opts.Warmup, opts.Duration, dir)

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
	rep, runErr := bench.Run(ctx, opts)
	bar.finish()
	if rep == nil {
		return 0, runErr
	}
	if err := writeResults(rep, dir, opts.KProfile, stdout); err != nil {
		return 0, err
	}
	if runErr != nil {
		return 0, fmt.Errorf("stopped early: %w", runErr)
	}
	for _, r := range rep.Records {
		if r.Failed() {
			failed++
		}
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "merlin bench: %d of %d runs failed (see the comments in the output)\n", failed, len(rep.Records))
	}
	return failed, nil
}

// writeResults prints rep's table and writes its results (and, with
// kprofile, its figures) into dir.
func writeResults(rep *bench.Report, dir string, kprofile bool, stdout io.Writer) error {
	fmt.Fprintln(stdout)
	rep.WriteTable(stdout)
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{{"results.txt", rep.WriteBenchfmt}, {"results.json", rep.WriteJSON}, {"results.csv", rep.WriteCSV}} {
		if err := writeFile(filepath.Join(dir, f.name), f.write); err != nil {
			return err
		}
	}
	if kprofile {
		n, err := writeKProfiles(rep, dir)
		if err != nil {
			return err
		}
		if n > 0 {
			fmt.Fprintf(stdout, "\nkprofile: figures in %s/kprofile-*.{svg,png}, recordings in %s/kprofile\n", dir, dir)
		}
	}
	fmt.Fprintf(stdout, "\nresults: %s/results.{txt,json,csv}  (compare: benchstat -col /server %s/results.txt)\n", dir, dir)
	return nil
}

// writeKProfiles writes rep's kprofile figures into dir, as SVG and PNG,
// and returns how many.
func writeKProfiles(rep *bench.Report, dir string) (int, error) {
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
			return n, err
		}
		n++
	}
	return n, nil
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
