package cli

import (
	"bytes"
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/merlin-net/merlin/bench"
	"github.com/merlin-net/merlin/internal/figures"
	"github.com/merlin-net/merlin/internal/paper"
)

const paperSynopsis = `Usage: merlin paper [flags] DIR

paper runs a paper: DIR (papers/NNNN-slug) holds a spec (the merlin bench
runs, one per named part) and template.md (the prose). paper prints the
runs and their estimated time, runs each part's merlin bench into
DIR/results/PART (results.txt for benchstat, .json, .csv, and bench's
output), writes results/run.json (command, merlin commit, times), then
regenerates DIR's figures/ (SVG and PNG), tables/, host.md and README.md
(the template with the host, the plan, the figures and the tables put in).

With -out DIR2 it runs DIR's spec into DIR2 instead (copying the spec and
template there), then compares DIR2's shape with DIR's results: for every
cell, metric and pair of servers whose rounds differ in DIR (Mann-Whitney
U, p < 0.05), whether DIR2 keeps the order, loses it within noise
(faded), or reverses it significantly (flipped) (DIR2/compare.md). It
exits 1 if one flipped or is missing.

Spec lines ("#" starts a comment; an indented line continues the one
before):

	title     Kestrel's question in Go
	bench     -servers sockets,uring -peers gnet -count 5 -warmup 1s -duration 3s
	part      sweep -workloads echo -conns 1,64,1000 -sizes 64,4k -depths 1,16
	part      latency -conns 64 -sizes 64 -depths 1 -rates 25%,50%,75%,90%
	baseline  sockets                      # tables give ratios against it
	compare   req/s cpu-ns/req p99-ns      # metrics a rerun must keep in order
	overhead  500ms                        # per run, beyond warm-up and window

template.md markers, each alone on a line: <!-- paper:host -->,
<!-- paper:plan -->, <!-- paper:spec -->, <!-- paper:spread -->,
<!-- paper:results PART -->. Parts not placed go at the end.

Examples:

	merlin paper -dry-run papers/0001-kestrel
	merlin paper papers/0001-kestrel
	merlin paper -replot papers/0001-kestrel
	merlin paper -out /tmp/rerun papers/0001-kestrel
	merlin paper -compare /tmp/rerun papers/0001-kestrel
`

// defaultOverhead is a run's time beyond its warm-up and window when the
// spec says none: starting and stopping the server, perf attaching,
// dialing.
const defaultOverhead = 500 * time.Millisecond

