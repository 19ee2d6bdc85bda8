package stats

import (
	"math"
	"testing"
)

// Known p-values of the two-sided signed-rank test. Where each comes from:
//   - Hollander and Wolfe's depression data (R's ?wilcox.test example,
//     x and y below): V = 40, and 10 of the 2^9 sign patterns give
//     W >= 40, so p = 2*10/512 = 0.0390625 (R prints 0.01953 one-sided);
//   - with ties, the normal approximation worked by hand: d = 1, 1, 2,
//     -3, 4, 5 have ranks 1.5, 1.5, 3, 4, 5, 6, V = 17; mean 10.5,
//     variance 6*7*13/24 - (2^3-2)/48 = 22.625, z = (17-10.5-0.5)/4.7566,
//     p = erfc(z/sqrt 2) = 0.20716;
//   - every pair one way: p = 2/2^n.
func TestSignedRank(t *testing.T) {
	x := []float64{1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30}
	y := []float64{0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29}
	depression := make([]float64, len(x))
	for i := range x {
		depression[i] = x[i] - y[i]
	}
	for _, tc := range []struct {
		name string
		d    []float64
		w, p float64
		n    int
	}{
		{"depression", depression, 40, 0.0390625, 9},
		{"ties, normal", []float64{1, 1, 2, -3, 4, 5}, 17, 0.20716044891146085, 6},
		{"zeros dropped", []float64{0, 1, 1, 2, 0, -3, 4, 5}, 17, 0.20716044891146085, 6},
		{"5 one way", []float64{1, 2, 3, 4, 5}, 15, 0.0625, 5},
		{"6 one way", []float64{-1, -2, -3, -4, -5, -6}, 0, 0.03125, 6},
		{"symmetric", []float64{1, -2, 3, -4, -5, 6, 7, -8}, 17, 0.9453125, 8},
		{"none", []float64{0, 0}, 0, 1, 0},
	} {
		w, p, n := SignedRank(tc.d)
		if w != tc.w || math.Abs(p-tc.p) > 1e-9 || n != tc.n {
			t.Errorf("%s: SignedRank = %v, %.7g, %d; want %v, %.7g, %d", tc.name, w, p, n, tc.w, tc.p, tc.n)
		}
	}
}

// The exact distribution against a count of every sign pattern.
func TestSignedRankByEnumeration(t *testing.T) {
	for n := 1; n <= 12; n++ {
		top := n * (n + 1) / 2
		count := make([]float64, top+1)
		for s := uint(0); s < 1<<n; s++ {
			w := 0
			for i := range n {
				if s&(1<<i) != 0 {
					w += i + 1
				}
			}
			count[w]++
		}
		cdf := signedRankCDF(n)
		cum := 0.0
		for k := 0; k <= top; k++ {
			cum += count[k]
			if want := cum / float64(uint(1)<<n); math.Abs(cdf(k)-want) > 1e-12 {
				t.Errorf("n=%d: P(W <= %d) = %v, want %v", n, k, cdf(k), want)
			}
		}
		if cdf(-1) != 0 || cdf(top+1) != 1 {
			t.Errorf("n=%d: cdf outside [0, %d] = %v, %v; want 0, 1", n, top, cdf(-1), cdf(top+1))
		}
		if got, want := PairedMinP(n), 2/float64(uint(1)<<n); got != min(1, want) {
			t.Errorf("PairedMinP(%d) = %v, want %v", n, got, want)
		}
	}
}

