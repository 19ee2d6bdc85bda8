package paper

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/merlin-net/merlin/bench"
	"github.com/merlin-net/merlin/internal/figures"
)

func TestPaperParseSpec(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     *Spec
		err      string // a substring of the error; "" for none
	}{
		{
			name: "full",
			in: `# a comment
title  Kestrel's question   # trailing comment
bench  -servers a,b -count 5
       -warmup 1s            # continued
part   sweep -conns 1,64 -http-body "Hello, World!"
part   lat -rates 50% -count 3
baseline a
compare req/s p99-ns
overhead 400ms
`,
			want: &Spec{
				Title: "Kestrel's question", Baseline: "a",
				Common:   []string{"-servers", "a,b", "-count", "5", "-warmup", "1s"},
				Parts:    []Part{{Name: "sweep", Args: []string{"-conns", "1,64", "-http-body", "Hello, World!"}}, {Name: "lat", Args: []string{"-rates", "50%", "-count", "3"}}},
				Compare:  []string{"req/s", "p99-ns"},
				Overhead: 400 * time.Millisecond,
			},
		},
		{
			name: "default compare",
			in:   "part p -servers a\n",
			want: &Spec{Parts: []Part{{Name: "p", Args: []string{"-servers", "a"}}}, Compare: DefaultCompare},
		},
		{name: "no part", in: "title x\n", err: "no part"},
		{name: "unknown key", in: "part p -servers a\ncolour blue\n", err: `unknown key "colour"`},
		{name: "out is the paper's", in: "part p -servers a -out /tmp/x\n", err: "-out is not allowed"},
		{name: "quick is not a paper", in: "part p -servers a --quick\n", err: "-quick is not allowed"},
		{name: "servers named", in: "part p -conns 1\n", err: "name the servers"},
		{name: "duplicate part", in: "part p -servers a\npart p -servers b\n", err: "two parts named p"},
		{name: "bad part name", in: "part P -servers a\n", err: "want a name"},
		{name: "bad overhead", in: "part p -servers a\noverhead soon\n", err: "want a duration"},
		{name: "unterminated quote", in: "part p -servers 'a\n", err: "unterminated"},
		{name: "continuation first", in: "  -servers a\n", err: "continuation"},
		{name: "key twice", in: "title a\ntitle b\npart p -servers a\n", err: "given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSpec(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestPaperQuoteArgsRoundTrip(t *testing.T) {
	args := []string{"-servers", "a,b", "-http-body", "Hello, World!", "-rates", "50%"}
	got, err := SplitArgs(QuoteArgs(args))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(args, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// cell builds a summary of one server on one metric from its rounds.
func cell(server string, conns int, rate string, unit string, vals ...float64) bench.Summary {
	rep := &bench.Report{}
	for i, v := range vals {
		r := bench.Record{Name: "BenchmarkEcho/server=" + server + "/conns=" + strconv.Itoa(conns) + "/rate=" + rate, Round: i, Server: server,
			Workload: bench.Echo, Conns: conns, Size: 64, Depth: 1, Rate: rate, Seconds: 1, Requests: 1000, Syscalls: -1}
		switch unit {
		case "req/s":
			r.ReqPerSec = v
		case "cpu-ns/req":
			r.ServerUserNs = int64(v * 1000)
		case "p99-ns":
			r.P50ns, r.P99ns = 1, int64(v)
		}
		rep.Records = append(rep.Records, r)
	}
	return rep.Summaries()[0]
}

// Compare: pairs whose rounds differ significantly in the original
// (Mann-Whitney U, p < 0.05) are ordered and checked; the others are
// within noise, however their ranges lie; req/s is not compared open
// loop.
func TestPaperCompare(t *testing.T) {
	for _, tc := range []struct {
		name        string
		orig, rerun []bench.Summary
		metric      string
		want        string  // outcome of the one ordered pair, "" if none
		p           float64 // its p-value in the original
		within      int
	}{
		{
			name:   "order held",
			orig:   []bench.Summary{cell("a", 1, "", "req/s", 100, 110, 105, 108, 102), cell("b", 1, "", "req/s", 80, 90, 85, 88, 82)},
			rerun:  []bench.Summary{cell("a", 1, "", "req/s", 70), cell("b", 1, "", "req/s", 60)},
			metric: "req/s", want: Held, p: 2.0 / 252,
		},
		{
			name:   "order flipped: reversed significantly",
			orig:   []bench.Summary{cell("a", 1, "", "req/s", 100, 110, 105, 108, 102), cell("b", 1, "", "req/s", 80, 90, 85, 88, 82)},
			rerun:  []bench.Summary{cell("a", 1, "", "req/s", 70, 71, 72, 73, 74), cell("b", 1, "", "req/s", 75, 76, 77, 78, 79)},
			metric: "req/s", want: Flipped, p: 2.0 / 252,
		},
		{
			// The medians change order, but the rerun's rounds do not
			// differ: a chance order of the original fades like this.
			name:   "order faded: reversed within noise",
			orig:   []bench.Summary{cell("a", 1, "", "req/s", 100, 110, 105, 108, 102), cell("b", 1, "", "req/s", 80, 90, 85, 88, 82)},
			rerun:  []bench.Summary{cell("a", 1, "", "req/s", 70, 80, 72, 78, 74), cell("b", 1, "", "req/s", 75, 71, 77, 73, 79)},
			metric: "req/s", want: Faded, p: 2.0 / 252,
		},
		{
			name:   "order faded: one rerun round cannot reverse it",
			orig:   []bench.Summary{cell("a", 1, "", "req/s", 100, 110, 105, 108, 102), cell("b", 1, "", "req/s", 80, 90, 85, 88, 82)},
			rerun:  []bench.Summary{cell("a", 1, "", "req/s", 70), cell("b", 1, "", "req/s", 75)},
			metric: "req/s", want: Faded, p: 2.0 / 252,
		},
		{
			name:   "order flipped, second server above",
			orig:   []bench.Summary{cell("a", 1, "", "cpu-ns/req", 5, 6, 7, 5.5, 6.5), cell("b", 1, "", "cpu-ns/req", 8, 9, 10, 8.5, 9.5)},
			rerun:  []bench.Summary{cell("a", 1, "", "cpu-ns/req", 9, 9.1, 9.2, 9.3, 9.4), cell("b", 1, "", "cpu-ns/req", 8, 8.1, 8.2, 8.3, 8.4)},
			metric: "cpu-ns/req", want: Flipped, p: 2.0 / 252,
		},
		{
			name:   "equal medians do not hold",
			orig:   []bench.Summary{cell("a", 1, "", "req/s", 100, 110, 105, 108), cell("b", 1, "", "req/s", 80, 90, 85, 88)},
			rerun:  []bench.Summary{cell("a", 1, "", "req/s", 70), cell("b", 1, "", "req/s", 70)},
			metric: "req/s", want: Faded, p: 2.0 / 70,
		},
		{
			// Ranges overlap by one round each way (95 < 97): U = 24 of
			// 25, p = 2*2/252. The old range rule left this unchecked.
			name:   "overlapping ranges, significant: checked",
			orig:   []bench.Summary{cell("a", 1, "", "req/s", 100, 110, 105, 108, 95), cell("b", 1, "", "req/s", 80, 90, 85, 88, 97)},
			rerun:  []bench.Summary{cell("a", 1, "", "req/s", 10, 11, 12, 13, 14), cell("b", 1, "", "req/s", 90, 91, 92, 93, 94)},
			metric: "req/s", want: Flipped, p: 4.0 / 252,
		},
		{
			name:   "within noise: not checked",
			orig:   []bench.Summary{cell("a", 1, "", "req/s", 100, 80, 105, 92, 99), cell("b", 1, "", "req/s", 85, 90, 95, 101, 87)},
			rerun:  []bench.Summary{cell("a", 1, "", "req/s", 10), cell("b", 1, "", "req/s", 90)},
			metric: "req/s", within: 1,
		},
		{
			// The old rule ordered ranges that do not overlap; at 3 rounds
			// against 3 that is p = 0.1: noise, and its flip is no flip.
			name:   "ranges apart at 3 rounds: within noise",
			orig:   []bench.Summary{cell("a", 1, "", "req/s", 100, 110, 105), cell("b", 1, "", "req/s", 80, 90, 85)},
			rerun:  []bench.Summary{cell("a", 1, "", "req/s", 70), cell("b", 1, "", "req/s", 75)},
			metric: "req/s", within: 1,
		},
		{
			name:   "missing in the rerun",
			orig:   []bench.Summary{cell("a", 1, "", "req/s", 100, 110, 105, 108, 102), cell("b", 1, "", "req/s", 80, 90, 85, 88, 82)},
			rerun:  []bench.Summary{cell("a", 1, "", "req/s", 70)},
			metric: "req/s", want: Missing, p: 2.0 / 252,
		},
		{
			name:   "open loop: throughput is the offered rate, not compared",
			orig:   []bench.Summary{cell("a", 1, "50%", "req/s", 100, 110, 105, 108, 102), cell("b", 1, "50%", "req/s", 80, 90, 85, 88, 82)},
			rerun:  []bench.Summary{cell("a", 1, "50%", "req/s", 70), cell("b", 1, "50%", "req/s", 75)},
			metric: "req/s",
		},
		{
			name:   "open loop latency",
			orig:   []bench.Summary{cell("a", 1, "50%", "p99-ns", 100, 110, 105, 108, 102), cell("b", 1, "50%", "p99-ns", 300, 290, 310, 295, 305)},
			rerun:  []bench.Summary{cell("a", 1, "50%", "p99-ns", 120), cell("b", 1, "50%", "p99-ns", 200)},
			metric: "p99-ns", want: Held, p: 2.0 / 252,
		},
		{
			name:   "different cells are not paired",
			orig:   []bench.Summary{cell("a", 1, "", "req/s", 100, 110, 105, 108, 102), cell("b", 2, "", "req/s", 80, 90, 85, 88, 82)},
			rerun:  []bench.Summary{cell("a", 1, "", "req/s", 70), cell("b", 2, "", "req/s", 75)},
			metric: "req/s",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Compare(map[string][]bench.Summary{"p": tc.orig}, map[string][]bench.Summary{"p": tc.rerun}, []string{"p"}, []string{tc.metric})
			var got string
			if len(c.Pairs) > 1 {
				t.Fatalf("%d ordered pairs, want at most 1: %+v", len(c.Pairs), c.Pairs)
			}
			if len(c.Pairs) == 1 {
				p := c.Pairs[0]
				got = p.Outcome
				if math.Abs(p.Test.P-tc.p) > 1e-9 || !p.Test.Significant || !(p.Test.Ratio > 1 && p.Test.Lo <= p.Test.Ratio && p.Test.Ratio <= p.Test.Hi) {
					t.Errorf("test %+v: want p %v, significant, the ratio above 1 inside its interval", p.Test, tc.p)
				}
				if p.Orig[0].Median <= p.Orig[1].Median {
					t.Errorf("above %s has the lower median: %v <= %v", p.Above, p.Orig[0].Median, p.Orig[1].Median)
				}
			}
			if got != tc.want || c.Within != tc.within {
				t.Errorf("outcome %q, %d within noise; want %q, %d", got, c.Within, tc.want, tc.within)
			}
			if c.OK() != (tc.want == "" || tc.want == Held || tc.want == Faded) {
				t.Errorf("OK() = %v with outcome %q", c.OK(), got)
			}
			var b strings.Builder
			if err := c.Write(&b, "orig", "rerun"); err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && !strings.Contains(b.String(), fmt.Sprintf(" | %.2g (", tc.p)) {
				t.Errorf("the report does not give the pair's p-value %.2g:\n%s", tc.p, b.String())
			}
			if tc.want == Flipped && !strings.Contains(b.String(), "| flipped |") {
				t.Errorf("the report does not list the flipped pair:\n%s", b.String())
			}
		})
	}
}

// compare.md: every ordered pair with the original's p-value and ratio
// interval and the rerun's p-value, those that did not hold first.
func TestPaperCompareWrite(t *testing.T) {
	orig := []bench.Summary{
		cell("a", 1, "", "req/s", 100, 110, 105, 108, 102),
		cell("b", 1, "", "req/s", 80, 90, 85, 88, 82),
		cell("c", 1, "", "req/s", 50, 51, 52, 53, 54),
	}
	rerun := []bench.Summary{
		cell("a", 1, "", "req/s", 100, 110, 105, 108, 102),
		cell("b", 1, "", "req/s", 120, 121, 122, 123, 124), // now above a: a reversal
		cell("c", 1, "", "req/s", 50, 51, 52, 53, 54),
	}
	c := Compare(map[string][]bench.Summary{"p": orig}, map[string][]bench.Summary{"p": rerun}, []string{"p"}, []string{"req/s"})
	var b strings.Builder
	if err := c.Write(&b, "orig", "rerun"); err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, "| p |") {
			rows = append(rows, l)
		}
	}
	want := []string{
		// At 5 and 5 the interval runs from the 3rd smallest ratio to the
		// 3rd largest (RatioCI): for a/b, 100/88 = 1.136 (after 100/90
		// and 102/90) to 110/82 = 1.341 (after 110/80 and 108/80); for
		// a/c 102/54 to 110/51, for b/c 82/54 to 88/50. The estimates,
		// the 13th of the 25 ratios, are 105/85, 105/52 and 85/52. p is
		// 2/252 for rounds wholly apart, in the original and the rerun
		// alike.
		"| p | echo/conns=1/size=64/depth=1 | req/s | a 105 [100–110] > b 85.0 [80.0–90.0] | 1.24 [1.14–1.34] (96.8%) | 0.0079 (5+5) | a 105, b 122 | 0.0079 (5+5) | flipped |",
		"| p | echo/conns=1/size=64/depth=1 | req/s | a 105 [100–110] > c 52.0 [50.0–54.0] | 2.02 [1.89–2.16] (96.8%) | 0.0079 (5+5) | a 105, c 52.0 | 0.0079 (5+5) | held |",
		"| p | echo/conns=1/size=64/depth=1 | req/s | b 85.0 [80.0–90.0] > c 52.0 [50.0–54.0] | 1.63 [1.52–1.76] (96.8%) | 0.0079 (5+5) | b 122, c 52.0 | 0.0079 (5+5) | held |",
	}
	if d := cmp.Diff(want, rows); d != "" {
		t.Errorf("compare.md rows (-want +got):\n%s\n%s", d, b.String())
	}
	if !strings.Contains(b.String(), "| 3 | 2 | 0 | 1 | 0 | 0 |") {
		t.Errorf("compare.md counts: want 3 ordered, 2 held, 0 faded, 1 flipped:\n%s", b.String())
	}
}