// paperCmd is "merlin paper".
func paperCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("paper", paperSynopsis)
	replot := fs.Bool("replot", false, "regenerate figures, tables, host.md and README.md from DIR's results, without running")
	dryRun := fs.Bool("dry-run", false, "print the merlin bench runs and the estimated time, and stop")
	out := fs.String("out", "", "run into `DIR2` instead of DIR, then compare DIR2's shape with DIR's")
	compareDir := fs.String("compare", "", "compare `DIR2`'s results with DIR's, without running")
	overheadFlag := fs.Duration("overhead", 0, "per-run time beyond warm-up and window for the estimate (default: the spec's, else 500ms)")
	dpi := fs.Int("png-dpi", figures.DefaultDPI, "resolution of the PNG figures, in dots per inch")
	typed := args // as given, for the record in run.json
	// DIR may come before the flags or after them.
	var dir string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		dir, args = args[0], args[1:]
	}
	var msg bytes.Buffer
	full := fs.Usage
	fs.Usage = func() {}
	fs.SetOutput(&msg)
	err := fs.Parse(args)
	fs.Usage = full
	fs.SetOutput(stderr)
	switch {
	case err == flag.ErrHelp:
		fs.SetOutput(stdout)
		fs.Usage()
		return 0
	case err != nil:
		return usageError(fs, stderr, "%s", strings.TrimSpace(msg.String()))
	}
	if dir == "" && fs.NArg() > 0 {
		dir = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return usageError(fs, stderr, "%v", err)
		}
	}
	switch {
	case dir == "":
		return usageError(fs, stderr, "name the paper's directory")
	case fs.NArg() > 0:
		return usageError(fs, stderr, "unexpected argument %q", fs.Arg(0))
	case boolCount(*replot, *dryRun, *out != "", *compareDir != "") > 1:
		return usageError(fs, stderr, "-replot, -dry-run, -out and -compare go alone")
	}

	if *compareDir != "" {
		return comparePapers(dir, *compareDir, stdout, stderr)
	}
	if *replot {
		return render(dir, *dpi, stdout, stderr)
	}

	spec, err := paper.LoadSpec(dir)
	if err != nil {
		return fail(stderr, "paper", err)
	}
	overhead := cmp.Or(*overheadFlag, spec.Overhead, defaultOverhead)
	target := cmp.Or(*out, dir)

	// The plan, up front.
	type planned struct {
		part   paper.Part
		args   []string
		runs   int
		est    time.Duration
		detail string
	}
	var plan []planned
	var total time.Duration
	for _, p := range spec.Parts {
		args := append(spec.Args(p), "-out", filepath.Join(target, paper.ResultsDir, p.Name))
		pl, err := planBench(spec.Args(p), overhead)
		if err != nil {
			return fail(stderr, "paper", fmt.Errorf("part %s: %w", p.Name, err))
		}
		plan = append(plan, planned{part: p, args: args, runs: pl.runs, est: pl.total, detail: pl.String(overhead)})
		total += pl.total
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "paper %s: %s\n", dir, spec.Title)
	for _, p := range plan {
		fmt.Fprintf(tw, "  %s\t%s\t~%v\n", p.part.Name, p.detail, p.est.Round(time.Second))
	}
	fmt.Fprintf(tw, "  total\t\t~%v (finishing about %s)\n", total.Round(time.Second), time.Now().Add(total).Format("15:04"))
	tw.Flush()
	if *dryRun {
		fmt.Fprintln(stdout)
		for _, p := range plan {
			fmt.Fprintf(stdout, "merlin bench %s\n", paper.QuoteArgs(p.args))
		}
		return 0
	}

	if target != dir {
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fail(stderr, "paper", err)
		}
		for _, f := range []string{paper.SpecFile, paper.TemplateFile} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err == nil {
				err = os.WriteFile(filepath.Join(target, f), b, 0o644)
			}
			if err != nil {
				return fail(stderr, "paper", err)
			}
		}
	}
	info := &paper.RunInfo{
		Command:  "merlin paper " + paper.QuoteArgs(typed),
		Commit:   merlinCommit(dir),
		Started:  time.Now().UTC(),
		Estimate: total.Seconds(),
		Overhead: overhead.Seconds(),
	}
	// merlin bench stops its run at SIGINT or SIGTERM and returns; the
	// paper then stops too, instead of going on with the next part.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	failed := 0
	for i, p := range plan {
		if ctx.Err() != nil {
			return fail(stderr, "paper", fmt.Errorf("interrupted before part %s: %s holds the parts run so far, not a paper", p.part.Name, target))
		}
		resDir := filepath.Join(target, paper.ResultsDir, p.part.Name)
		if err := os.RemoveAll(resDir); err != nil {
			return fail(stderr, "paper", err)
		}
		if err := os.MkdirAll(resDir, 0o755); err != nil {
			return fail(stderr, "paper", err)
		}
		log, err := os.Create(filepath.Join(resDir, "output.txt"))
		if err != nil {
			return fail(stderr, "paper", err)
		}
		fmt.Fprintf(stdout, "\n== part %s (%d of %d): %d runs, ~%v\n", p.part.Name, i+1, len(plan), p.runs, p.est.Round(time.Second))
		start := time.Now()
		status := benchCmd(p.args, io.MultiWriter(stdout, log), stderr)
		log.Close()
		took := time.Since(start)
		info.Parts = append(info.Parts, paper.PartInfo{Name: p.part.Name, Args: p.args, Runs: p.runs, Estimate: p.est.Seconds(), Elapsed: took.Seconds(), Status: status})
		fmt.Fprintf(stdout, "== part %s: %v (estimated %v), exit status %d\n", p.part.Name, took.Round(time.Second), p.est.Round(time.Second), status)
		if ctx.Err() != nil {
			return fail(stderr, "paper", fmt.Errorf("interrupted during part %s: %s holds the parts run so far, not a paper", p.part.Name, target))
		}
		if status == 2 {
			return fail(stderr, "paper", fmt.Errorf("part %s: merlin bench refused its arguments", p.part.Name))
		}
		if status != 0 {
			failed++
			if _, err := os.Stat(filepath.Join(resDir, "results.json")); err != nil {
				return fail(stderr, "paper", fmt.Errorf("part %s: merlin bench wrote no results", p.part.Name))
			}
		}
	}
	info.Elapsed = time.Since(info.Started).Seconds()
	if err := paper.WriteRunInfo(target, info); err != nil {
		return fail(stderr, "paper", err)
	}
	fmt.Fprintf(stdout, "\nran %s in %v (estimated %v)\n", dir, time.Duration(info.Elapsed*float64(time.Second)).Round(time.Second), total.Round(time.Second))
	status := render(target, *dpi, stdout, stderr)
	if status == 0 && target != dir {
		status = comparePapers(dir, target, stdout, stderr)
	}
	if status == 0 && failed > 0 {
		fmt.Fprintf(stderr, "merlin paper: %d parts had failed runs (see their results)\n", failed)
		status = 1
	}
	return status
}

