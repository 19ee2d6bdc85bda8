package bench

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// synth is a server of a synthetic report: its cpu-ns/req per round
// (user time a tenth of it).
type synth struct {
	server, mech string
	floor        bool
	cpu          []float64
}

// synthReport builds a report of one cell (kind, conns) from the servers'
// rounds: 1000 requests a round, so ns/req is the CPU time over 1000.
func synthReport(kind string, conns int, servers ...synth) *Report {
	rep := &Report{}
	w := Workload{Kind: kind, Conns: conns, Size: 64, Depth: 1}
	for _, s := range servers {
		for i, cpu := range s.cpu {
			rep.Records = append(rep.Records, Record{
				Name: benchName(w, s.server), Round: i, Server: s.server, Mechanism: s.mech, Floor: s.floor,
				Workload: kind, Conns: conns, Size: 64, Depth: 1, Seconds: 1, Requests: 1000,
				ServerUserNs: int64(cpu * 100), ServerSysNs: int64(cpu * 900), ServerBusy: 1, Syscalls: -1,
			})
		}
	}
	return rep
}

// rounds repeats v n times.
func rounds(n int, v float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// The floor of a row: a floor server of its mechanism, else the cell's
// only floor server, else none.
func TestFloorOf(t *testing.T) {
	cfU := Summary{Name: "cfloor-uring", Server: "cfloor-uring", Mechanism: MechUring, Floor: true}
	cfE := Summary{Name: "cfloor-epoll", Server: "cfloor-epoll", Mechanism: MechEpoll, Floor: true}
	nginx := Summary{Name: "nginx", Server: "nginx", Mechanism: MechEpoll, Floor: true}
	uring := Summary{Name: "uring", Server: "uring", Mechanism: MechUring}
	gnet := Summary{Name: "gnet", Server: "gnet", Mechanism: MechEpoll}
	unknown := Summary{Name: "x", Server: "x"}
	for _, tc := range []struct {
		name string
		s    Summary
		cell []Summary
		want string // "" for none
	}{
		{name: "same mechanism", s: uring, cell: []Summary{cfE, cfU, uring, gnet}, want: "cfloor-uring"},
		{name: "same mechanism, epoll", s: gnet, cell: []Summary{cfE, cfU, uring, gnet}, want: "cfloor-epoll"},
		{name: "a floor is its own", s: cfU, cell: []Summary{cfE, cfU, uring}, want: "cfloor-uring"},
		{name: "http: the only floor, of another mechanism", s: uring, cell: []Summary{nginx, uring, gnet}, want: "nginx"},
		{name: "mechanism unknown, one floor", s: unknown, cell: []Summary{cfE, unknown}, want: "cfloor-epoll"},
		{name: "mechanism unknown, two floors", s: unknown, cell: []Summary{cfE, cfU, unknown}, want: ""},
		{name: "no floor of its mechanism, two others", s: uring, cell: []Summary{cfE, nginx, uring}, want: ""},
		{name: "no floor", s: uring, cell: []Summary{uring, gnet}, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ok := floorOf(tc.s, tc.cell)
			if got := f.Server; got != tc.want || ok != (tc.want != "") {
				t.Errorf("floorOf(%s) = %q, %v; want %q", tc.s.Server, got, ok, tc.want)
			}
		})
	}
}

// tableColumn returns the table's column head for each server's row.
func tableColumn(t *testing.T, table, head string) map[string]string {
	t.Helper()
	lines := strings.Split(table, "\n")
	// Columns are two spaces or more apart; a head's words one.
	words := regexp.MustCompile(`(\S) (\S)`)
	heads := strings.Fields(words.ReplaceAllString(lines[0], "$1-$2"))
	col := -1
	for i, h := range heads {
		if h == strings.ReplaceAll(head, " ", "-") {
			col = i
		}
	}
	if col < 0 {
		return nil
	}
	out := map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < len(heads) {
			break
		}
		out[f[0]+" "+f[2]] = f[col] // server, conns
	}
	return out
}

