package stats

import (
	"math"
	"math/bits"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func seq(from, to float64) []float64 {
	var s []float64
	for v := from; v <= to; v++ {
		s = append(s, v)
	}
	return s
}

// Known p-values of the two-sided test. Where each comes from:
//   - exact, no ties: U's null distribution puts 1/C(n+m, n) on each
//     order of the pooled values, so p = 2 * (orders with U this extreme)
//     / C(n+m, n), counted by hand; R's wilcox.test(1:5, 6:10) prints
//     the same 0.007937;
//   - "interleaved 4+4": counts of U = 0..5 at 4 and 4 are 1,1,2,3,5,5
//     of 70 (go-moremath's utest_test.go has the same 0.4857);
//   - with ties, the normal approximation worked by hand (below);
//   - 500 and 600 values: R's wilcox.test, as recorded in go-moremath's
//     utest_test.go (l1 <- seq(0, 499)*2; l2 <- seq(0, 599)*2-41).
func TestMannWhitney(t *testing.T) {
	l1 := make([]float64, 500)
	for i := range l1 {
		l1[i] = float64(2 * i)
	}
	l2 := make([]float64, 600)
	for i := range l2 {
		l2[i] = float64(2*i - 41)
	}
	for _, tc := range []struct {
		name string
		x, y []float64
		u, p float64
	}{
		{name: "separated 5+5", x: seq(1, 5), y: seq(6, 10), u: 0, p: 2.0 / 252},
		{name: "separated 5+5, reversed", x: seq(6, 10), y: seq(1, 5), u: 25, p: 2.0 / 252},
		{name: "one pair out of order, 5+5", x: []float64{1, 2, 3, 4, 6}, y: []float64{5, 7, 8, 9, 10}, u: 1, p: 4.0 / 252},
		{name: "separated 4+4", x: []float64{2, 1, 3, 5}, y: []float64{12, 11, 13, 15}, u: 0, p: 2.0 / 70},
		{name: "interleaved 4+4", x: []float64{2, 1, 3, 5}, y: []float64{0, 4, 6, 7}, u: 5, p: 34.0 / 70},
		// 3 and 3 values cannot reach p < 0.05: 2/C(6,3) = 0.1.
		{name: "separated 3+3", x: seq(1, 3), y: seq(11, 13), u: 0, p: 0.1},
		{name: "1+1", x: []float64{1}, y: []float64{2}, u: 0, p: 1},
		// Identical samples tie pairwise: U = 12.5 = nm/2, z = 0.
		{name: "identical samples", x: seq(1, 5), y: seq(1, 5), u: 12.5, p: 1},
		{name: "every value equal", x: []float64{2, 2, 2}, y: []float64{2, 2}, u: 3, p: 1},
		{name: "empty", x: nil, y: seq(1, 5), u: 0, p: 1},
		// Ties at 3, 4 and 5: x's ranks 1, 2, 3.5, 5.5, 7.5 sum to 19.5,
		// U = 19.5 - 15 = 4.5; sigma^2 = 25/12 (11 - 3*6/90) = 22.5;
		// z = (4.5 - 12.5 + 0.5)/sqrt(22.5) = -1.5811; p = 2 Phi(z),
		// 0.1138 from a normal table.
		{name: "ties, normal approximation", x: seq(1, 5), y: seq(3, 7), u: 4.5, p: 0.11385},
		// 50 values a side use the normal approximation even without
		// ties: x[i] = i and y[j] = j + 0.5 interleave, U = 0+1+...+49 =
		// 1225; sigma^2 = 2500*101/12; z = (1225 - 1250 + 0.5)/sigma =
		// -0.1689; p = 0.8659.
		{name: "50+50, normal", x: seq(1, 50), y: func() []float64 {
			y := seq(1, 50)
			for i := range y {
				y[i] += 0.5
			}
			return y
		}(), u: 1225, p: 0.86588},
		// U of l1: 2i is above 2j-41 for j <= i+20, i+21 values of l2;
		// the sum over i < 500 is 135250.
		{name: "500+600, R", x: l1, y: l2, u: 135250, p: 0.0049335360814172224},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, p := MannWhitney(tc.x, tc.y)
			if u != tc.u || math.Abs(p-tc.p) > 5e-5*math.Max(1, tc.p) {
				t.Errorf("MannWhitney = U %v, p %.6g; want U %v, p %.6g", u, p, tc.u, tc.p)
			}
		})
	}
}

