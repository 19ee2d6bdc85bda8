// Package stats holds the tests behind merlin's claims that one server is
// cheaper than another: the Mann-Whitney U test over rounds, and an
// interval for the ratio of two samples' locations; Compare joins them.
// Where the rounds pair (the servers of a round run back to back),
// ComparePaired joins the Wilcoxon signed-rank test of the rounds'
// ratios and their Hodges-Lehmann ratio (Hollander and Wolfe, ch. 3).
//
// The U test is two-sided and computed as R's wilcox.test computes it: from
// the exact distribution of U when both samples hold fewer than 50 values
// and no ties, else from the normal approximation with the tie and
// continuity corrections (Hollander and Wolfe, Nonparametric Statistical
// Methods, ch. 4); benchstat (golang.org/x/perf/benchmath) agrees but for
// small samples with ties, which it treats exactly. The ratio is the
// Hodges-Lehmann estimate on logarithms, and its interval the
// distribution-free one of Bauer (1972) from U's critical value, reported
// at the confidence it achieves (96.8% for 95% asked, at 5 and 5 values).
//
//	r := stats.Compare(uringNs, gnetNs)
//	if r.Significant {
//		fmt.Printf("%.2fx [%.2f-%.2f] (p=%.3f)\n", r.Ratio, r.Lo, r.Hi, r.P)
//	}
package stats