// The x floor column: median CPU per request over the floor's, "-"
// where a cell has no floor, and no column at all without floors.
func TestTableFloorColumn(t *testing.T) {
	rep := synthReport(Echo, 64,
		synth{server: "cfloor-uring", mech: MechUring, floor: true, cpu: []float64{7000, 6900, 7100}},
		synth{server: "cfloor-epoll", mech: MechEpoll, floor: true, cpu: []float64{8000, 8000, 8000}},
		synth{server: "uring", mech: MechUring, cpu: []float64{7700, 7800, 7600}},
		synth{server: "gnet", mech: MechEpoll, cpu: []float64{8800, 8000, 9000}},
	)
	noFloor := synthReport(Echo, 1, synth{server: "uring", mech: MechUring, cpu: []float64{5000}})
	rep.Records = append(rep.Records, noFloor.Records...)
	var b bytes.Buffer
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cfloor-uring 64": "1.00", "cfloor-epoll 64": "1.00", "uring 64": "1.10", "gnet 64": "1.10", "uring 1": "-"}
	if d := cmp.Diff(want, tableColumn(t, b.String(), "x floor")); d != "" {
		t.Errorf("x floor (-want +got):\n%s\n%s", d, b.String())
	}

	b.Reset()
	if err := noFloor.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "x floor") {
		t.Errorf("a report without floors has the x floor column:\n%s", b.String())
	}
}

// A pair whose noisy rounds overlap is not called cheaper; a separated
// one is, and so is a server against its floor, oriented server first.
func TestComparisonsSignificance(t *testing.T) {
	rep := synthReport(Echo, 64,
		synth{server: "cfloor-uring", mech: MechUring, floor: true, cpu: []float64{7000, 7050, 6980, 7020, 7010}},
		synth{server: "uring", mech: MechUring, cpu: []float64{7150, 7300, 7100, 7250, 7200}},
		// gnet and netstd overlap: medians 7800 and 7850, U = 10 of 25.
		synth{server: "gnet", mech: MechEpoll, cpu: []float64{7500, 8100, 7800, 7900, 7700}},
		synth{server: "netstd", mech: MechEpoll, cpu: []float64{7850, 7600, 8200, 7750, 8000}},
	)
	type pair struct {
		Server, Against string
		Floor           bool
		Significant     bool
		Verdict         string
	}
	var got []pair
	for _, c := range rep.Comparisons("cpu-ns/req") {
		got = append(got, pair{c.Server, c.Against, c.Floor, c.Significant, c.Verdict()})
		if c.N1 != 5 || c.N2 != 5 || !(c.Lo <= c.Ratio && c.Ratio <= c.Hi) {
			t.Errorf("%s vs %s: %+v", c.Server, c.Against, c.Result)
		}
	}
	// The cell's only floor is the floor of every server in it.
	want := []pair{
		{"uring", "cfloor-uring", true, true, "dearer"},
		{"gnet", "cfloor-uring", true, true, "dearer"},
		{"netstd", "cfloor-uring", true, true, "dearer"},
		{"uring", "gnet", false, true, "cheaper"},
		{"uring", "netstd", false, true, "cheaper"},
		{"gnet", "netstd", false, false, ""},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("comparisons (-want +got):\n%s", d)
	}

	var b bytes.Buffer
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, re := range []string{
		`(?m)^    uring vs cfloor-uring: 1\.03x \[1\.0\d-1\.0\d\] dearer \(p=0\.0079, 5\+5 rounds\)$`,
		`(?m)^    uring vs gnet: 0\.92x \[0\.\d\d-0\.\d\d\] cheaper \(p=0\.0079, 5\+5 rounds\)$`,
		`(?m)^    gnet vs netstd: 0\.99x \[0\.9\d-1\.0\d\] no significant difference \(p=0\.69, 5\+5 rounds\)$`,
		// From the lowest median: cfloor-uring, uring (its floor line),
		// gnet, netstd; uring vs netstd is left to count.
		`(?m)^    other pairs: 1 of 1 differ at p < 0\.05`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("the comparisons lack %s:\n%s", re, out)
		}
	}
	if strings.Contains(out, "gnet vs netstd: 0.99x [0.96-1.03] cheaper") || strings.Count(out, "gnet vs netstd") != 2 {
		t.Errorf("gnet vs netstd: want one line per unit, not cheaper:\n%s", out)
	}

	// results.json holds every pair, for both units.
	b.Reset()
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var j struct {
		Comparisons []Comparison `json:"comparisons"`
	}
	if err := json.Unmarshal(b.Bytes(), &j); err != nil {
		t.Fatal(err)
	}
	if len(j.Comparisons) != 12 || j.Comparisons[0].Unit != "cpu-ns/req" || j.Comparisons[6].Unit != "user-ns/req" || !j.Comparisons[0].Significant {
		t.Errorf("results.json: %d comparisons, want 6 per unit: %+v", len(j.Comparisons), j.Comparisons)
	}
}