// uDist against a count of U over every order of the pooled values:
// each x-position subset of n+m places is one order.
func TestUDistByEnumeration(t *testing.T) {
	for _, tc := range []struct{ n, m int }{{1, 1}, {1, 4}, {2, 3}, {4, 4}, {5, 5}, {3, 7}, {10, 10}} {
		N := tc.n + tc.m
		counts := make([]float64, tc.n*tc.m+1)
		var total float64
		for set := uint32(0); set < 1<<N; set++ {
			if bits.OnesCount32(set) != tc.n {
				continue
			}
			// Position p holds the p-th smallest value; an x at p is
			// above the y's below it.
			u, ys := 0, 0
			for p := range N {
				if set&(1<<p) != 0 {
					u += ys
				} else {
					ys++
				}
			}
			counts[u]++
			total++
		}
		for k := range counts {
			counts[k] /= total
		}
		if d := cmp.Diff(counts, uDist(tc.n, tc.m), cmpopts.EquateApprox(0, 1e-12)); d != "" {
			t.Errorf("uDist(%d, %d) (-enumerated +got):\n%s", tc.n, tc.m, d)
		}
		if got, want := MinP(tc.n, tc.m), min(1, 2*counts[0]); math.Abs(got-want) > 1e-12 {
			t.Errorf("MinP(%d, %d) = %v, want %v", tc.n, tc.m, got, want)
		}
	}
}

func TestMinP(t *testing.T) {
	// benchmath's uTestMinP table (golang.org/x/perf/benchmath/anone.go)
	// for n values a side: 2/C(2n, n).
	for n, want := range map[int]float64{1: 1, 2: 1.0 / 3, 3: 0.1, 4: 0.02857142857142857, 5: 0.007936507936507936, 9: 4.113533525298231e-05} {
		if got := MinP(n, n); math.Abs(got-want) > 1e-9*want {
			t.Errorf("MinP(%d, %d) = %v, want %v", n, n, got, want)
		}
	}
	if MinP(0, 5) != 1 {
		t.Errorf("MinP with an empty sample = %v, want 1", MinP(0, 5))
	}
}

func TestRatioCI(t *testing.T) {
	y5 := seq(100, 104)
	x5 := make([]float64, 5)
	for i, v := range y5 {
		x5[i] = 1.1 * v
	}
	// a10 = exp(s + i), b10 = exp(j), i, j in 0..9: the log differences
	// are s + k, k in -9..9, each 10-|k| times.
	const s = 0.05
	a10, b10 := make([]float64, 10), make([]float64, 10)
	for i := range a10 {
		a10[i], b10[i] = math.Exp(s+float64(i)), math.Exp(float64(i))
	}
	// At 10 and 10, P(U <= 23) = 3996/184756 = 0.0216 < 0.025 <= P(U <=
	// 24) = 4843/184756, counted over the C(20, 10) orders (a short
	// enumeration, as TestUDistByEnumeration's); 23 is the printed
	// tables' two-sided 5% critical value of U at 10 and 10.
	level10 := 1 - 2*3996.0/184756
	for _, tc := range []struct {
		name  string
		x, y  []float64
		level float64
		want  Interval
	}{
		{
			// The log differences are log 1.1 + log(y_i/y_j), an
			// antisymmetric set about log 1.1: the estimate is 1.1. At 5
			// and 5, P(U <= 2) = 4/252 < 0.025 <= P(U <= 3) = 7/252, so
			// k = 3: the third smallest of y_i/y_j is 101/104 (after
			// 100/104 and 100/103). Level 1 - 2*4/252 = 96.8%.
			name: "5+5, x = 1.1 y", x: x5, y: y5, level: 0.95,
			want: Interval{Ratio: 1.1, Lo: 1.1 * 101 / 104, Hi: 1.1 * 104 / 101, Level: 1 - 8.0/252},
		},
		{
			// k = 24: the log differences up to s-4 are 1+2+3+4+5+6 = 21,
			// up to s-3 28, so the 24th smallest is s-3.
			name: "10+10, shifted by s", x: a10, y: b10, level: 0.95,
			want: Interval{Ratio: math.Exp(s), Lo: math.Exp(s - 3), Hi: math.Exp(s + 3), Level: level10},
		},
		{
			// At 2 and 2, P(U <= 0) = 1/6 is above 0.025: k = 1, the
			// whole range of the ratios 2, 3, 4, 6, at 1 - 2/6; the
			// estimate is the geometric mean of the middle two.
			name: "2+2: the whole range", x: []float64{4, 6}, y: []float64{1, 2}, level: 0.95,
			want: Interval{Ratio: math.Sqrt(12), Lo: 2, Hi: 6, Level: 2.0 / 3},
		},
		{name: "1+1: a point", x: []float64{2}, y: []float64{1}, level: 0.95, want: Interval{Ratio: 2, Lo: 2, Hi: 2, Level: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RatioCI(tc.x, tc.y, tc.level)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got, cmpopts.EquateApprox(1e-9, 0)); d != "" {
				t.Errorf("RatioCI (-want +got):\n%s", d)
			}
		})
	}
	for _, bad := range []struct {
		name  string
		x, y  []float64
		level float64
	}{
		{"empty", nil, []float64{1}, 0.95},
		{"zero", []float64{1, 0}, []float64{1}, 0.95},
		{"negative", []float64{1}, []float64{-1}, 0.95},
		{"level 1", []float64{1}, []float64{1}, 1},
		{"level 0", []float64{1}, []float64{1}, 0},
	} {
		if _, err := RatioCI(bad.x, bad.y, bad.level); err == nil {
			t.Errorf("RatioCI %s: nil error", bad.name)
		}
	}
}