// fixturePaper makes a paper directory from testdata: the spec, the
// template, and two parts' results (a real short run, shared with
// internal/figures).
func fixturePaper(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(filepath.Join("testdata", SpecFile), filepath.Join(dir, SpecFile))
	copyFile(filepath.Join("testdata", TemplateFile), filepath.Join(dir, TemplateFile))
	copyFile(filepath.Join("..", "figures", "testdata", "sweep.json"), filepath.Join(dir, ResultsDir, "sweep", "results.json"))
	copyFile(filepath.Join("..", "figures", "testdata", "latency.json"), filepath.Join(dir, ResultsDir, "latency", "results.json"))
	return dir
}

// Render writes every figure (SVG and PNG) and table, and the README
// includes every table and links every figure; the part the template
// does not place goes under "Other results".
func TestPaperRender(t *testing.T) {
	dir := fixturePaper(t)
	// A stale figure from an earlier render must go.
	os.MkdirAll(filepath.Join(dir, FiguresDir), 0o755)
	os.WriteFile(filepath.Join(dir, FiguresDir, "stale.svg"), []byte("<svg/>"), 0o644)
	r, err := Render(dir, RenderOptions{PNGDPI: 30})
	if err != nil {
		t.Fatal(err)
	}
	if !r.VerdictPending {
		t.Error("VerdictPending is false with the marker in the template")
	}
	if len(r.Figures) != 7 || len(r.Tables) != 4 {
		t.Errorf("%d figures, %d tables; want 7 and 4: %v %v", len(r.Figures), len(r.Tables), r.Figures, r.Tables)
	}
	readme, err := os.ReadFile(filepath.Join(dir, ReadmeFile))
	if err != nil {
		t.Fatal(err)
	}
	md := string(readme)
	for _, f := range r.Figures {
		png := strings.TrimSuffix(f, ".svg") + ".png"
		for _, p := range []string{f, png} {
			if fi, err := os.Stat(filepath.Join(dir, p)); err != nil || fi.Size() == 0 {
				t.Errorf("%s: missing or empty (%v)", p, err)
			}
		}
		if !strings.Contains(md, "]("+f+")") || !strings.Contains(md, "]("+png+")") {
			t.Errorf("README does not link %s and its PNG", f)
		}
	}
	for _, tb := range r.Tables {
		b, err := os.ReadFile(filepath.Join(dir, tb))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(md, string(b)) {
			t.Errorf("README does not include table %s", tb)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, FiguresDir, "stale.svg")); err == nil {
		t.Error("a stale figure survived the render")
	}
	for _, want := range []string{
		"| kernel |", "| CPU |", "| pinning | server=0,client=1", // host, from the results
		SpreadRule,
		"## Other results\n\n### latency", // not placed by the template
		"req/s vs sockets",                // the baseline's ratio
		"| 50% (",                         // an open-loop row
	} {
		if !strings.Contains(md, want) {
			t.Errorf("README lacks %q", want)
		}
	}
	if strings.Contains(md, "<!-- paper:") {
		t.Errorf("README still has a marker: %s", regexp.MustCompile(`<!-- paper:[^>]*-->`).FindString(md))
	}
	host, err := os.ReadFile(filepath.Join(dir, HostFile))
	if err != nil || !strings.Contains(string(host), "| Go | go1.") {
		t.Errorf("host.md: %v\n%s", err, host)
	}

	// A template naming a part the spec lacks is an error.
	os.WriteFile(filepath.Join(dir, TemplateFile), []byte("<!-- paper:results nosuch -->\n"), 0o644)
	if _, err := Render(dir, RenderOptions{PNGDPI: 30}); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("Render with an unknown part: %v", err)
	}
}