// Too few rounds: no word is written, and the output says why, once
// where no pair can be tested, else on the pair's line. 3 rounds against
// 5 can be tested (2/C(8, 3) = 0.036 at best); 2 against 5 cannot.
func TestComparisonsFewRounds(t *testing.T) {
	for _, tc := range []struct {
		name         string
		uring, other int // rounds
		want         string
		claim        bool // whether uring may be called cheaper
	}{
		{name: "one round", uring: 1, other: 1, want: "servers are not compared: with one round a server, no difference can reach p < 0.05, so no claim is made"},
		{name: "three rounds", uring: 3, other: 3, want: "servers are not compared: with 3 rounds or fewer a server"},
		{name: "one round against five", uring: 1, other: 5, want: "uring vs gnet: 0.50x [0.50-0.50] (1+5 rounds: no claim is made)"},
		{name: "two against five", uring: 2, other: 5, want: "uring vs gnet: 0.50x [0.50-0.50] no significant difference (p=0.095; 2+5 rounds cannot reach p < 0.05)"},
		{name: "three against five", uring: 3, other: 5, want: "uring vs gnet: 0.50x [0.50-0.50] cheaper (p=0.036, 3+5 rounds)", claim: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := synthReport(Echo, 64,
				synth{server: "uring", cpu: rounds(tc.uring, 4000)},
				synth{server: "gnet", cpu: rounds(tc.other, 8000)},
				synth{server: "netstd", cpu: rounds(tc.other, 8100)},
			)
			// Rounds of equal values tie; keep them apart.
			for i := range rep.Records {
				rep.Records[i].ServerSysNs += int64(i)
				rep.Records[i].ServerUserNs += int64(i)
			}
			var b bytes.Buffer
			if err := rep.WriteTable(&b); err != nil {
				t.Fatal(err)
			}
			claimed := regexp.MustCompile(`(?m)^    uring vs .*(cheaper|dearer) \(`).MatchString(b.String())
			if !strings.Contains(b.String(), tc.want) || claimed != tc.claim {
				t.Errorf("want %q, a claim for uring %v:\n%s", tc.want, tc.claim, b.String())
			}
		})
	}
}

// The chain: from the lowest median up, each server against the next;
// the other pairs are counted.
func TestComparisonsChain(t *testing.T) {
	rep := synthReport(Echo, 64,
		synth{server: "d", cpu: []float64{400, 401, 402, 403, 404}},
		synth{server: "b", cpu: []float64{200, 201, 202, 203, 204}},
		synth{server: "a", cpu: []float64{100, 101, 102, 103, 104}},
		synth{server: "c", cpu: []float64{300, 301, 302, 303, 304}},
	)
	var b bytes.Buffer
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	cpu, _, _ := strings.Cut(b.String()[strings.Index(b.String(), "cpu-ns/req: "):], "user-ns/req")
	got := regexp.MustCompile(`(?m)^    (\S+ vs \S+|other pairs: .*)`).FindAllString(cpu, -1)
	want := []string{"    a vs b:", "    b vs c:", "    c vs d:", "    other pairs: 3 of 3 differ at p < 0.05 (results.json lists every pair)"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("chain (-want +got):\n%s\n%s", d, cpu)
	}
}

