package stats

import (
	"fmt"
	"math"
	"slices"
)

// SignedRank performs the two-sided Wilcoxon signed-rank test of the
// hypothesis that the differences d are symmetric about 0, as the
// differences of paired values are when neither side of each pair is
// shifted from the other.
//
// Zero differences are dropped (Wilcoxon's convention, R's wilcox.test
// with paired = TRUE); n is the count left. w is the sum of the ranks of
// |d| that belong to positive differences (R's V); it lies in
// [0, n(n+1)/2]. p is exact when no two |d| tie and n is below 50, else
// from the normal approximation with the tie and continuity corrections.
// With no difference left, p is 1.
func SignedRank(d []float64) (w, p float64, n int) {
	nz := make([]float64, 0, len(d)) // the differences but zeros, by |d|
	for _, v := range d {
		if v != 0 {
			nz = append(nz, v)
		}
	}
	n = len(nz)
	if n == 0 {
		return 0, 1, 0
	}
	slices.SortFunc(nz, cmpAbs)
	var ties []int
	for i := 0; i < n; {
		j := i
		for j < n && math.Abs(nz[j]) == math.Abs(nz[i]) {
			j++
		}
		for k := i; k < j; k++ {
			if nz[k] > 0 {
				w += float64(i+1+j) / 2 // the group's mean rank, ranks from 1
			}
		}
		if j-i > 1 {
			ties = append(ties, j-i)
		}
		i = j
	}
	top := n * (n + 1) / 2
	if len(ties) == 0 && n < exactBelow {
		cdf := signedRankCDF(n)
		k := int(w)
		return w, min(1, 2*min(cdf(k), cdf(top-k))), n // P(W <= w), P(W >= w) by symmetry
	}
	// The normal approximation (Hollander and Wolfe, ch. 3.1): W has mean
	// n(n+1)/4 and variance n(n+1)(2n+1)/24 - sum(t^3-t)/48 over the
	// groups of t tied |d|; the statistic moves half a step towards the
	// mean for continuity.
	nf := float64(n)
	var tie float64
	for _, t := range ties {
		tie += float64(t*t*t - t)
	}
	sigma := math.Sqrt(nf*(nf+1)*(2*nf+1)/24 - tie/48)
	if sigma == 0 {
		return w, 1, n
	}
	z := w - nf*(nf+1)/4
	if z != 0 {
		z -= math.Copysign(0.5, z)
	}
	return w, min(1, math.Erfc(math.Abs(z/sigma)/math.Sqrt2)), n
}