// The fixture (2 rounds) compared with itself: 2 rounds against 2 give
// p = 1/3 at best, so no pair is ordered, every pair is within noise,
// and the shape holds trivially.
func TestPaperCompareSelf(t *testing.T) {
	res, err := Load(fixturePaper(t))
	if err != nil {
		t.Fatal(err)
	}
	c := Compare(res.Summaries(), res.Summaries(), res.PartNames(), res.Spec.Compare)
	if !c.OK() || c.Ordered != 0 || c.Within == 0 {
		t.Errorf("self-comparison: %d ordered, %d within noise, %d held, %d flipped, %d missing", c.Ordered, c.Within, c.Held, c.Flipped, c.Missing)
	}
}

// An open-loop table gives each server against the floor of its
// mechanism round by round where the rounds pair: 7 rounds 5-11% dearer
// than the floor in each, with the rounds' level drifting 2x.
func TestPaperTableByRound(t *testing.T) {
	sum := func(server string, floor bool, cpu []float64) bench.Summary {
		st := bench.Stat{Values: cpu, Median: cpu[len(cpu)/2], Min: cpu[0], Max: cpu[0]}
		for i := range cpu {
			st.Rounds = append(st.Rounds, i)
		}
		return bench.Summary{Name: "BenchmarkEcho/server=" + server + "/conns=64/size=64/depth=1/rate=50%", Server: server, Workload: bench.Echo,
			Conns: 64, Size: 64, Depth: 1, Rate: "50%", RateRPS: 20000, Runs: len(cpu), Mechanism: bench.MechEpoll, Floor: floor,
			Stats: map[string]bench.Stat{"cpu-ns/req": st}}
	}
	floor := []float64{10000, 12000, 14000, 16000, 18000, 20000, 11000}
	srv := make([]float64, len(floor))
	for i, v := range floor {
		srv[i] = v * (1.05 + 0.01*float64(i))
	}
	g := figures.Group{Key: "echo-64conns-64B-depth1-open", OpenLoop: true,
		Sums: []bench.Summary{sum("cfloor-epoll", true, floor), sum("libuvlike", false, srv)}}
	table := groupTable(g, "cfloor-epoll")
	for _, want := range []string{
		"| CPU vs its floor, by round |",
		"| 1.08 [1.06–1.10] p=0.016 (cfloor-epoll) |", // libuvlike's row
		"| 1.00 | - |", // the floor's own row
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	// Without rounds to pair (results from before rounds were kept), no column.
	for i := range g.Sums {
		st := g.Sums[i].Stats["cpu-ns/req"]
		st.Rounds = nil
		g.Sums[i].Stats["cpu-ns/req"] = st
	}
	if table := groupTable(g, "cfloor-epoll"); strings.Contains(table, "by round") {
		t.Errorf("a column by round without rounds:\n%s", table)
	}
}
