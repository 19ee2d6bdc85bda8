// Package figures draws the figures of merlin's papers from merlin bench
// results (bench.Summary, medians and ranges over rounds), with
// gonum.org/v1/plot, as SVG and PNG.
//
// Three kinds: throughput and server CPU per request against connections
// (closed loop, one line per server, log x, whiskers from the minimum to
// the maximum over rounds); user and system time per request as stacked
// bars per server, grouped by connections or offered rate; and latency
// percentiles (p50, p99, p99.9) against offered load (open loop). Each
// server keeps one colour and marker in every figure of a paper (Style).
//
//	st := figures.NewStyle([]string{"sockets", "uring"})
//	for _, f := range figures.ForPart("sweep", rep.Summaries(), st) {
//		f.WriteSVG(w)
//	}
package figures

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/merlin-net/merlin/bench"
)

// Figure is one figure: panels side by side under a title, with one
// legend on the right.
type Figure struct {
	// Name is the file name without its extension.
	Name string
	// Title is drawn above the panels; Caption describes the figure in
	// a README (alt text and the line below it).
	Title, Caption string

	// DPI is the PNG's resolution in dots per inch; 0 means DefaultDPI.
	DPI int

	panels []*plot.Plot
	legend plot.Legend
	w, h   vg.Length
}

// DefaultDPI is the resolution of PNG figures: 1500 pixels across a
// two-panel figure.
const DefaultDPI = 150

// legendWidth is the column on the right that holds the legend.
const legendWidth = 1.7 * vg.Inch

// WriteSVG writes the figure as SVG.
func (f *Figure) WriteSVG(w io.Writer) error {
	c := vgsvg.New(f.w, f.h)
	f.draw(draw.New(c))
	_, err := c.WriteTo(w)
	return err
}

// WritePNG writes the figure as PNG at f.DPI dots per inch.
func (f *Figure) WritePNG(w io.Writer) error {
	c := vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(f.w, f.h), vgimg.UseDPI(cmp.Or(f.DPI, DefaultDPI)), vgimg.UseBackgroundColor(color.White))}
	f.draw(draw.New(c))
	_, err := c.WriteTo(w)
	return err
}

// Bytes returns the figure as SVG and PNG.
func (f *Figure) Bytes() (svg, png []byte, err error) {
	var s, p bytes.Buffer
	if err := f.WriteSVG(&s); err != nil {
		return nil, nil, fmt.Errorf("figure %s: svg: %w", f.Name, err)
	}
	if err := f.WritePNG(&p); err != nil {
		return nil, nil, fmt.Errorf("figure %s: png: %w", f.Name, err)
	}
	return s.Bytes(), p.Bytes(), nil
}

func (f *Figure) draw(dc draw.Canvas) {
	// A white background (SVG has none by default).
	dc.FillPolygon(color.White, []vg.Point{dc.Min, {X: dc.Max.X, Y: dc.Min.Y}, dc.Max, {X: dc.Min.X, Y: dc.Max.Y}})
	title := plot.New().Title.TextStyle
	title.Font.Size = vg.Points(13)
	title.XAlign, title.YAlign = draw.XCenter, draw.YTop
	const pad = 6 * vg.Millimeter / 2
	dc.FillText(title, vg.Point{X: (dc.Min.X + dc.Max.X) / 2, Y: dc.Max.Y - pad}, f.Title)
	titleH := title.Height(f.Title) + 2*pad

	body := draw.Crop(dc, pad, 0, pad, -titleH)
	area := draw.Crop(body, 0, -legendWidth, 0, 0)
	leg := draw.Crop(body, body.Max.X-body.Min.X-legendWidth+pad, 0, 0, -pad)
	tiles := draw.Tiles{Rows: 1, Cols: len(f.panels), PadX: vg.Millimeter * 6, PadRight: vg.Millimeter * 2}
	cs := plot.Align([][]*plot.Plot{f.panels}, tiles, area)[0]
	for i, p := range f.panels {
		p.Draw(cs[i])
	}
	f.legend.Top, f.legend.Left = true, true
	f.legend.Draw(leg)
}

// Style gives each server a colour and a marker, the same in every figure
// of a paper.
type Style struct {
	servers []string
}

// NewStyle returns the style of servers, in this order.
func NewStyle(servers []string) *Style { return &Style{servers: slices.Clone(servers)} }

