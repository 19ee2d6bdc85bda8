package figures

import (
	"fmt"
	"image/color"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/merlin-net/merlin/bench"
	"github.com/merlin-net/merlin/internal/kprofile"
)

// categoryColors colours the categories of kprofile: the kernel's in
// blues and greens, the program's in oranges, perf's in pink, other in
// grey.
var categoryColors = map[string]color.RGBA{
	"tcpip":        {0x00, 0x72, 0xB2, 0xff}, // blue
	"copy":         {0x56, 0xB4, 0xE9, 0xff}, // sky blue
	"softirq":      {0x00, 0x9E, 0x73, 0xff}, // bluish green
	"syscall":      {0x9A, 0xD9, 0xC2, 0xff}, // pale green
	"epoll":        {0x44, 0x33, 0x99, 0xff}, // indigo
	"io_uring":     {0x88, 0x22, 0x55, 0xff}, // wine
	"sched":        {0xF0, 0xE4, 0x42, 0xff}, // yellow
	"transport":    {0xD5, 0x5E, 0x00, 0xff}, // vermillion
	"app":          {0xE6, 0x9F, 0x00, 0xff}, // orange
	"runtime":      {0x99, 0x99, 0x33, 0xff}, // olive
	"perf":         {0xCC, 0x79, 0xA7, 0xff}, // reddish purple
	kprofile.Other: {0xBB, 0xBB, 0xBB, 0xff}, // grey
}

// KProfiles returns a figure per cell (workload, connections, size,
// depth, rate) of the summaries sampled with -kprofile, named
// PREFIX-CELL: where each server's CPU time per request goes.
func KProfiles(prefix string, sums []bench.Summary) []*Figure {
	var cells []string
	byCell := map[string][]bench.Summary{}
	for _, s := range sums {
		if _, ok := s.Stats[bench.KProfileSumUnit]; !ok {
			continue
		}
		c := s.Cell()
		if byCell[c] == nil {
			cells = append(cells, c)
		}
		byCell[c] = append(byCell[c], s)
	}
	var out []*Figure
	for _, c := range cells {
		out = append(out, KProfile(prefix+"-"+cellKey(byCell[c][0]), byCell[c]))
	}
	return out
}

// cellKey names s's cell in file names: "echo-64conns-64B-depth1",
// "echo-64conns-64B-depth1-rate80pct".
func cellKey(s bench.Summary) string {
	k := []string{s.Workload, fmt.Sprintf("%dconns", s.Conns)}
	if !bench.IsHTTP(s.Workload) {
		k = append(k, fmt.Sprintf("%dB", s.Size))
	}
	k = append(k, fmt.Sprintf("depth%d", s.Depth))
	if s.Rate != "" {
		k = append(k, "rate"+strings.ReplaceAll(s.Rate, "%", "pct"))
	}
	return strings.Join(k, "-")
}

// cellTitle names s's cell for people.
func cellTitle(s bench.Summary) string {
	t := []string{s.Workload, fmt.Sprintf("%d connections", s.Conns)}
	if !bench.IsHTTP(s.Workload) {
		t = append(t, sizeName(s.Size))
	}
	t = append(t, fmt.Sprintf("depth %d", s.Depth))
	if s.Rate != "" {
		t = append(t, "open loop at "+s.Rate)
	} else {
		t = append(t, "closed loop")
	}
	return strings.Join(t, ", ")
}

// KProfile draws one cell's servers as stacked bars of CPU time per
// request (µs, medians over rounds) by category, the kernel's at the
// bottom, with the CPU time measured from /proc marked on each bar: the
// gap between the mark and the top of the bar is what the samples missed
// (or counted twice).
func KProfile(name string, sums []bench.Summary) *Figure {
	title := "Where the CPU goes: " + cellTitle(sums[0])
	f := newFigure(name, title,
		"Server CPU time per request (µs) by category, from perf samples of the measured window (cpu-clock, kernel and user stacks, leaf-first rules of internal/kprofile/rules.txt), "+cellTitle(sums[0])+"; one bar per server, medians over rounds; the black mark is the CPU time measured from /proc.",
		max(6*vg.Inch, vg.Length(len(sums))*1.1*vg.Inch+3*vg.Inch))
	f.h = 5 * vg.Inch
	f.legend.TextStyle.Font.Size = vg.Points(9)
	p := panel("", "server", "CPU per request (µs)")
	var names []string
	for _, s := range sums {
		names = append(names, s.Server)
	}
	p.NominalX(names...)
	width := min(vg.Points(48), 5*vg.Inch*0.7/vg.Length(max(1, len(sums))))
	var below *plotter.BarChart
	type entry struct {
		name string
		bar  *plotter.BarChart
	}
	var bars []entry
	for _, c := range kprofile.Categories {
		vs := make(plotter.Values, len(sums))
		for i, s := range sums {
			v, _ := s.Median(bench.KProfileUnit(c.ID))
			vs[i] = v / 1e3
		}
		b, err := plotter.NewBarChart(vs, width)
		if err != nil {
			continue
		}
		b.Color = categoryColors[c.ID]
		b.LineStyle.Width = vg.Points(0.4)
		if below != nil {
			b.StackOn(below)
		}
		below = b
		bars = append(bars, entry{c.Name, b})
		p.Add(b)
	}
	// The legend lists the categories top down, as the bars stack them.
	for i := len(bars) - 1; i >= 0; i-- {
		f.legend.Add(bars[i].name, bars[i].bar)
	}
	var measured plotter.XYs
	for i, s := range sums {
		if v, ok := s.Median("cpu-ns/req"); ok {
			measured = append(measured, plotter.XY{X: float64(i), Y: v / 1e3})
		}
	}
	if sc, err := plotter.NewScatter(measured); err == nil && len(measured) > 0 {
		sc.GlyphStyle = draw.GlyphStyle{Color: color.Black, Radius: width/2 + vg.Points(3), Shape: dashGlyph{}}
		p.Add(sc)
		f.legend.Add("measured (/proc)", dashThumb{})
	}
	zeroY(p)
	p.X.Min, p.X.Max = -0.6, float64(len(sums))-0.4
	f.panels = []*plot.Plot{p}
	return f
}

// dashThumb is the legend's picture of the measured mark.
type dashThumb struct{}

func (dashThumb) Thumbnail(c *draw.Canvas) {
	y := (c.Min.Y + c.Max.Y) / 2
	c.StrokeLine2(draw.LineStyle{Color: color.Black, Width: vg.Points(2)}, c.Min.X, y, c.Max.X, y)
}

// dashGlyph is a horizontal line across a bar.
type dashGlyph struct{}

func (dashGlyph) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	ls := draw.LineStyle{Color: sty.Color, Width: vg.Points(2)}
	c.StrokeLine2(ls, pt.X-sty.Radius, pt.Y, pt.X+sty.Radius, pt.Y)
}