// At 60 and 60 values the interval comes from the normal approximation:
// its level is close to the one asked, and it holds the true shift.
func TestRatioCILarge(t *testing.T) {
	x, y := make([]float64, 60), make([]float64, 60)
	for i := range x {
		y[i] = 100 + float64(i)
		x[i] = 1.2 * y[i]
	}
	got, err := RatioCI(x, y, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got.Level-0.95) > 0.002 || !(got.Lo < 1.2 && 1.2 < got.Hi) || math.Abs(got.Ratio-1.2) > 1e-9 {
		t.Errorf("RatioCI at 60+60 = %+v, want 1.2 inside, at about 95%%", got)
	}
}

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		name        string
		a, b        []float64
		significant bool
		enough      bool
		p           float64 // -1: not checked
		ratio       float64 // 0: none; -1: not checked
	}{
		{name: "separated 5+5", a: []float64{93, 94, 92, 95, 93.5}, b: []float64{100, 101, 99, 102, 100.5},
			significant: true, enough: true, p: 2.0 / 252, ratio: 0.93},
		// Noisy and overlapping: U = 0+4+1+2+3 = 10 of 25, p = 2 P(U <=
		// 10) = 2 (1+1+2+3+5+7+9+11+14+16+18)/252.
		{name: "overlapping 5+5", a: []float64{90, 104, 95, 99, 101}, b: []float64{100, 92, 106, 98, 103},
			enough: true, p: 174.0 / 252, ratio: -1},
		{name: "separated 3+3: p = 0.1 at best", a: []float64{1, 2, 3}, b: []float64{7, 8, 9}, p: 0.1, ratio: 1.0 / 4},
		{name: "one round", a: []float64{90}, b: []float64{100}, p: 1, ratio: 0.9},
		// One value below 49 gives p = 2/50 < 0.05, yet one value is no
		// sample.
		{name: "1 against 49", a: []float64{0.5}, b: seq(1, 49), p: 2.0 / 50, ratio: 0.5 / 25},
		// Ties: the normal approximation gives U = 0, sigma^2 = 9/12 (7 -
		// 2*24/30) = 4.05, z = -4/2.01246, p = 0.046854; 3 and 3 values
		// are not enough to claim it.
		{name: "tied 3+3: below 0.05, no claim", a: []float64{1, 1, 1}, b: []float64{2, 2, 2}, p: 0.0468542, ratio: 0.5},
		{name: "a zero: no ratio", a: seq(0, 4), b: seq(5, 9), significant: true, enough: true, p: 2.0 / 252},
		{name: "empty", a: nil, b: seq(1, 5), p: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Compare(tc.a, tc.b)
			if r.Significant != tc.significant || r.Enough() != tc.enough {
				t.Errorf("Significant %v, Enough %v; want %v, %v (%+v)", r.Significant, r.Enough(), tc.significant, tc.enough, r)
			}
			if tc.p >= 0 && math.Abs(r.P-tc.p) > 1e-6 {
				t.Errorf("P = %v, want %v", r.P, tc.p)
			}
			if tc.ratio >= 0 && (math.Abs(r.Ratio-tc.ratio) > 0.005*tc.ratio || (tc.ratio == 0) != (r.Ratio == 0)) {
				t.Errorf("Ratio = %v, want %v", r.Ratio, tc.ratio)
			}
			if r.Ratio != 0 && !(r.Lo <= r.Ratio && r.Ratio <= r.Hi) {
				t.Errorf("the interval [%v, %v] does not hold the ratio %v", r.Lo, r.Hi, r.Ratio)
			}
			if r.N1 != len(tc.a) || r.N2 != len(tc.b) {
				t.Errorf("N1, N2 = %d, %d", r.N1, r.N2)
			}
		})
	}
}