// A closed-loop cell with client-bound rounds says so above its
// comparisons: its CPU per request does not compare fairly.
func TestComparisonsClientBoundNote(t *testing.T) {
	rep := synthReport(Echo, 64,
		synth{server: "a", cpu: []float64{100, 101, 102, 103, 104}},
		synth{server: "b", cpu: []float64{200, 201, 202, 203, 204}},
	)
	var b bytes.Buffer
	rep.WriteTable(&b)
	if strings.Contains(b.String(), "client-bound rounds:") {
		t.Errorf("a saturated cell is noted client-bound:\n%s", b.String())
	}
	rep.Records[0].ClientBound = true
	b.Reset()
	rep.WriteTable(&b)
	if !strings.Contains(b.String(), "  echo/conns=64/size=64/depth=1 (client-bound rounds: ") {
		t.Errorf("the client-bound cell is not noted:\n%s", b.String())
	}
}

// A round whose user time was 0 ticks (CPU time is sampled at 250 Hz)
// leaves no ratio of logarithms: the line says so, the verdict follows
// the medians, and results.json stays valid JSON.
func TestComparisonsZeroRound(t *testing.T) {
	rep := synthReport(Echo, 64,
		synth{server: "a", cpu: []float64{100, 101, 102, 103, 104}},
		synth{server: "b", cpu: []float64{200, 201, 202, 203, 204}},
	)
	rep.Records[0].ServerUserNs = 0
	var got []string
	for _, c := range rep.Comparisons("user-ns/req") {
		got = append(got, c.line())
	}
	want := []string{"a vs b: no ratio (a round measured 0) cheaper (p=0.0079, 5+5 rounds)"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil || !json.Valid(b.Bytes()) {
		t.Errorf("WriteJSON: %v", err)
	}
}

// From 6 rounds on, each comparison is also made round by round: a
// server 4-10% dearer than its floor in every one of 7 rounds whose
// level drifts 2x is lost in the drift to the test on the rounds as two
// samples, and certain round by round. A round that failed for one
// server leaves that round out of the pairs.
func TestComparisonsByRound(t *testing.T) {
	floor := []float64{100, 120, 140, 160, 180, 200, 110}
	srv := make([]float64, len(floor))
	for i, v := range floor {
		srv[i] = v * (1.04 + 0.01*float64(i))
	}
	rep := synthReport(Echo, 64,
		synth{server: "cfloor-epoll", mech: MechEpoll, floor: true, cpu: floor},
		synth{server: "libuvlike", mech: MechEpoll, cpu: srv},
	)
	cs := rep.Comparisons("cpu-ns/req")
	if len(cs) != 1 {
		t.Fatalf("%d comparisons, want 1", len(cs))
	}
	c := cs[0]
	if c.Server != "libuvlike" || c.Against != "cfloor-epoll" || c.Significant {
		t.Errorf("comparison %s vs %s, significant %v: want libuvlike vs cfloor-epoll, not significant over the rounds as samples", c.Server, c.Against, c.Significant)
	}
	if p := c.Paired; !p.Significant || p.N != 7 || p.P != 2.0/128 || !(p.Lo > 1.04 && p.Hi < 1.10) {
		t.Errorf("by round: %+v; want 7 pairs, p = 2/128, an interval within (1.04, 1.10)", p)
	}
	if got := c.line(); !strings.Contains(got, "no significant difference (p=") || !strings.Contains(got, "; by round: 1.07x [1.05-1.09] dearer (p=0.016, 7 pairs)") {
		t.Errorf("line: %s", got)
	}

	// Round 2 failed for the server: 6 pairs are left.
	rep.Records[len(floor)+2].Err = "boom"
	c = rep.Comparisons("cpu-ns/req")[0]
	if p := c.Paired; p.N != 6 || p.P != 2.0/64 {
		t.Errorf("with a failed round, by round: %+v; want 6 pairs, p = 2/64", p)
	}
	// 5 rounds cannot reach p < 0.05 round by round: the line leaves it out.
	rep = synthReport(Echo, 64,
		synth{server: "cfloor-epoll", mech: MechEpoll, floor: true, cpu: floor[:5]},
		synth{server: "libuvlike", mech: MechEpoll, cpu: srv[:5]},
	)
	if got := rep.Comparisons("cpu-ns/req")[0].line(); strings.Contains(got, "by round") {
		t.Errorf("line over 5 rounds: %s", got)
	}
}