// A palette that colour-blind readers can tell apart (Okabe and Ito).
var palette = []color.RGBA{
	{0x00, 0x72, 0xB2, 0xff}, // blue
	{0xD5, 0x5E, 0x00, 0xff}, // vermillion
	{0x00, 0x9E, 0x73, 0xff}, // bluish green
	{0xCC, 0x79, 0xA7, 0xff}, // reddish purple
	{0xE6, 0x9F, 0x00, 0xff}, // orange
	{0x56, 0xB4, 0xE9, 0xff}, // sky blue
	{0x00, 0x00, 0x00, 0xff}, // black
	{0xF0, 0xE4, 0x42, 0xff}, // yellow
}

var shapes = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{},
	draw.RingGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}, draw.PlusGlyph{},
}

func (s *Style) index(server string) int {
	i := slices.Index(s.servers, server)
	if i < 0 {
		s.servers = append(s.servers, server)
		i = len(s.servers) - 1
	}
	return i
}

func (s *Style) color(server string) color.RGBA { return palette[s.index(server)%len(palette)] }

func (s *Style) shape(server string) draw.GlyphDrawer { return shapes[s.index(server)%len(shapes)] }

// light mixes c with white: the system-time part of a stacked bar.
func light(c color.RGBA) color.RGBA {
	mix := func(v uint8) uint8 { return uint8(int(v) + (255-int(v))*55/100) }
	return color.RGBA{mix(c.R), mix(c.G), mix(c.B), 0xff}
}

// Group is the summaries of one figure and one table: closed-loop runs of
// one workload, size and depth (varying connections), or open-loop runs of
// one workload, connections, size and depth (varying offered rate).
type Group struct {
	Key      string // for file names: "echo-64B-depth1", "echo-64conns-64B-depth1-open"
	Title    string // for people: "echo, 64 B, depth 1"
	OpenLoop bool
	// Sums are the summaries, in their results' order.
	Sums []bench.Summary
}

// Groups splits summaries into figure groups, in first-seen order; idle
// and churn runs are left out.
func Groups(sums []bench.Summary) []Group {
	var out []Group
	for _, s := range sums {
		if s.Workload != bench.Echo && !bench.IsHTTP(s.Workload) {
			continue
		}
		g := groupOf(s)
		i := slices.IndexFunc(out, func(o Group) bool { return o.Key == g.Key })
		if i < 0 {
			out = append(out, g)
			i = len(out) - 1
		}
		out[i].Sums = append(out[i].Sums, s)
	}
	return out
}

func groupOf(s bench.Summary) Group {
	var key, title []string
	key = append(key, s.Workload)
	title = append(title, s.Workload)
	if s.OpenLoop() {
		key = append(key, fmt.Sprintf("%dconns", s.Conns))
		title = append(title, fmt.Sprintf("%d connections", s.Conns))
	}
	if !bench.IsHTTP(s.Workload) {
		key = append(key, fmt.Sprintf("%dB", s.Size))
		title = append(title, sizeName(s.Size))
	}
	key = append(key, fmt.Sprintf("depth%d", s.Depth))
	title = append(title, fmt.Sprintf("depth %d", s.Depth))
	if s.OpenLoop() {
		key = append(key, "open")
		title = append(title, "open loop")
	} else {
		title = append(title, "closed loop")
	}
	return Group{Key: strings.Join(key, "-"), Title: strings.Join(title, ", "), OpenLoop: s.OpenLoop()}
}

