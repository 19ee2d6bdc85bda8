package bench

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/merlin-net/merlin/internal/stats"
)

// Comparison is one server against another in one cell on one metric,
// over their rounds (stats.Compare: Mann-Whitney U, and the ratio of
// Server's location to Against's with its interval).
type Comparison struct {
	Cell    string `json:"cell"` // Summary.Cell
	Unit    string `json:"unit"`
	Server  string `json:"server"`
	Against string `json:"against"`
	// Floor is set when Against is Server's floor (see floorOf).
	Floor bool `json:"floor,omitempty"`
	// Medians are Server's and Against's medians on Unit.
	Medians [2]float64 `json:"medians"`
	stats.Result
	// Paired is Server against Against round by round, over the rounds
	// both measured (stats.ComparePaired: the Wilcoxon signed-rank test
	// on the rounds' ratios, and their Hodges-Lehmann ratio). It sees
	// through what moves a whole round (the host's load between rounds),
	// which the test on the rounds as two samples counts as noise.
	Paired stats.PairedResult `json:"paired"`
}

// Verdict is the word a comparison earns: for a cost (a lower-is-better
// unit per request) "cheaper" or "dearer", for other units "lower" or
// "higher"; "" when the difference is not significant.
func (c Comparison) Verdict() string {
	if !c.Significant {
		return ""
	}
	below := c.Ratio < 1
	if c.Ratio == 0 {
		// No ratio (a value was 0): the medians' order tells.
		below = c.Medians[0] < c.Medians[1]
	}
	return c.word(below)
}

// PairedVerdict is Verdict for the test round by round (Paired).
func (c Comparison) PairedVerdict() string {
	if !c.Paired.Significant {
		return ""
	}
	below := c.Paired.Ratio < 1
	if c.Paired.Ratio == 0 {
		below = c.Medians[0] < c.Medians[1]
	}
	return c.word(below)
}

// word is the verdict on c's unit for Server below or above Against.
func (c Comparison) word(below bool) string {
	if isCost(c.Unit) {
		if below {
			return "cheaper"
		}
		return "dearer"
	}
	if below {
		return "lower"
	}
	return "higher"
}

// isCost reports whether unit is a cost per request, lower better.
func isCost(unit string) bool {
	if !strings.HasSuffix(unit, "/req") {
		return false
	}
	for _, u := range units {
		if u.unit == unit {
			return u.better == "lower"
		}
	}
	return false
}

// Comparisons compares the servers of every cell on unit ("cpu-ns/req"):
// every pair of servers measured on it, once. A server against its floor
// comes as server, floor (Floor set); other pairs come with the lower
// median first. Cells and servers are in the report's order.
func (rep *Report) Comparisons(unit string) []Comparison {
	return comparisons(rep.Summaries(), unit)
}

// CompareSummaries is Comparisons over any summaries: a paper's, read
// back from its results.
func CompareSummaries(sums []Summary, unit string) []Comparison {
	return comparisons(sums, unit)
}

// cells groups summaries by cell, in first-seen order, leaving out idle
// workloads (no per-request figures).
func cells(sums []Summary) [][]Summary {
	var out [][]Summary
	at := map[string]int{}
	for _, s := range sums {
		if s.Workload == Idle {
			continue
		}
		i, ok := at[s.Cell()]
		if !ok {
			i = len(out)
			at[s.Cell()] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], s)
	}
	return out
}

// floorOf returns the floor of s among the summaries of its cell: a floor
// server of s's mechanism (the first, should there be two; s itself if s
// is a floor), else the cell's only floor server if it has exactly one
// (nginx for HTTP), else none.
func floorOf(s Summary, cell []Summary) (Summary, bool) {
	var floors []Summary
	for _, f := range cell {
		if f.Floor {
			floors = append(floors, f)
		}
	}
	if s.Floor {
		return s, true
	}
	if s.Mechanism != "" {
		if i := slices.IndexFunc(floors, func(f Summary) bool { return f.Mechanism == s.Mechanism }); i >= 0 {
			return floors[i], true
		}
	}
	if len(floors) == 1 {
		return floors[0], true
	}
	return Summary{}, false
}