func boolCount(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// render regenerates dir's figures, tables and README.
func render(dir string, dpi int, stdout, stderr io.Writer) int {
	r, err := paper.Render(dir, paper.RenderOptions{PNGDPI: dpi})
	if err != nil {
		return fail(stderr, "paper", err)
	}
	fmt.Fprintf(stdout, "wrote %s, %s, %d figures (SVG and PNG) in %s, %d tables in %s\n",
		filepath.Join(dir, paper.ReadmeFile), filepath.Join(dir, paper.HostFile), len(r.Figures), filepath.Join(dir, paper.FiguresDir), len(r.Tables), filepath.Join(dir, paper.TablesDir))
	if r.VerdictPending {
		fmt.Fprintf(stdout, "the verdict is not written yet: %s still says VERDICT-PENDING\n", filepath.Join(dir, paper.TemplateFile))
	}
	return 0
}

// comparePapers compares rerun's results with orig's, writes
// rerun/compare.md and returns 1 if an ordered pair did not hold.
func comparePapers(orig, rerun string, stdout, stderr io.Writer) int {
	o, err := paper.Load(orig)
	if err != nil {
		return fail(stderr, "paper", err)
	}
	n, err := paper.Load(rerun)
	if err != nil {
		return fail(stderr, "paper", err)
	}
	c := paper.Compare(o.Summaries(), n.Summaries(), o.PartNames(), o.Spec.Compare)
	var b bytes.Buffer
	c.Write(&b, orig, rerun)
	path := filepath.Join(rerun, paper.CompareFile)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fail(stderr, "paper", err)
	}
	fmt.Fprintf(stdout, "shape of %s against %s: %d ordered pairs, %d held, %d faded, %d flipped, %d missing; %d within noise (%s)\n",
		rerun, orig, c.Ordered, c.Held, c.Faded, c.Flipped, c.Missing, c.Within, path)
	if !c.OK() {
		fmt.Fprintf(stderr, "merlin paper: the rerun did not keep the shape: see %s\n", path)
		return 1
	}
	return 0
}

// merlinCommit names the git commit of the tree holding dir, with
// "+dirty" if files outside papers/ have uncommitted changes.
func merlinCommit(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown (not in a git checkout)"
	}
	c := strings.TrimSpace(string(out))
	top, err := exec.Command("git", "-C", dir, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return c
	}
	st, err := exec.Command("git", "-C", strings.TrimSpace(string(top)), "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)papers").Output()
	if err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += "+dirty"
	}
	return c
}

