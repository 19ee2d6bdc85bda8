package stats

// Alpha is the significance level of Compare: a difference is claimed
// at p < 0.05.
const Alpha = 0.05

// Level is the confidence Compare asks of its interval.
const Level = 0.95

// Result compares two samples: a's location against b's.
type Result struct {
	// Ratio is a's location over b's (the Hodges-Lehmann estimate on
	// logarithms), and Lo-Hi its interval, which reaches the confidence
	// Level (at least 95%). All four are 0 where no ratio can be given:
	// a sample is empty or holds a value that is not positive.
	Ratio, Lo, Hi, Level float64
	// P is the two-sided Mann-Whitney p-value.
	P float64
	// N1 and N2 are the samples' sizes.
	N1, N2 int
	// Significant is set when P < Alpha and both samples hold at least 2
	// values. It is never set with fewer: one value a side is no test.
	Significant bool
}

// Enough reports whether the samples are large enough to claim a
// difference at all: MinP(N1, N2) < Alpha, 4 values a side and more.
func (r Result) Enough() bool {
	return r.N1 >= 2 && r.N2 >= 2 && MinP(r.N1, r.N2) < Alpha
}

// Compare tests whether a and b differ in location (MannWhitney) and
// estimates the ratio of a's location to b's with a 95% interval
// (RatioCI).
func Compare(a, b []float64) Result {
	r := Result{N1: len(a), N2: len(b)}
	_, r.P = MannWhitney(a, b)
	r.Significant = r.N1 >= 2 && r.N2 >= 2 && r.P < Alpha
	if iv, err := RatioCI(a, b, Level); err == nil {
		r.Ratio, r.Lo, r.Hi, r.Level = iv.Ratio, iv.Lo, iv.Hi, iv.Level
	}
	return r
}
