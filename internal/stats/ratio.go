package stats

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Interval is an estimate of the ratio of two samples' locations, with a
// confidence interval.
type Interval struct {
	Ratio  float64 // the estimate
	Lo, Hi float64 // the interval's bounds
	// Level is the confidence the interval achieves, at least the one
	// asked for; with few values it is larger (U's distribution moves in
	// steps), and with fewer than 4 and 4 values it can be far smaller,
	// as the interval is then the whole range of the pairwise ratios.
	Level float64
}

// errNotPositive is RatioCI's error for a value whose logarithm is not
// defined.
var errNotPositive = errors.New("stats: a ratio needs positive values")

// RatioCI estimates the ratio of x's location to y's, for positive
// values, with a distribution-free interval at confidence level (0.95).
//
// The estimate is Hodges-Lehmann's on logarithms: the median of the
// len(x)*len(y) differences log(x[i]) - log(y[j]), exponentiated. The
// interval runs from the k-th smallest of those differences to the k-th
// largest, k being the smallest count whose probability P(U <= k-1)
// under the null distribution of U stays below (1-level)/2 (Bauer 1972;
// Hollander and Wolfe, ch. 4.3); k is at least 1. U's distribution is the
// one without ties: exact below 50 values on both sides, else normal.
func RatioCI(x, y []float64, level float64) (Interval, error) {
	n, m := len(x), len(y)
	switch {
	case n == 0 || m == 0:
		return Interval{}, fmt.Errorf("stats: a ratio needs values on both sides (%d and %d)", n, m)
	case !(level > 0 && level < 1):
		return Interval{}, fmt.Errorf("stats: confidence level %v is not in (0, 1)", level)
	}
	d := make([]float64, 0, n*m)
	for _, a := range x {
		for _, b := range y {
			if !(a > 0 && b > 0) || math.IsInf(a, 0) || math.IsInf(b, 0) {
				return Interval{}, fmt.Errorf("%w (%v, %v)", errNotPositive, a, b)
			}
			d = append(d, math.Log(a)-math.Log(b))
		}
	}
	return logInterval(d, uCDF(n, m), level), nil
}

// logInterval is the Hodges-Lehmann estimate and its interval from d,
// the logarithms a rank test's estimate is the median of (pairwise
// differences for U, Walsh averages for the signed-rank W), and cdf, the
// statistic's null distribution: the median of d, and its k-th smallest
// and k-th largest values, k the smallest count whose P(stat <= k-1)
// stays below (1-level)/2 (at least 1), all exponentiated. d is sorted
// in place.
func logInterval(d []float64, cdf func(k int) float64, level float64) Interval {
	slices.Sort(d)
	half := (1 - level) / 2
	k := 1
	for k < len(d) && cdf(k) < half {
		k++
	}
	// Now P(stat <= k-1) < half <= P(stat <= k), or k = 1.
	mid := len(d) / 2
	hl := d[mid]
	if len(d)%2 == 0 {
		hl = (d[mid-1] + d[mid]) / 2
	}
	return Interval{
		Ratio: math.Exp(hl),
		Lo:    math.Exp(d[k-1]),
		Hi:    math.Exp(d[len(d)-k]),
		Level: max(0, 1-2*cdf(k-1)),
	}
}