// benchPlan is a part's plan: its runs and their estimated time.
type benchPlan struct {
	servers, workloads, count int
	runs                      int
	warmup, duration          time.Duration
	total                     time.Duration
}

func (p benchPlan) String(overhead time.Duration) string {
	w := fmt.Sprint(p.workloads)
	if n := p.runs / max(1, p.servers*p.count); n > p.workloads {
		// Relative rates need their closed loops measured first.
		w = fmt.Sprintf("(%d + %d closed loops for the rates)", p.workloads, n-p.workloads)
	}
	return fmt.Sprintf("%d runs = %d servers x %s workloads x %d rounds, each %v warm-up + %v window + %v overhead",
		p.runs, p.servers, w, p.count, p.warmup, p.duration, overhead)
}

// planBench parses a part's merlin bench arguments as bench does, as far
// as its plan needs (the servers, the matrix, the rounds, the windows),
// and estimates its time with bench.Estimate. The flags and defaults
// mirror bench.go's; TestPaperMirrorsBenchFlags keeps them in step.
func planBench(args []string, overhead time.Duration) (benchPlan, error) {
	fs, a := benchMirror()
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return benchPlan{}, fmt.Errorf("merlin bench %s: %w", paper.QuoteArgs(args), err)
	}
	if fs.NArg() > 0 {
		return benchPlan{}, fmt.Errorf("merlin bench: unexpected argument %q", fs.Arg(0))
	}
	matrix, err := buildMatrix(a.workloads, a.conns, a.sizes, a.depths, a.rates, a.idleConns)
	if err != nil {
		return benchPlan{}, err
	}
	var srvs []bench.Server
	for _, s := range splitList(a.servers) {
		srvs = append(srvs, bench.Server{Name: s})
	}
	if len(srvs) == 0 {
		return benchPlan{}, fmt.Errorf("no servers: name them with -servers")
	}
	o := bench.Options{Servers: srvs, Workloads: matrix, Count: a.count, Warmup: a.warmup, Duration: a.duration, IdleHold: a.idleHold}
	runs, total := bench.Estimate(o, overhead)
	return benchPlan{servers: len(srvs), workloads: len(matrix), count: a.count, runs: runs, warmup: a.warmup, duration: a.duration, total: total}, nil
}

// benchArgs are the merlin bench flags a plan needs.
type benchArgs struct {
	servers, workloads, conns, sizes, depths, rates, idleConns string
	count                                                      int
	warmup, duration, idleHold                                 time.Duration
}

// benchMirror returns a flag set with merlin bench's flags and defaults.
func benchMirror() (*flag.FlagSet, *benchArgs) {
	a := &benchArgs{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&a.servers, "servers", "", "")
	fs.StringVar(&a.workloads, "workloads", "echo", "")
	fs.StringVar(&a.conns, "conns", "64", "")
	fs.StringVar(&a.sizes, "sizes", "64", "")
	fs.StringVar(&a.depths, "depths", "1,16", "")
	fs.StringVar(&a.rates, "rates", "closed", "")
	fs.StringVar(&a.idleConns, "idle-conns", "1000", "")
	fs.IntVar(&a.count, "count", 5, "")
	fs.DurationVar(&a.warmup, "warmup", 2*time.Second, "")
	fs.DurationVar(&a.duration, "duration", 10*time.Second, "")
	fs.DurationVar(&a.idleHold, "idle-hold", time.Second, "")
	// The others: parsed, not needed for the plan.
	for _, s := range []string{"peers", "peers-dir", "perf", "out", "client-transport", "generator", "http-path", "http-body"} {
		fs.String(s, "", "")
	}
	fs.Duration("timeout", 10*time.Second, "")
	fs.Duration("kprofile-period", 0, "")
	fs.Int("server-cpu", 0, "")
	fs.Int("client-cpu", 1, "")
	for _, s := range []string{"quick", "netconn", "profile", "kprofile"} {
		fs.Bool(s, false, "")
	}
	var sc syscallsValue
	fs.Var(&sc, "syscalls", "")
	return fs, a
}