// PairedRatioCI on 7 pairs with known log ratios r: the Walsh averages,
// worked out beside the test, have median (0.065+0.07)/2, 3rd smallest
// 0.015 and 3rd largest 0.105; at 7 pairs P(W <= 2) = 3/128 < 0.025 <=
// P(W <= 3) = 5/128, so k = 3 and the level is 1 - 6/128.
func TestPairedRatioCI(t *testing.T) {
	r := []float64{0.05, 0.10, -0.02, 0.07, 0.12, 0.03, 0.09}
	x, y := make([]float64, len(r)), make([]float64, len(r))
	for i, v := range r {
		y[i] = float64(10 * (i + 1)) // the pairs' level drifts; their ratio does not care
		x[i] = y[i] * math.Exp(v)
	}
	iv, err := PairedRatioCI(x, y, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	want := Interval{Ratio: math.Exp(0.0675), Lo: math.Exp(0.015), Hi: math.Exp(0.105), Level: 1 - 6.0/128}
	const eps = 1e-9
	if math.Abs(iv.Ratio-want.Ratio) > eps || math.Abs(iv.Lo-want.Lo) > eps || math.Abs(iv.Hi-want.Hi) > eps || math.Abs(iv.Level-want.Level) > eps {
		t.Errorf("PairedRatioCI = %+v, want %+v", iv, want)
	}

	for _, bad := range []struct {
		name string
		x, y []float64
	}{
		{"lengths differ", []float64{1, 2}, []float64{1}},
		{"no pairs", nil, nil},
		{"zero", []float64{1, 0}, []float64{1, 1}},
		{"negative", []float64{1, 1}, []float64{-1, 1}},
		{"infinite", []float64{1, math.Inf(1)}, []float64{1, 1}},
	} {
		if iv, err := PairedRatioCI(bad.x, bad.y, 0.95); err == nil {
			t.Errorf("%s: PairedRatioCI = %+v, want an error", bad.name, iv)
		}
	}
	if _, err := PairedRatioCI(x, y, 1); err == nil {
		t.Errorf("PairedRatioCI at level 1: no error")
	}
}

// What the paired test is for: rounds that drift together. a is b plus
// 4-7% in every round (log ratios 0.04, 0.045, ... 0.07), while the
// rounds' level moves by 7x; over the rounds as two samples the shift is
// lost in the drift, pair by pair it is certain. The Walsh averages of
// the log ratios have median 0.055, and 0.045 and 0.065 3rd from each
// end.
func TestComparePairedSeesThroughDrift(t *testing.T) {
	var a, b []float64
	for i := range 7 {
		v := float64(10 * (i + 1))
		b = append(b, v)
		a = append(a, v*math.Exp(0.04+0.005*float64(i)))
	}
	if r := Compare(a, b); r.Significant {
		t.Fatalf("Compare = %+v: the rounds as samples should not tell 5%% in this drift", r)
	}
	r := ComparePaired(a, b)
	if !r.Significant || r.N != 7 || math.Abs(r.P-2.0/128) > 1e-12 {
		t.Errorf("ComparePaired = %+v, want significant, 7 pairs, p = 2/128", r)
	}
	if lo, hl, hi := math.Exp(0.045), math.Exp(0.055), math.Exp(0.065); math.Abs(r.Ratio-hl) > 1e-9 || math.Abs(r.Lo-lo) > 1e-9 || math.Abs(r.Hi-hi) > 1e-9 {
		t.Errorf("ComparePaired ratio %v [%v-%v], want %v [%v-%v]", r.Ratio, r.Lo, r.Hi, hl, lo, hi)
	}

	// Five pairs cannot reach p < 0.05, however clear.
	if r := ComparePaired(a[:5], b[:5]); r.Significant || r.Enough() || r.P != 0.0625 {
		t.Errorf("ComparePaired over 5 pairs = %+v (Enough %v), want p = 0.0625, not significant", r, r.Enough())
	}
	// Unequal lengths are no pairs.
	if r := ComparePaired(a, b[:3]); r.Significant || r.N != 0 || r.P != 1 {
		t.Errorf("ComparePaired over unequal lengths = %+v, want nothing", r)
	}
	// A value of 0: no ratio, the test on the differences.
	a[0], b[0] = 0, 0
	if r := ComparePaired(a, b); r.Ratio != 0 || r.N != 7 || math.Abs(r.P-2.0/64) > 1e-12 {
		t.Errorf("ComparePaired with a 0 = %+v, want no ratio, 7 pairs, p = 2/64 (the zero difference dropped)", r)
	}
}
