package paper

import (
	"fmt"
	"io"
	"strings"

	"github.com/merlin-net/merlin/internal/bench"
)

// Outcomes of a pair in Compare.
const (
	Held    = "held"    // the rerun's medians are in the same order
	Flipped = "flipped" // the rerun's medians are in the other order, or equal
	Missing = "missing" // the rerun has no median for one of the two
)

// Pair is two servers of one cell whose ranges over rounds did not
// overlap in the original results, on one metric: Above's minimum was
// above Below's maximum.
type Pair struct {
	Part, Cell, Metric string
	Above, Below       string        // servers, by the original's order
	Orig               [2]bench.Stat // Above's and Below's stats in the original
	Rerun              [2]float64    // their medians in the rerun
	Outcome            string
}

// Comparison is the shape of a rerun against the original.
type Comparison struct {
	Metrics []string
	// Ordered counts the pairs whose ranges did not overlap; Within
	// those that did (their order is noise, not checked).
	Ordered, Within int
	Held, Flipped   int
	Missing         int
	Pairs           []Pair // the ordered pairs
}

// OK reports whether every ordered pair held.
func (c *Comparison) OK() bool { return c.Flipped == 0 && c.Missing == 0 }

// Compare compares the rerun's summaries with the original's, part by
// part: for every cell (a workload that differs only by server), every
// pair of servers and every metric, if the original's ranges (minimum to
// maximum over rounds) do not overlap, the pair is ordered, and the
// rerun must keep its medians in the same order. Open-loop cells skip
// req/s and MB/s: their throughput is the offered rate.
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
						switch {
						case sa.Min > sb.Max:
						case sb.Min > sa.Max:
							a, b, sa, sb = b, a, sb, sa
						default:
							c.Within++
							continue
						}
						p := Pair{Part: part, Cell: cell, Metric: m, Above: a.Server, Below: b.Server, Orig: [2]bench.Stat{sa, sb}}
						na, oka := newBy[a.Name].Stats[m]
						nb, okb := newBy[b.Name].Stats[m]
						c.Ordered++
						switch {
						case !oka || !okb:
							p.Outcome = Missing
							c.Missing++
						case na.Median > nb.Median:
							p.Outcome = Held
							p.Rerun = [2]float64{na.Median, nb.Median}
							c.Held++
						default:
							p.Outcome = Flipped
							p.Rerun = [2]float64{na.Median, nb.Median}
							c.Flipped++
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
// every pair that did not hold.
func (c *Comparison) Write(w io.Writer, origName, rerunName string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Shape of %s against %s\n\n", rerunName, origName)
	fmt.Fprintf(&b, "%s\n\n", SpreadRule)
	fmt.Fprintf(&b, "Metrics compared: %s.\n\n", strings.Join(c.Metrics, ", "))
	fmt.Fprintf(&b, "| ordered pairs | held | flipped | missing in the rerun | pairs within spread (not checked) |\n|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| %d | %d | %d | %d | %d |\n\n", c.Ordered, c.Held, c.Flipped, c.Missing, c.Within)
	if c.OK() {
		fmt.Fprintf(&b, "Every ordered pair held: the rerun reproduces the original's shape.\n")
	} else {
		fmt.Fprintf(&b, "Pairs that did not hold:\n\n| part | cell | metric | original: above > below (median [min–max]) | rerun medians | outcome |\n|---|---|---|---|---|---|\n")
		for _, p := range c.Pairs {
			if p.Outcome == Held {
				continue
			}
			rerun := "-"
			if p.Outcome != Missing {
				rerun = fmt.Sprintf("%s %s, %s %s", p.Above, num(p.Rerun[0]), p.Below, num(p.Rerun[1]))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s %s > %s %s | %s | %s |\n", p.Part, p.Cell, p.Metric,
				p.Above, statCell(p.Orig[0], 1), p.Below, statCell(p.Orig[1], 1), rerun, p.Outcome)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// SpreadRule defines spread and order, for the paper and the comparison.
const SpreadRule = "Spread is the range of a server's values over the rounds of a cell, from the minimum to the maximum. " +
	"Two servers are ordered on a metric in a cell when their ranges do not overlap (every round of one is above every round of the other; " +
	"with 5 rounds each, chance alone does that with probability 2/252, under 1%). " +
	"A rerun reproduces the shape when every ordered pair keeps the order of its medians; pairs whose ranges overlap are within spread and not checked."
