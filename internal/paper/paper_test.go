package paper

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/merlin-net/merlin/internal/bench"
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

// Compare: pairs whose ranges do not overlap are ordered and checked;
// overlapping ones are within spread; req/s is not compared open loop.
func TestPaperCompare(t *testing.T) {
	for _, tc := range []struct {
		name        string
		orig, rerun []bench.Summary
		metric      string
		want        string // outcome of the one ordered pair, "" if none
		within      int
	}{
		{
			name:   "order held",
			orig:   []bench.Summary{cell("a", 1, "", "req/s", 100, 110, 105), cell("b", 1, "", "req/s", 80, 90, 85)},
			rerun:  []bench.Summary{cell("a", 1, "", "req/s", 70), cell("b", 1, "", "req/s", 60)},
			metric: "req/s", want: Held,
		},
		{
			name:   "order flipped",
			orig:   []bench.Summary{cell("a", 1, "", "req/s", 100, 110, 105), cell("b", 1, "", "req/s", 80, 90, 85)},
			rerun:  []bench.Summary{cell("a", 1, "", "req/s", 70), cell("b", 1, "", "req/s", 75)},
			metric: "req/s", want: Flipped,
		},
		{
			name:   "order flipped, second server above",
			orig:   []bench.Summary{cell("a", 1, "", "cpu-ns/req", 5, 6, 7), cell("b", 1, "", "cpu-ns/req", 8, 9, 10)},
			rerun:  []bench.Summary{cell("a", 1, "", "cpu-ns/req", 9), cell("b", 1, "", "cpu-ns/req", 8)},
			metric: "cpu-ns/req", want: Flipped,
		},
		{
			name:   "equal medians do not hold",
			orig:   []bench.Summary{cell("a", 1, "", "req/s", 100, 110), cell("b", 1, "", "req/s", 80, 90)},
			rerun:  []bench.Summary{cell("a", 1, "", "req/s", 70), cell("b", 1, "", "req/s", 70)},
			metric: "req/s", want: Flipped,
		},
		{
			name:   "within spread: not checked",
			orig:   []bench.Summary{cell("a", 1, "", "req/s", 100, 80, 105), cell("b", 1, "", "req/s", 85, 90, 95)},
			rerun:  []bench.Summary{cell("a", 1, "", "req/s", 10), cell("b", 1, "", "req/s", 90)},
			metric: "req/s", within: 1,
		},
		{
			name:   "touching ranges overlap",
			orig:   []bench.Summary{cell("a", 1, "", "req/s", 90, 100), cell("b", 1, "", "req/s", 80, 90)},
			rerun:  []bench.Summary{cell("a", 1, "", "req/s", 10), cell("b", 1, "", "req/s", 90)},
			metric: "req/s", within: 1,
		},
		{
			name:   "missing in the rerun",
			orig:   []bench.Summary{cell("a", 1, "", "req/s", 100, 110), cell("b", 1, "", "req/s", 80, 90)},
			rerun:  []bench.Summary{cell("a", 1, "", "req/s", 70)},
			metric: "req/s", want: Missing,
		},
		{
			name:   "open loop: throughput is the offered rate, not compared",
			orig:   []bench.Summary{cell("a", 1, "50%", "req/s", 100, 110), cell("b", 1, "50%", "req/s", 80, 90)},
			rerun:  []bench.Summary{cell("a", 1, "50%", "req/s", 70), cell("b", 1, "50%", "req/s", 75)},
			metric: "req/s",
		},
		{
			name:   "open loop latency",
			orig:   []bench.Summary{cell("a", 1, "50%", "p99-ns", 100, 110), cell("b", 1, "50%", "p99-ns", 300, 290)},
			rerun:  []bench.Summary{cell("a", 1, "50%", "p99-ns", 120), cell("b", 1, "50%", "p99-ns", 200)},
			metric: "p99-ns", want: Held,
		},
		{
			name:   "different cells are not paired",
			orig:   []bench.Summary{cell("a", 1, "", "req/s", 100, 110), cell("b", 2, "", "req/s", 80, 90)},
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
				got = c.Pairs[0].Outcome
			}
			if got != tc.want || c.Within != tc.within {
				t.Errorf("outcome %q, %d within spread; want %q, %d", got, c.Within, tc.want, tc.within)
			}
			if c.OK() != (tc.want == "" || tc.want == Held) {
				t.Errorf("OK() = %v with outcome %q", c.OK(), got)
			}
			var b strings.Builder
			if err := c.Write(&b, "orig", "rerun"); err != nil {
				t.Fatal(err)
			}
			if tc.want == Flipped && !strings.Contains(b.String(), "| flipped |") {
				t.Errorf("the report does not list the flipped pair:\n%s", b.String())
			}
		})
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

// The fixture compared with itself keeps its shape.
func TestPaperCompareSelf(t *testing.T) {
	res, err := Load(fixturePaper(t))
	if err != nil {
		t.Fatal(err)
	}
	c := Compare(res.Summaries(), res.Summaries(), res.PartNames(), res.Spec.Compare)
	if !c.OK() || c.Ordered == 0 || c.Held != c.Ordered {
		t.Errorf("self-comparison: %d ordered, %d held, %d flipped, %d missing", c.Ordered, c.Held, c.Flipped, c.Missing)
	}
}