// floorRatios returns, by benchmark name, the median cpu-ns/req of each
// summary over its floor's (see floorOf); summaries without a floor, or
// without the figure, are left out.
func floorRatios(sums []Summary) map[string]float64 {
	out := map[string]float64{}
	for _, cell := range cells(sums) {
		for _, s := range cell {
			f, ok := floorOf(s, cell)
			if !ok {
				continue
			}
			v, ok1 := s.Median("cpu-ns/req")
			fv, ok2 := f.Median("cpu-ns/req")
			if ok1 && ok2 && fv > 0 {
				out[s.Name] = v / fv
			}
		}
	}
	return out
}

// comparisons is Comparisons over sums.
func comparisons(sums []Summary, unit string) []Comparison {
	var out []Comparison
	for _, cell := range cells(sums) {
		var ss []Summary
		for _, s := range cell {
			if len(s.Stats[unit].Values) > 0 {
				ss = append(ss, s)
			}
		}
		for i := range ss {
			for j := i + 1; j < len(ss); j++ {
				a, b := ss[i], ss[j]
				c := Comparison{Cell: a.Cell(), Unit: unit}
				fa, okA := floorOf(a, cell)
				fb, okB := floorOf(b, cell)
				switch {
				case okA && fa.Name == b.Name && !a.Floor:
					c.Floor = true
				case okB && fb.Name == a.Name && !b.Floor:
					c.Floor = true
					a, b = b, a
				case b.Stats[unit].Median < a.Stats[unit].Median:
					a, b = b, a
				}
				c.Server, c.Against = a.Server, b.Server
				c.Medians = [2]float64{a.Stats[unit].Median, b.Stats[unit].Median}
				c.Result = stats.Compare(a.Stats[unit].Values, b.Stats[unit].Values)
				c.Paired = stats.ComparePaired(Paired(a.Stats[unit], b.Stats[unit]))
				out = append(out, c)
			}
		}
	}
	return out
}

// compareUnits are the metrics WriteTable compares the servers on.
var compareUnits = []string{"cpu-ns/req", "user-ns/req"}

