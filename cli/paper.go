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
	var a paperArgs
	a.register(fs)
	dir, status, ok := parsePaperArgs(fs, args, stdout, stderr)
	if !ok {
		return status
	}
	switch {
	case boolCount(a.replot, a.dryRun, a.out != "", a.compare != "") > 1:
		return usageError(fs, stderr, "-replot, -dry-run, -out and -compare go alone")
	case a.compare != "":
		return comparePapers(dir, a.compare, stdout, stderr)
	case a.replot:
		return render(dir, a.dpi, stdout, stderr)
	}
	spec, err := paper.LoadSpec(dir)
	if err != nil {
		return fail(stderr, "paper", err)
	}
	overhead := cmp.Or(a.overhead, spec.Overhead, defaultOverhead)
	target := cmp.Or(a.out, dir)
	plan, total, err := planPaper(spec, target, overhead)
	if err != nil {
		return fail(stderr, "paper", err)
	}
	printPlan(stdout, dir, spec.Title, plan, total, overhead)
	if a.dryRun {
		fmt.Fprintln(stdout)
		for _, p := range plan {
			fmt.Fprintf(stdout, "merlin bench %s\n", paper.QuoteArgs(p.args))
		}
		return 0
	}
	info := &paper.RunInfo{
		Command:  "merlin paper " + paper.QuoteArgs(args),
		Commit:   merlinCommit(dir),
		Started:  time.Now().UTC(),
		Estimate: total.Seconds(),
		Overhead: overhead.Seconds(),
	}
	return runPaper(dir, target, plan, info, a.dpi, stdout, stderr)
}

// runPaper runs the plan of paper dir into target, renders target, and
// compares it with dir if they differ; it returns the exit status.
func runPaper(dir, target string, plan []plannedPart, info *paper.RunInfo, dpi int, stdout, stderr io.Writer) int {
	if target != dir {
		if err := copySpec(dir, target); err != nil {
			return fail(stderr, "paper", err)
		}
	}
	failed, err := runParts(plan, target, info, stdout, stderr)
	if err != nil {
		return fail(stderr, "paper", err)
	}
	fmt.Fprintf(stdout, "\nran %s in %v (estimated %v)\n", dir, time.Duration(info.Elapsed*float64(time.Second)).Round(time.Second), time.Duration(info.Estimate*float64(time.Second)).Round(time.Second))
	if status := render(target, dpi, stdout, stderr); status != 0 {
		return status
	}
	if target != dir {
		if status := comparePapers(dir, target, stdout, stderr); status != 0 {
			return status
		}
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "merlin paper: %d parts had failed runs (see their results)\n", failed)
		return 1
	}
	return 0
}

// paperArgs are merlin paper's flags.
type paperArgs struct {
	replot, dryRun bool
	out, compare   string
	overhead       time.Duration
	dpi            int
}

func (a *paperArgs) register(fs *flag.FlagSet) {
	fs.BoolVar(&a.replot, "replot", false, "regenerate figures, tables, host.md and README.md from DIR's results, without running")
	fs.BoolVar(&a.dryRun, "dry-run", false, "print the merlin bench runs and the estimated time, and stop")
	fs.StringVar(&a.out, "out", "", "run into `DIR2` instead of DIR, then compare DIR2's shape with DIR's")
	fs.StringVar(&a.compare, "compare", "", "compare `DIR2`'s results with DIR's, without running")
	fs.DurationVar(&a.overhead, "overhead", 0, "per-run time beyond warm-up and window for the estimate (default: the spec's, else 500ms)")
	fs.IntVar(&a.dpi, "png-dpi", figures.DefaultDPI, "resolution of the PNG figures, in dots per inch")
}

// parsePaperArgs parses paper's command line, whose DIR may come before
// the flags or after them. ok false means stop with status.
func parsePaperArgs(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (dir string, status int, ok bool) {
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
		return "", 0, false
	case err != nil:
		return "", usageError(fs, stderr, "%s", strings.TrimSpace(msg.String())), false
	}
	if dir == "" && fs.NArg() > 0 {
		dir = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return "", usageError(fs, stderr, "%v", err), false
		}
	}
	switch {
	case dir == "":
		return "", usageError(fs, stderr, "name the paper's directory"), false
	case fs.NArg() > 0:
		return "", usageError(fs, stderr, "unexpected argument %q", fs.Arg(0)), false
	}
	return dir, 0, true
}

