package figures

import (
	"bytes"
	"cmp"
	"encoding/json"
	"encoding/xml"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"

	"github.com/merlin-net/merlin/bench"
)

// load reads a bench results.json from testdata.
func load(t *testing.T, name string) *bench.Report {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return &rep
}

// checkFigure renders f and checks that the SVG is well-formed XML with
// an <svg> root holding the servers' names, and that the PNG decodes to an
// image of the figure's size.
func checkFigure(t *testing.T, f *Figure, servers []string) {
	t.Helper()
	// Low resolution: rasterising is slow under the race detector, and
	// the test is about validity, not looks (FIGURES_KEEP keeps 150).
	f.DPI = 30
	if os.Getenv("FIGURES_KEEP") != "" {
		f.DPI = 0
	}
	svg, pngBytes, err := f.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s.svg is not well-formed XML: %v", f.Name, err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Errorf("%s.svg: root element %q, want svg", f.Name, root)
	}
	for _, s := range servers {
		if !bytes.Contains(svg, []byte(">"+s+"<")) {
			t.Errorf("%s.svg does not name server %s (legend)", f.Name, s)
		}
	}
	img, err := png.Decode(bytes.NewReader(pngBytes))
	if err != nil {
		t.Fatalf("%s.png: %v", f.Name, err)
	}
	dpi := float64(cmp.Or(f.DPI, DefaultDPI))
	wantW, wantH := int(float64(f.w/vg.Inch)*dpi+0.5), int(float64(f.h/vg.Inch)*dpi+0.5)
	if b := img.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
		t.Errorf("%s.png is %dx%d, want %dx%d", f.Name, b.Dx(), b.Dy(), wantW, wantH)
	}
	if os.Getenv("FIGURES_KEEP") != "" {
		os.WriteFile(filepath.Join(os.Getenv("FIGURES_KEEP"), f.Name+".svg"), svg, 0o644)
		os.WriteFile(filepath.Join(os.Getenv("FIGURES_KEEP"), f.Name+".png"), pngBytes, 0o644)
	}
}

var fixtureServers = []string{"sockets", "libuvlike", "uring"}

// A closed-loop sweep (conns 1 and 64, depths 1 and 16) gives, per depth,
// a throughput/CPU figure and a CPU breakdown; every one renders.
func TestFiguresClosedLoop(t *testing.T) {
	rep := load(t, "sweep.json")
	figs := ForPart("sweep", rep.Summaries(), NewStyle(fixtureServers))
	var names []string
	for _, f := range figs {
		names = append(names, f.Name)
		checkFigure(t, f, fixtureServers)
	}
	want := "sweep-throughput-echo-64B-depth1 sweep-cpu-echo-64B-depth1 sweep-throughput-echo-64B-depth16 sweep-cpu-echo-64B-depth16"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("figures:\n got %s\nwant %s", got, want)
	}
}

// Open-loop runs at three rates give a latency curve and a CPU breakdown
// by offered rate; the closed-loop runs the rates came from, a breakdown
// (one connection count: no line figure).
func TestFiguresOpenLoop(t *testing.T) {
	rep := load(t, "latency.json")
	figs := ForPart("latency", rep.Summaries(), NewStyle(fixtureServers))
	var names []string
	for _, f := range figs {
		names = append(names, f.Name)
		checkFigure(t, f, fixtureServers)
	}
	want := "latency-cpu-echo-64B-depth1 latency-latency-echo-16conns-64B-depth1-open latency-cpu-echo-16conns-64B-depth1-open"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("figures:\n got %s\nwant %s", got, want)
	}
}

// A figure with a failed server (no medians) still renders.
func TestFiguresMissingValues(t *testing.T) {
	rep := load(t, "sweep.json")
	for i := range rep.Records {
		if rep.Records[i].Server == "uring" {
			rep.Records[i].Err = "it broke"
		}
	}
	for _, f := range ForPart("sweep", rep.Summaries(), NewStyle(fixtureServers))[:2] {
		f.Name += "-missing"
		checkFigure(t, f, fixtureServers[:2])
	}
}

// HTTP over TLS is drawn as HTTP is: cells without a message size.
func TestFiguresHTTPS(t *testing.T) {
	rep := load(t, "sweep.json")
	for i := range rep.Records {
		rep.Records[i].Workload, rep.Records[i].Size = bench.HTTPS, 0
	}
	figs := ForPart("tls", rep.Summaries(), NewStyle(fixtureServers))
	var names []string
	for _, f := range figs {
		names = append(names, f.Name)
	}
	want := "tls-throughput-https-depth1 tls-cpu-https-depth1 tls-throughput-https-depth16 tls-cpu-https-depth16"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("figures:\n got %s\nwant %s", got, want)
	}
}