// writeComparisons writes, for each of compareUnits and each cell, each
// server against its floor, then the servers from the lowest median up,
// each against the next (pairs already written against a floor left
// out), then a count of the other pairs that differ. The chain bounds a
// cell at 2n-1 lines for n servers where every pair would be n(n-1)/2 (28
// at 8), and it is the order a reader looks for; results.json holds every
// pair.
//
// With too few rounds for any pair to be tested (3 and fewer a server)
// it writes one line saying that no claim is made.
func writeComparisons(w io.Writer, sums []Summary) error {
	var b strings.Builder
	for _, unit := range compareUnits {
		all := comparisons(sums, unit)
		if len(all) == 0 {
			continue
		}
		if !slices.ContainsFunc(all, func(c Comparison) bool { return c.Enough() }) {
			most := 0
			for _, c := range all {
				most = max(most, c.N1, c.N2)
			}
			few := "one round"
			if most > 1 {
				few = fmt.Sprintf("%d rounds or fewer", most)
			}
			fmt.Fprintf(&b, "\nservers are not compared: with %s a server, no difference can reach p < 0.05, so no claim is made (-count 5 compares them).\n", few)
			break
		}
		if unit == compareUnits[0] {
			fmt.Fprintf(&b, "\n%s: each server against its floor, then from the lowest median up, each server against the next.\n", unit)
			fmt.Fprintf(&b, "Mann-Whitney U over the rounds: \"cheaper\" or \"dearer\" only at p < 0.05; the ratio of locations [its interval at 95%% or more: 96.8%% at 5+5 rounds].\n")
			fmt.Fprintf(&b, "From 6 rounds on, \"by round\": the same pair round by round (each round runs the servers back to back): Wilcoxon signed-rank on the rounds' ratios, their Hodges-Lehmann ratio [interval].\n")
		} else {
			fmt.Fprintf(&b, "\n%s, the same way:\n", unit)
		}
		byCell := map[string][]Comparison{}
		for _, c := range all {
			byCell[c.Cell] = append(byCell[c.Cell], c)
		}
		for _, cell := range cells(sums) {
			if cs := byCell[cell[0].Cell()]; len(cs) > 0 {
				writeCell(&b, cell, cs, unit)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeCell writes one cell's comparisons cs on unit, as
// writeComparisons says.
func writeCell(b *strings.Builder, cell []Summary, cs []Comparison, unit string) {
	fmt.Fprintf(b, "  %s%s\n", cell[0].Cell(), cellNote(cell))
	shown := map[[2]string]bool{} // server, against
	show := func(c Comparison) {
		fmt.Fprintf(b, "    %s\n", c.line())
		shown[[2]string{c.Server, c.Against}] = true
	}
	for _, c := range cs {
		if c.Floor {
			show(c)
		}
	}
	var ss []Summary
	for _, s := range cell {
		if len(s.Stats[unit].Values) > 0 {
			ss = append(ss, s)
		}
	}
	slices.SortStableFunc(ss, func(x, y Summary) int { return cmp.Compare(x.Stats[unit].Median, y.Stats[unit].Median) })
	for i := 1; i < len(ss); i++ {
		x, y := ss[i-1].Server, ss[i].Server
		for _, c := range cs {
			if (c.Server == x && c.Against == y || c.Server == y && c.Against == x) && !shown[[2]string{c.Server, c.Against}] {
				show(c)
			}
		}
	}
	others, differ := 0, 0
	for _, c := range cs {
		if !shown[[2]string{c.Server, c.Against}] {
			others++
			if c.Significant {
				differ++
			}
		}
	}
	if others > 0 {
		fmt.Fprintf(b, "    other pairs: %d of %d differ at p < 0.05 (results.json lists every pair)\n", differ, others)
	}
}

// cellNote warns of client-bound rounds in a closed-loop cell: BENCH.md
// compares CPU per request across servers only when every server is
// saturated, or open-loop at one rate.
func cellNote(cell []Summary) string {
	for _, s := range cell {
		if s.ClientBound > 0 && !s.OpenLoop() {
			return " (client-bound rounds: CPU per request compares fairly only saturated or at a fixed rate)"
		}
	}
	return ""
}

// line is c as one line: "uring vs gnet: 0.93x [0.89-0.97] cheaper (p=0.0079, 5+5 rounds)".
func (c Comparison) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s vs %s: %s", c.Server, c.Against, ratioText(c.Ratio, c.Lo, c.Hi, "no ratio (a round measured 0)"))
	rounds := fmt.Sprintf("%d+%d rounds", c.N1, c.N2)
	switch {
	case c.N1 < 2 || c.N2 < 2:
		fmt.Fprintf(&b, " (%s: no claim is made)", rounds)
	case c.Significant:
		fmt.Fprintf(&b, " %s (p=%.2g, %s)", c.Verdict(), c.P, rounds)
	case !c.Enough():
		fmt.Fprintf(&b, " no significant difference (p=%.2g; %s cannot reach p < 0.05)", c.P, rounds)
	default:
		fmt.Fprintf(&b, " no significant difference (p=%.2g, %s)", c.P, rounds)
	}
	if p := c.Paired; p.Enough() {
		b.WriteString("; by round: " + ratioText(p.Ratio, p.Lo, p.Hi, "no ratio"))
		verdict := c.PairedVerdict()
		if verdict == "" {
			verdict = "no significant difference"
		}
		fmt.Fprintf(&b, " %s (p=%.2g, %d pairs)", verdict, p.P, p.N)
	}
	return b.String()
}

// ratioText is a ratio with its interval, "0.93x [0.89-0.97]", without
// the interval where it is a point, or none where there is no ratio (0).
func ratioText(ratio, lo, hi float64, none string) string {
	switch {
	case ratio == 0:
		return none
	case lo == hi:
		return fmt.Sprintf("%.2fx", ratio)
	}
	return fmt.Sprintf("%.2fx [%.2f-%.2f]", ratio, lo, hi)
}
