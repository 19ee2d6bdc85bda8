package paper

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/merlin-net/merlin/bench"
	"github.com/merlin-net/merlin/internal/stats"
)

// Outcomes of a pair in Compare.
const (
	Held = "held" // the rerun's medians are in the same order
	// Faded: the rerun's medians are in the other order, or equal, but
	// its rounds do not differ significantly: the difference was not
	// found again, which a chance order of the original explains.
	Faded = "faded"
	// Flipped: the rerun's rounds differ significantly the other way.
	Flipped = "flipped"
	Missing = "missing" // the rerun has no median for one of the two
)

// Pair is two servers of one cell whose rounds differed significantly in
// the original results on one metric (Mann-Whitney U, p < 0.05): Above's
// median was above Below's.
type Pair struct {
	Part, Cell, Metric string
	Above, Below       string        // servers, by the original's order
	Orig               [2]bench.Stat // Above's and Below's stats in the original
	// Test is Above against Below in the original: p, and the ratio of
	// their locations with its interval.
	Test stats.Result
	// Rerun are their medians in the rerun, and RerunTest the same test
	// on the rerun's rounds: whether a flip is itself significant.
	Rerun     [2]float64
	RerunTest stats.Result
	Outcome   string
}

// Comparison is the shape of a rerun against the original.
type Comparison struct {
	Metrics []string
	// Ordered counts the pairs whose rounds differed significantly in
	// the original, which are checked; Within those that did not (their
	// order is noise, not checked).
	Ordered, Within      int
	Held, Faded, Flipped int
	Missing              int
	Pairs                []Pair // the ordered pairs
}

// OK reports whether no ordered pair flipped or went missing. A faded
// pair does not fail a rerun: with 5 rounds, equal servers are ordered
// by chance in 3.2% of pairs, and a rerun finds the same order, or none,
// for almost all of those; a significant reversal it does not.
func (c *Comparison) OK() bool { return c.Flipped == 0 && c.Missing == 0 }

// Compare compares the rerun's summaries with the original's, part by
// part: for every cell (a workload that differs only by server), every
// pair of servers and every metric, if the original's rounds differ
// significantly (stats.Compare: Mann-Whitney U, p < 0.05), the pair is
// ordered, and the rerun must not reverse it significantly: it holds if
// the rerun's medians keep the order, fades if they do not but the
// rerun's rounds do not differ significantly, and flips if they differ
// significantly the other way.
// Open-loop cells skip req/s and MB/s: their throughput is the offered
// rate.
func Compare(orig, rerun map[string][]bench.Summary, parts []string, metrics []string) *Comparison {
	c := &Comparison{Metrics: metrics}
	for _, part := range parts {
		newBy := map[string]bench.Summary{}
		for _, s := range rerun[part] {
			newBy[s.Name] = s
		}
		// Cells in first-seen order, each with its servers' summaries.
		var cells []string
		byCell := map[string][]bench.Summary{}
		for _, s := range orig[part] {
			k := s.Cell()
			if _, ok := byCell[k]; !ok {
				cells = append(cells, k)
			}
			byCell[k] = append(byCell[k], s)
		}
		for _, cell := range cells {
			ss := byCell[cell]
			for _, m := range metrics {
				for i := range ss {
					for j := i + 1; j < len(ss); j++ {
						a, b := ss[i], ss[j]
						if a.OpenLoop() && (m == "req/s" || m == "MB/s") {
							continue
						}
						sa, oka := a.Stats[m]
						sb, okb := b.Stats[m]
						if !oka || !okb {
							continue
						}
						test := stats.Compare(sa.Values, sb.Values)
						if !test.Significant {
							c.Within++
							continue
						}
						if sb.Median > sa.Median || sb.Median == sa.Median && test.Ratio < 1 {
							a, b, sa, sb = b, a, sb, sa
							test = stats.Compare(sa.Values, sb.Values)
						}
						p := Pair{Part: part, Cell: cell, Metric: m, Above: a.Server, Below: b.Server, Orig: [2]bench.Stat{sa, sb}, Test: test}
						na, oka := newBy[a.Name].Stats[m]
						nb, okb := newBy[b.Name].Stats[m]
						c.Ordered++
						switch {
						case !oka || !okb:
							p.Outcome = Missing
							c.Missing++
						case na.Median > nb.Median:
							p.Outcome = Held
							c.Held++
						case stats.Compare(na.Values, nb.Values).Significant:
							p.Outcome = Flipped
							c.Flipped++
						default:
							p.Outcome = Faded
							c.Faded++
						}
						if p.Outcome != Missing {
							p.Rerun = [2]float64{na.Median, nb.Median}
							p.RerunTest = stats.Compare(na.Values, nb.Values)
						}
						c.Pairs = append(c.Pairs, p)
					}
				}
			}
		}
	}
	return c
}