func sizeName(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

// ForPart returns every figure a part's results call for, named
// PART-KIND-GROUP: for closed-loop groups with two connection counts or
// more, throughput and CPU against connections; for every group, the CPU
// breakdown; for open-loop groups, the latency curve.
func ForPart(part string, sums []bench.Summary, st *Style) []*Figure {
	var out []*Figure
	for _, g := range Groups(sums) {
		name := func(kind string) string { return part + "-" + kind + "-" + g.Key }
		if !g.OpenLoop && len(distinct(g.Sums, func(s bench.Summary) float64 { return float64(s.Conns) })) >= 2 {
			out = append(out, ThroughputCPU(name("throughput"), g, st))
		}
		if g.OpenLoop {
			out = append(out, Latency(name("latency"), g, st))
		}
		out = append(out, CPUBreakdown(name("cpu"), g, st))
	}
	return out
}

// servers lists the servers of sums in first-seen order.
func servers(sums []bench.Summary) []string {
	var out []string
	for _, s := range sums {
		if !slices.Contains(out, s.Server) {
			out = append(out, s.Server)
		}
	}
	return out
}

func distinct(sums []bench.Summary, f func(bench.Summary) float64) []float64 {
	var out []float64
	for _, s := range sums {
		if v := f(s); !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

// series is one server's points, with whiskers from min to max.
type series struct {
	plotter.XYs
	plotter.YErrors
}

// seriesOf returns server's points of unit in sums at x, scaled by scale.
func seriesOf(sums []bench.Summary, server, unit string, x func(bench.Summary) float64, scale float64) series {
	var s series
	for _, sm := range sums {
		st, ok := sm.Stats[unit]
		if sm.Server != server || !ok {
			continue
		}
		s.XYs = append(s.XYs, plotter.XY{X: x(sm), Y: st.Median * scale})
		s.YErrors = append(s.YErrors, struct{ Low, High float64 }{(st.Median - st.Min) * scale, (st.Max - st.Median) * scale})
	}
	// Sort by x, keeping the whiskers with their points.
	idx := make([]int, len(s.XYs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(s.XYs[a].X, s.XYs[b].X) })
	var out series
	for _, i := range idx {
		out.XYs = append(out.XYs, s.XYs[i])
		out.YErrors = append(out.YErrors, s.YErrors[i])
	}
	return out
}

// addLines draws one line per server of unit against x on p, and adds
// the servers to leg (if not nil).
func addLines(p *plot.Plot, sums []bench.Summary, unit string, x func(bench.Summary) float64, scale float64, st *Style, leg *plot.Legend, whiskers bool) {
	for _, srv := range servers(sums) {
		s := seriesOf(sums, srv, unit, x, scale)
		if len(s.XYs) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(s.XYs)
		if err != nil {
			continue // NaN or Inf: nothing to draw
		}
		c := st.color(srv)
		l.Color, l.Width = c, vg.Points(1.5)
		pts.Color, pts.Shape, pts.Radius = c, st.shape(srv), vg.Points(3)
		p.Add(l, pts)
		if whiskers {
			if e, err := plotter.NewYErrorBars(s); err == nil {
				e.Color, e.CapWidth = c, vg.Points(5)
				p.Add(e)
			}
		}
		if leg != nil {
			leg.Add(srv, l, pts)
		}
	}
}

// panel returns a plot with the project's look.
func panel(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(11)
	p.X.Label.Text, p.Y.Label.Text = xlabel, ylabel
	p.Add(plotter.NewGrid())
	return p
}

// logX puts a log scale on p's x axis with ticks at vs.
func logX(p *plot.Plot, vs []float64) {
	p.X.Scale = plot.LogScale{}
	var ticks []plot.Tick
	for _, v := range vs {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = vs[0]/1.6, vs[len(vs)-1]*1.6
}

// zeroY starts p's y axis at 0 with a little room above.
func zeroY(p *plot.Plot) {
	p.Y.Min = 0
	p.Y.Max *= 1.08
}

func newFigure(name, title, caption string, w vg.Length, panels ...*plot.Plot) *Figure {
	leg := plot.NewLegend()
	leg.ThumbnailWidth = vg.Points(20)
	return &Figure{Name: name, Title: title, Caption: caption, panels: panels, legend: leg, w: w, h: 4 * vg.Inch}
}

// ThroughputCPU draws a closed-loop group's throughput (thousands of
// requests per second) and server CPU per request (µs, user plus system)
// against connections, one line per server, with min–max whiskers.
func ThroughputCPU(name string, g Group, st *Style) *Figure {
	conns := func(s bench.Summary) float64 { return float64(s.Conns) }
	xs := distinct(g.Sums, conns)
	f := newFigure(name, "Throughput and CPU per request: "+g.Title,
		"Throughput (thousand requests/s, left) and server CPU time per request (µs, user + system, right) against connections, "+g.Title+"; one line per server, the median over rounds, whiskers from the minimum to the maximum.",
		10*vg.Inch)
	tp := panel("throughput", "connections (log scale)", "throughput (k req/s)")
	addLines(tp, g.Sums, "req/s", conns, 1e-3, st, &f.legend, true)
	logX(tp, xs)
	zeroY(tp)
	cpu := panel("server CPU per request", "connections (log scale)", "CPU per request (µs, user + sys)")
	addLines(cpu, g.Sums, "cpu-ns/req", conns, 1e-3, st, nil, true)
	logX(cpu, xs)
	zeroY(cpu)
	f.panels = []*plot.Plot{tp, cpu}
	return f
}

// Latency draws an open-loop group's p50, p99 and p99.9 latency (µs, log
// scale) against the offered load (thousand requests per second), one
// line per server.
func Latency(name string, g Group, st *Style) *Figure {
	offered := func(s bench.Summary) float64 { return s.RateRPS / 1e3 }
	f := newFigure(name, "Latency against offered load: "+g.Title,
		"Latency percentiles p50, p99 and p99.9 (µs, log scale) against the offered load (thousand requests/s), "+g.Title+", measured from each request's scheduled send time; one line per server, the median over rounds.",
		12*vg.Inch)
	for i, q := range []struct{ unit, name string }{{"p50-ns", "p50"}, {"p99-ns", "p99"}, {"p99.9-ns", "p99.9"}} {
		p := panel(q.name, "offered load (k req/s)", q.name+" latency (µs, log scale)")
		var leg *plot.Legend
		if i == 0 {
			leg = &f.legend
		}
		addLines(p, g.Sums, q.unit, offered, 1e-3, st, leg, false)
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
		if p.Y.Min <= 0 {
			p.Y.Min = 1
		}
		p.Y.Min, p.Y.Max = p.Y.Min/1.5, p.Y.Max*1.5
		xs := distinct(g.Sums, offered)
		if len(xs) > 0 {
			p.X.Min, p.X.Max = 0, xs[len(xs)-1]*1.08
		}
		f.panels = append(f.panels, p)
	}
	return f
}

// CPUBreakdown draws user and system time per request (µs) as stacked
// bars, one per server (user dark, system light), grouped by connections
// (closed loop) or offered rate (open loop).
func CPUBreakdown(name string, g Group, st *Style) *Figure {
	by := "connections"
	key := func(s bench.Summary) float64 { return float64(s.Conns) }
	label := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	if g.OpenLoop {
		by = "offered load"
		key = func(s bench.Summary) float64 { return s.RateRPS }
		label = func(v float64) string { return fmt.Sprintf("%.1fk req/s", v/1e3) }
	}
	groups := distinct(g.Sums, key)
	srvs := servers(g.Sums)
	f := newFigure(name, "CPU per request, user and system: "+g.Title,
		"Server CPU time per request (µs), user (dark) and system (light) stacked, per server, grouped by "+by+", "+g.Title+"; medians over rounds.",
		10*vg.Inch)
	p := panel("", by, "CPU per request (µs)")
	var names []string
	for _, v := range groups {
		names = append(names, label(v))
	}
	p.NominalX(names...)
	// The panel is about 7 inches wide; each group takes 70% of its share.
	width := min(vg.Points(40), 7*vg.Inch*0.7/vg.Length(max(1, len(groups)*len(srvs))))
	for i, srv := range srvs {
		user, sys := make(plotter.Values, len(groups)), make(plotter.Values, len(groups))
		for _, s := range g.Sums {
			if s.Server != srv {
				continue
			}
			j := slices.Index(groups, key(s))
			u, uok := s.Median("user-ns/req")
			y, yok := s.Median("sys-ns/req")
			if uok && yok {
				user[j], sys[j] = u/1e3, y/1e3
			}
		}
		ub, err := plotter.NewBarChart(user, width)
		if err != nil {
			continue
		}
		sb, err := plotter.NewBarChart(sys, width)
		if err != nil {
			continue
		}
		c := st.color(srv)
		ub.Color, sb.Color = c, light(c)
		ub.LineStyle.Width, sb.LineStyle.Width = vg.Points(0.5), vg.Points(0.5)
		off := (vg.Length(i) - vg.Length(len(srvs)-1)/2) * width
		ub.Offset, sb.Offset = off, off
		sb.StackOn(ub)
		p.Add(ub, sb)
		f.legend.Add(srv, ub)
	}
	grey := color.RGBA{0x55, 0x55, 0x55, 0xff}
	for _, e := range []struct {
		name string
		c    color.RGBA
	}{{"user (dark)", grey}, {"system (light)", light(grey)}} {
		b, _ := plotter.NewBarChart(plotter.Values{0}, width)
		b.Color = e.c
		f.legend.Add(e.name, b)
	}
	zeroY(p)
	p.X.Min, p.X.Max = -0.5, float64(len(groups))-0.5
	f.panels = []*plot.Plot{p}
	return f
}

// logTicks marks a log axis at 1, 2 and 5 times each power of ten
// (labelled), and the other integers times it (unlabelled), so that a
// range within one decade still has labels.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	if lo <= 0 || hi <= lo {
		return nil
	}
	for p := math.Pow(10, math.Floor(math.Log10(lo))); p <= hi; p *= 10 {
		for m := 1.0; m < 10; m++ {
			v := m * p
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'f', -1, 64)
			}
			out = append(out, t)
		}
	}
	return out
}