// cmpAbs orders by absolute value.
func cmpAbs(a, b float64) int {
	switch x, y := math.Abs(a), math.Abs(b); {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// signedRankCDF returns k -> P(W <= k) for n differences without ties or
// zeros. Each of the 2^n sign patterns is equally likely; the count of
// patterns with W = k follows from whether rank i is positive:
// c(i, k) = c(i-1, k) + c(i-1, k-i).
func signedRankCDF(n int) func(k int) float64 {
	top := n * (n + 1) / 2
	c := make([]float64, top+1)
	c[0] = 1
	for i := 1; i <= n; i++ {
		for k := i * (i + 1) / 2; k >= i; k-- {
			c[k] += c[k-i]
		}
	}
	total := math.Ldexp(1, n)
	cum := 0.0
	for k := range c {
		cum += c[k]
		c[k] = cum / total
	}
	return func(k int) float64 {
		switch {
		case k < 0:
			return 0
		case k >= top:
			return 1
		}
		return c[k]
	}
}

// PairedMinP is the smallest two-sided p-value SignedRank can give with n
// differences, 2/2^n: 0.0625 at 5, 0.031 at 6, 0.0078 at 8. Below 6 pairs
// no difference reaches p < 0.05.
func PairedMinP(n int) float64 {
	return min(1, math.Ldexp(2, -n))
}

// PairedRatioCI estimates the ratio of x's values to y's, pair by pair
// (x[i] with y[i]), for positive values, with a distribution-free
// interval at confidence level (0.95).
//
// The estimate is Hodges-Lehmann's for the signed-rank test on the
// logarithms of the pairs' ratios: the median of the n(n+1)/2 Walsh
// averages (r[i] + r[j])/2, i <= j, of r = log(x/y), exponentiated. The
// interval runs from the k-th smallest Walsh average to the k-th
// largest, k being the smallest count whose probability P(W <= k-1)
// under the null distribution of W stays below (1-level)/2 (Hollander
// and Wolfe, ch. 3.2); k is at least 1. W's distribution is the one
// without ties: exact below 50 pairs, else normal.
func PairedRatioCI(x, y []float64, level float64) (Interval, error) {
	n := len(x)
	switch {
	case n != len(y):
		return Interval{}, fmt.Errorf("stats: pairs need as many values on each side (%d and %d)", len(x), len(y))
	case n == 0:
		return Interval{}, fmt.Errorf("stats: a paired ratio needs pairs")
	case !(level > 0 && level < 1):
		return Interval{}, fmt.Errorf("stats: confidence level %v is not in (0, 1)", level)
	}
	r := make([]float64, n)
	for i := range x {
		a, b := x[i], y[i]
		if !(a > 0 && b > 0) || math.IsInf(a, 0) || math.IsInf(b, 0) {
			return Interval{}, fmt.Errorf("%w (%v, %v)", errNotPositive, a, b)
		}
		r[i] = math.Log(a) - math.Log(b)
	}
	walsh := make([]float64, 0, n*(n+1)/2)
	for i := range r {
		for j := i; j < n; j++ {
			walsh = append(walsh, (r[i]+r[j])/2)
		}
	}
	return logInterval(walsh, signedRankDist(n), level), nil
}

// signedRankDist is W's distribution function for n differences without
// ties: exact below 50, else normal with the continuity correction.
func signedRankDist(n int) func(k int) float64 {
	if n < exactBelow {
		return signedRankCDF(n)
	}
	nf := float64(n)
	mean := nf * (nf + 1) / 4
	sigma := math.Sqrt(nf * (nf + 1) * (2*nf + 1) / 24)
	return func(k int) float64 {
		return 0.5 * math.Erfc(-(float64(k)+0.5-mean)/sigma/math.Sqrt2)
	}
}

// PairedResult compares two samples pair by pair: a[i] with b[i], each
// pair measured together (one interleaved round of a benchmark), so
// that what moves both between pairs (the host's load, its clock)
// cancels.
type PairedResult struct {
	// Ratio is a's values over b's (the Hodges-Lehmann estimate of the
	// pairs' ratio), and Lo-Hi its interval, which reaches the confidence
	// Level (at least 95% from 6 pairs on). All four are 0 where no ratio
	// can be given: no pairs, or a value that is not positive.
	Ratio float64 `json:"ratio"`
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Level float64 `json:"level"`
	// P is the two-sided Wilcoxon signed-rank p-value of the pairs'
	// log ratios.
	P float64 `json:"p"`
	// N is the number of pairs.
	N int `json:"n"`
	// Significant is set when P < Alpha and there are pairs Enough.
	Significant bool `json:"significant"`
}

// Enough reports whether there are enough pairs to claim a difference at
// all: 6 or more (PairedMinP).
func (r PairedResult) Enough() bool { return PairedMinP(r.N) < Alpha }

// ComparePaired tests whether a's values differ from b's, pair by pair
// (SignedRank on the logarithms of the ratios), and estimates their
// ratio with a 95% interval (PairedRatioCI). a and b must be as long;
// a value that is not positive leaves the ratio 0, and the test is then
// made on the differences.
func ComparePaired(a, b []float64) PairedResult {
	if len(a) != len(b) {
		return PairedResult{P: 1}
	}
	r := PairedResult{N: len(a)}
	d := make([]float64, len(a))
	logs := true
	for i := range a {
		if !(a[i] > 0 && b[i] > 0) || math.IsInf(a[i], 0) || math.IsInf(b[i], 0) {
			logs = false
		}
	}
	for i := range a {
		if logs {
			d[i] = math.Log(a[i]) - math.Log(b[i])
		} else {
			d[i] = a[i] - b[i]
		}
	}
	_, r.P, _ = SignedRank(d)
	r.Significant = r.Enough() && r.P < Alpha
	if iv, err := PairedRatioCI(a, b, Level); err == nil {
		r.Ratio, r.Lo, r.Hi, r.Level = iv.Ratio, iv.Lo, iv.Hi, iv.Level
	}
	return r
}