// Write writes the comparison as markdown: the rule, the counts, and
// every ordered pair with its test, those that did not hold first.
func (c *Comparison) Write(w io.Writer, origName, rerunName string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Shape of %s against %s\n\n", rerunName, origName)
	fmt.Fprintf(&b, "%s\n\n", SpreadRule)
	fmt.Fprintf(&b, "Metrics compared: %s.\n\n", strings.Join(c.Metrics, ", "))
	fmt.Fprintf(&b, "| ordered pairs (p < 0.05) | held | faded | flipped | missing in the rerun | pairs within noise (not checked) |\n|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| %d | %d | %d | %d | %d | %d |\n\n", c.Ordered, c.Held, c.Faded, c.Flipped, c.Missing, c.Within)
	switch {
	case !c.OK():
		fmt.Fprintf(&b, "%d ordered pairs flipped (the rerun differs significantly the other way) or are missing: the rerun does not reproduce the original's shape.\n", c.Flipped+c.Missing)
	case c.Faded > 0:
		fmt.Fprintf(&b, "No ordered pair flipped. %d faded: the rerun did not find their difference again (no significant difference, or a median order within noise); at 5 rounds, equal servers are ordered by chance in 3.2%% of pairs, and such orders fade.\n", c.Faded)
	default:
		fmt.Fprintf(&b, "Every ordered pair held: the rerun reproduces the original's shape.\n")
	}
	if len(c.Pairs) == 0 {
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "\nOrdered pairs, those that did not hold first. Ratio: above's location over below's in the original (Hodges-Lehmann), [its interval at the confidence given]; p: two-sided Mann-Whitney U.\n\n")
	b.WriteString("| part | cell | metric | original: above > below (median [min–max]) | ratio [interval] | p | rerun medians | rerun p | outcome |\n|---|---|---|---|---|---:|---|---:|---|\n")
	pairs := slices.Clone(c.Pairs)
	slices.SortStableFunc(pairs, func(x, y Pair) int { return cmp.Compare(outcomeRank(x.Outcome), outcomeRank(y.Outcome)) })
	for _, p := range pairs {
		rerun, rerunP := "-", "-"
		if p.Outcome != Missing {
			rerun = fmt.Sprintf("%s %s, %s %s", p.Above, num(p.Rerun[0]), p.Below, num(p.Rerun[1]))
			rerunP = pValue(p.RerunTest)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s %s > %s %s | %s | %s | %s | %s | %s |\n", p.Part, p.Cell, p.Metric,
			p.Above, statCell(p.Orig[0], 1), p.Below, statCell(p.Orig[1], 1), ratioCell(p.Test), pValue(p.Test), rerun, rerunP, p.Outcome)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// outcomeRank orders outcomes in Write: those that did not hold first.
func outcomeRank(o string) int {
	return map[string]int{Flipped: 0, Missing: 1, Faded: 2, Held: 3}[o]
}

// ratioCell is "1.23 [1.10–1.31] (96.8%)", or "-" without a ratio.
func ratioCell(r stats.Result) string {
	if r.Ratio == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3g [%.3g–%.3g] (%.1f%%)", r.Ratio, r.Lo, r.Hi, 100*r.Level)
}

// pValue is r's p-value with its rounds ("0.0079, 5+5"); "-" with fewer
// than 2 rounds a side.
func pValue(r stats.Result) string {
	if r.N1 < 2 || r.N2 < 2 {
		return fmt.Sprintf("- (%d+%d rounds)", r.N1, r.N2)
	}
	return fmt.Sprintf("%.2g (%d+%d)", r.P, r.N1, r.N2)
}

// SpreadRule defines spread and order, for the paper and the comparison.
const SpreadRule = "Spread is the range of a server's values over the rounds of a cell, from the minimum to the maximum. " +
	"Two servers are ordered on a metric in a cell when a two-sided Mann-Whitney U test over their rounds gives p < 0.05; " +
	"the ratio of their locations is the Hodges-Lehmann estimate, with a distribution-free interval at 95% or more (96.8% with 5 rounds each). " +
	"Ranges that do not overlap are not enough: 3 rounds against 3 give p = 0.1 at best. " +
	"Equal servers pass the test by chance in 8 of the 252 orders of 5 rounds against 5 (3.2%). " +
	"A rerun reproduces the shape when no ordered pair is reversed significantly (flipped); a pair whose rerun medians change order without a significant difference has faded, which chance orders do; pairs not ordered are within noise and not checked."
