package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/merlin-net/merlin/bench"
	"github.com/merlin-net/merlin/internal/paper"
)

// The published paper's spec parses and plans within the budget:
// at most 40 minutes estimated, so the run fits in 45.
func TestPaperSpec0001(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join("..", "papers", "0001-*"))
	if len(dirs) != 1 {
		t.Fatalf("papers/0001-*: %v, want one directory", dirs)
	}
	s, err := paper.LoadSpec(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	var total time.Duration
	for _, p := range s.Parts {
		f, err := bench.ParseFlags(s.Args(p))
		if err != nil {
			t.Fatalf("part %s: %v", p.Name, err)
		}
		pl, err := f.Plan("merlin", s.Overhead)
		if err != nil {
			t.Fatalf("part %s: %v", p.Name, err)
		}
		total += pl.Total
	}
	if total > 40*time.Minute {
		t.Errorf("papers/0001 is estimated at %v, more than 40 minutes", total)
	}
	if _, err := os.Stat(filepath.Join(dirs[0], paper.TemplateFile)); err != nil {
		t.Error(err)
	}
}

// merlin paper on a tiny spec: it runs both parts, writes results,
// figures, tables, host.md and a README that references them; -replot
// picks up an edited template without running; -dry-run prints the bench
// commands; -compare of a paper with itself holds; -out reruns elsewhere
// and compares.
func TestPaper(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "0099-tiny")
	os.MkdirAll(dir, 0o755)
	spec := `title    A tiny paper
bench    -servers sockets,libuvlike -count 1 -warmup 50ms -duration 200ms
part     sweep -workloads echo -conns 1,4 -sizes 64 -depths 1
part     latency -workloads echo -conns 4 -sizes 64 -depths 1 -rates 50%
baseline sockets
overhead 200ms
`
	tmpl := "# A tiny paper\n\nVERDICT-PENDING\n\n<!-- paper:host -->\n\n<!-- paper:plan -->\n\n## Sweep\n\n<!-- paper:results sweep -->\n"
	os.WriteFile(filepath.Join(dir, paper.SpecFile), []byte(spec), 0o644)
	os.WriteFile(filepath.Join(dir, paper.TemplateFile), []byte(tmpl), 0o644)

	r := merlin(t, "paper", "-dry-run", dir)
	if r.status != 0 || !strings.Contains(r.stdout, "merlin bench -servers sockets,libuvlike") || !strings.Contains(r.stdout, "total") {
		t.Fatalf("merlin paper -dry-run: status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, paper.ResultsDir)); err == nil {
		t.Error("-dry-run wrote results")
	}

	r = merlin(t, "paper", "-png-dpi", "20", dir)
	if r.status != 0 {
		t.Fatalf("merlin paper: status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	t.Logf("merlin paper: %v", r.elapsed.Round(time.Millisecond))
	for _, f := range []string{
		"results/sweep/results.txt", "results/sweep/results.json", "results/sweep/results.csv", "results/sweep/output.txt",
		"results/latency/results.json", "results/run.json", "host.md", "README.md",
		"figures/sweep-throughput-echo-64B-depth1.svg", "figures/sweep-throughput-echo-64B-depth1.png",
		"figures/latency-latency-echo-4conns-64B-depth1-open.svg", "figures/latency-latency-echo-4conns-64B-depth1-open.png",
		"tables/sweep-echo-64B-depth1.md", "tables/latency-echo-4conns-64B-depth1-open.md",
	} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: missing or empty (%v)", f, err)
		}
	}
	// host.md records the command as typed: DIR once, after the flags.
	if host := read(t, filepath.Join(dir, "host.md")); !strings.Contains(host, "`merlin paper -png-dpi 20 "+paper.QuoteArgs([]string{dir})+"`") {
		t.Errorf("host.md does not record the command as typed:\n%s", host)
	}
	readme := read(t, filepath.Join(dir, "README.md"))
	figs, _ := filepath.Glob(filepath.Join(dir, "figures", "*.svg"))
	for _, f := range figs {
		if rel := "figures/" + filepath.Base(f); !strings.Contains(readme, "]("+rel+")") {
			t.Errorf("README does not link %s", rel)
		}
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "tables", "*.md"))
	for _, f := range tables {
		if !strings.Contains(readme, read(t, f)) {
			t.Errorf("README does not include %s", f)
		}
	}
	if len(figs) < 4 || len(tables) < 3 {
		t.Errorf("%d figures, %d tables", len(figs), len(tables))
	}
	for _, want := range []string{"| kernel |", "| merlin commit |", "| sweep | 4 |", "## Other results"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README lacks %q", want)
		}
	}
	if !strings.Contains(r.stdout, "VERDICT-PENDING") {
		t.Errorf("merlin paper did not say the verdict is pending:\n%s", r.stdout)
	}

	// -replot: the template's new prose, without a run.
	os.WriteFile(filepath.Join(dir, paper.TemplateFile), []byte(strings.Replace(tmpl, "VERDICT-PENDING", "The verdict: sockets.", 1)), 0o644)
	before := read(t, filepath.Join(dir, "results", "run.json"))
	r = merlin(t, "paper", dir, "-replot", "-png-dpi", "20")
	if r.status != 0 || !strings.Contains(read(t, filepath.Join(dir, "README.md")), "The verdict: sockets.") || strings.Contains(r.stdout, "VERDICT-PENDING") {
		t.Errorf("merlin paper -replot: status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	if read(t, filepath.Join(dir, "results", "run.json")) != before {
		t.Error("-replot ran the benchmarks")
	}

	r = merlin(t, "paper", "-compare", dir, dir)
	if r.status != 0 || !strings.Contains(r.stdout, "0 flipped") {
		t.Errorf("merlin paper -compare with itself: status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}

	// -out: a rerun elsewhere, compared. With one round, medians are
	// single runs: the order may flip, so the status may be 1, but the
	// comparison must be there.
	out := filepath.Join(t.TempDir(), "rerun")
	r = merlin(t, "paper", "-out", out, "-png-dpi", "20", dir)
	if !strings.Contains(r.stdout, "shape of "+out) || (r.status != 0 && !strings.Contains(r.stderr, "did not keep the shape")) {
		t.Fatalf("merlin paper -out: status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	for _, f := range []string{"compare.md", "README.md", "spec", "template.md", "results/sweep/results.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}

	// Usage errors.
	for _, args := range [][]string{{"paper"}, {"paper", "-replot", "-dry-run", dir}, {"paper", dir, "extra"}} {
		if r := merlin(t, args...); r.status != 2 {
			t.Errorf("merlin %q: status %d, want 2\nstderr:\n%s", args, r.status, r.stderr)
		}
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// merlin -h lists paper among the commands.
func TestPaperInUsage(t *testing.T) {
	r := merlin(t, "-h")
	if r.status != 0 || !regexp.MustCompile(`(?m)^\s+paper\s+run a paper`).MatchString(r.stdout) {
		t.Errorf("merlin -h: status %d, no paper line:\n%s", r.status, r.stdout)
	}
}
