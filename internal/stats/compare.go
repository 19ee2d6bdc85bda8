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
	Ratio float64 `json:"ratio"`
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Level float64 `json:"level"`
	// P is the two-sided Mann-Whitney p-value.
	P float64 `json:"p"`
	// N1 and N2 are the samples' sizes.
	N1 int `json:"n1"`
	N2 int `json:"n2"`
	// Significant is set when P < Alpha and the samples are Enough.
	Significant bool `json:"significant"`
}

// Enough reports whether the samples are large enough to claim a
// difference at all: at least 2 values a side, and sizes at which the
// exact test can reach p < Alpha (MinP; 4 and 4 values, or 3 and 5).
// The normal approximation, used with ties, can fall below MinP on
// small samples (p = 0.047 for three 1s against three 2s, where no
// order of 3 and 3 values gives less than 0.1); Compare makes no claim
// there.
func (r Result) Enough() bool {
	return r.N1 >= 2 && r.N2 >= 2 && MinP(r.N1, r.N2) < Alpha
}

// Compare tests whether a and b differ in location (MannWhitney) and
// estimates the ratio of a's location to b's with a 95% interval
// (RatioCI).
func Compare(a, b []float64) Result {
	r := Result{N1: len(a), N2: len(b)}
	_, r.P = MannWhitney(a, b)
	r.Significant = r.Enough() && r.P < Alpha
	if iv, err := RatioCI(a, b, Level); err == nil {
		r.Ratio, r.Lo, r.Hi, r.Level = iv.Ratio, iv.Lo, iv.Hi, iv.Level
	}
	return r
}