// plannedPart is one part of a paper, its bench flags parsed and checked
// by the bench library.
type plannedPart struct {
	part  paper.Part
	args  []string // merlin bench's, -out included
	flags *bench.Flags
	plan  bench.Plan
}

// planPaper parses every part's bench arguments, sending its results to
// target, and estimates its time.
func planPaper(spec *paper.Spec, target string, overhead time.Duration) ([]plannedPart, time.Duration, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, 0, err
	}
	var plan []plannedPart
	var total time.Duration
	for _, p := range spec.Parts {
		args := append(spec.Args(p), "-out", filepath.Join(target, paper.ResultsDir, p.Name))
		f, err := bench.ParseFlags(args)
		if err != nil {
			return nil, 0, fmt.Errorf("part %s: merlin bench %s: %w", p.Name, paper.QuoteArgs(spec.Args(p)), err)
		}
		pl, err := f.Plan(self, overhead)
		if err != nil {
			return nil, 0, fmt.Errorf("part %s: %w", p.Name, err)
		}
		plan = append(plan, plannedPart{part: p, args: args, flags: f, plan: pl})
		total += pl.Total
	}
	return plan, total, nil
}

// printPlan prints the plan of paper dir, up front.
func printPlan(w io.Writer, dir, title string, plan []plannedPart, total, overhead time.Duration) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "paper %s: %s\n", dir, title)
	for _, p := range plan {
		fmt.Fprintf(tw, "  %s\t%s\t~%v\n", p.part.Name, p.plan.String(overhead), p.plan.Total.Round(time.Second))
	}
	fmt.Fprintf(tw, "  total\t\t~%v (finishing about %s)\n", total.Round(time.Second), time.Now().Add(total).Format("15:04"))
	tw.Flush()
}

// copySpec copies dir's spec and template into target.
func copySpec(dir, target string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	for _, f := range []string{paper.SpecFile, paper.TemplateFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err == nil {
			err = os.WriteFile(filepath.Join(target, f), b, 0o644)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// runParts runs every part's bench into target, recording each in info
// and info in target's run.json. It returns how many parts had failed
// runs. SIGINT or SIGTERM stops the part in progress, and the paper.
func runParts(plan []plannedPart, target string, info *paper.RunInfo, stdout, stderr io.Writer) (failed int, err error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	for i, p := range plan {
		if ctx.Err() != nil {
			return failed, fmt.Errorf("interrupted before part %s: %s holds the parts run so far, not a paper", p.part.Name, target)
		}
		fmt.Fprintf(stdout, "\n== part %s (%d of %d): %d runs, ~%v\n", p.part.Name, i+1, len(plan), p.plan.Runs, p.plan.Total.Round(time.Second))
		start := time.Now()
		n, err := runPart(ctx, p, stdout, stderr)
		took := time.Since(start)
		status := 0
		if n > 0 {
			status, failed = 1, failed+1
		}
		info.Parts = append(info.Parts, paper.PartInfo{Name: p.part.Name, Args: p.args, Runs: p.plan.Runs, Estimate: p.plan.Total.Seconds(), Elapsed: took.Seconds(), Status: status})
		if ctx.Err() != nil {
			return failed, fmt.Errorf("interrupted during part %s: %s holds the parts run so far, not a paper", p.part.Name, target)
		}
		if err != nil {
			return failed, fmt.Errorf("part %s: %w", p.part.Name, err)
		}
		fmt.Fprintf(stdout, "== part %s: %v (estimated %v), %d failed runs\n", p.part.Name, took.Round(time.Second), p.plan.Total.Round(time.Second), n)
	}
	info.Elapsed = time.Since(info.Started).Seconds()
	return failed, paper.WriteRunInfo(target, info)
}

// runPart runs one part's bench into its fresh results directory, its
// output also in output.txt there, and returns how many runs failed.
func runPart(ctx context.Context, p plannedPart, stdout, stderr io.Writer) (int, error) {
	if err := os.RemoveAll(p.flags.Out); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(p.flags.Out, 0o755); err != nil {
		return 0, err
	}
	log, err := os.Create(filepath.Join(p.flags.Out, "output.txt"))
	if err != nil {
		return 0, err
	}
	defer log.Close()
	return runBench(ctx, p.flags, io.MultiWriter(stdout, log), stderr)
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
