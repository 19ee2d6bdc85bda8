package bench

import (
	"slices"
)

// Stat summarises one metric of a benchmark over its rounds.
type Stat struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Values []float64 `json:"values"` // one per successful round, in round order
	Rounds []int     `json:"rounds"` // the round of each value (from 0)
}

// Paired returns a's and b's values of the rounds both measured, in
// round order: the servers of one workload run back to back within a
// round, so each pair shares the host's state of the moment.
func Paired(a, b Stat) (x, y []float64) {
	at := make(map[int]float64, len(b.Rounds))
	for i, r := range b.Rounds {
		at[r] = b.Values[i]
	}
	for i, r := range a.Rounds {
		if v, ok := at[r]; ok {
			x, y = append(x, a.Values[i]), append(y, v)
		}
	}
	return x, y
}

// Spread is the stat's range over the rounds: Max - Min.
func (s Stat) Spread() float64 { return s.Max - s.Min }

// Summary is one benchmark (one server on one workload) over its
// rounds: every metric of the benchmark lines (by unit: "req/s",
// "cpu-ns/req", "user-ns/req", "sys-ns/req", "p99-ns", ...) as median,
// minimum, maximum and the values, over the rounds that succeeded.
type Summary struct {
	Name     string  `json:"name"`
	Server   string  `json:"server"`
	Workload string  `json:"workload"`
	Conns    int     `json:"conns"`
	Size     int     `json:"size"`
	Depth    int     `json:"depth"`
	Rate     string  `json:"rate,omitempty"`
	RateRPS  float64 `json:"rate_rps,omitempty"` // the offered rate, resolved
	Runs     int     `json:"runs"`
	Failed   int     `json:"failed"`
	// ClientBound counts the rounds labelled client-bound.
	ClientBound int             `json:"client_bound"`
	Stats       map[string]Stat `json:"stats"`
	Notes       []string        `json:"notes,omitempty"`
	// Mechanism and Floor are the server's (see Server).
	Mechanism string `json:"mechanism,omitempty"`
	Floor     bool   `json:"floor,omitempty"`
}

// OpenLoop reports whether s is an open-loop benchmark.
func (s Summary) OpenLoop() bool { return s.Rate != "" }

// Cell names s's workload without the server ("echo/conns=64/size=64/depth=1"):
// the benchmarks of one cell differ only in their server.
func (s Summary) Cell() string {
	return s.Workload + "/" + s.workload().String()
}

func (s Summary) workload() Workload {
	return Workload{Kind: s.Workload, Conns: s.Conns, Size: s.Size, Depth: s.Depth, Rate: s.Rate}
}

// Median returns the median of unit and whether it was measured.
func (s Summary) Median(unit string) (float64, bool) {
	st, ok := s.Stats[unit]
	return st.Median, ok
}

// Summaries groups the records by benchmark name, in first-seen order,
// with every metric summarised over the rounds that succeeded.
func (rep *Report) Summaries() []Summary {
	var order []string
	by := map[string]*Summary{}
	vals := map[string]map[string][]float64{}
	rounds := map[string]map[string][]int{}
	for _, r := range rep.Records {
		s, ok := by[r.Name]
		if !ok {
			s = &Summary{Name: r.Name, Server: r.Server, Workload: r.Workload, Conns: r.Conns, Size: r.Size, Depth: r.Depth, Rate: r.Rate, Stats: map[string]Stat{},
				Mechanism: r.Mechanism, Floor: r.Floor}
			by[r.Name] = s
			vals[r.Name] = map[string][]float64{}
			rounds[r.Name] = map[string][]int{}
			order = append(order, r.Name)
		}
		s.Runs++
		if r.RateRPS > 0 {
			s.RateRPS = r.RateRPS
		}
		if r.Failed() {
			s.Failed++
			continue
		}
		if r.ClientBound {
			s.ClientBound++
		}
		for _, n := range r.Notes {
			if !slices.Contains(s.Notes, n) {
				s.Notes = append(s.Notes, n)
			}
		}
		for _, m := range r.metrics() {
			vals[r.Name][m.unit] = append(vals[r.Name][m.unit], m.v)
			rounds[r.Name][m.unit] = append(rounds[r.Name][m.unit], r.Round)
		}
	}
	out := make([]Summary, 0, len(order))
	for _, n := range order {
		s := by[n]
		for u, v := range vals[n] {
			s.Stats[u] = Stat{Median: median(v), Min: slices.Min(v), Max: slices.Max(v), Values: v, Rounds: rounds[n][u]}
		}
		out = append(out, *s)
	}
	return out
}
