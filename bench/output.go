package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// metric is one value of a benchmark line.
type metric struct {
	v    float64
	unit string
}

// metrics returns r's figures as benchmark metrics, in print order.
// Per-request figures are per echoed message, HTTP response, or (churn)
// connection.
func (r Record) metrics() []metric {
	if r.Workload == Idle {
		return []metric{
			{r.RSSPerConn, "rss-bytes/conn"},
			{float64(r.RSSLoaded), "rss-bytes"},
		}
	}
	ms := []metric{
		{r.perReq(r.Seconds * 1e9), "ns/op"},
		{r.ReqPerSec, "req/s"},
		{r.MBPerSec, "MB/s"},
		{r.perReq(float64(r.ServerUserNs + r.ServerSysNs)), "cpu-ns/req"},
		{r.perReq(float64(r.ServerUserNs)), "user-ns/req"},
		{r.perReq(float64(r.ServerSysNs)), "sys-ns/req"},
	}
	if r.Syscalls >= 0 {
		ms = append(ms, metric{r.perReq(float64(r.Syscalls)), "syscalls/req"})
	}
	if v, ok := r.TransportStats["syscalls"]; ok {
		ms = append(ms, metric{r.perReq(float64(v)), "t-syscalls/req"})
	}
	if w := r.TransportStats["wakeups"]; w > 0 {
		ms = append(ms, metric{float64(r.TransportStats["events"]) / float64(w), "t-events/wakeup"})
	}
	ms = append(ms, metric{r.perReq(float64(r.ServerVolCS + r.ServerInvCS)), "ctxsw/req"})
	if r.P50ns > 0 {
		ms = append(ms, metric{float64(r.P50ns), "p50-ns"}, metric{float64(r.P99ns), "p99-ns"}, metric{float64(r.P999ns), "p99.9-ns"})
	}
	ms = append(ms, metric{100 * r.ServerBusy, "server-cpu-%"}, metric{100 * r.ClientBusy, "client-cpu-%"},
		metric{r.perReq(float64(r.ClientUserNs + r.ClientSysNs)), "client-cpu-ns/req"})
	return append(ms, r.KProfile.metrics()...)
}

// n is the iteration count of r's benchmark line.
func (r Record) n() uint64 {
	if r.Workload == Idle {
		return uint64(r.Conns)
	}
	return r.Requests
}

// units says which way each unit is better, for benchstat.
var units = []struct{ unit, better string }{
	{"req/s", "higher"}, {"MB/s", "higher"},
	{"cpu-ns/req", "lower"}, {"user-ns/req", "lower"}, {"sys-ns/req", "lower"},
	{"syscalls/req", "lower"}, {"t-syscalls/req", "lower"}, {"ctxsw/req", "lower"},
	{"client-cpu-ns/req", "lower"}, {"p50-ns", "lower"}, {"p99-ns", "lower"}, {"p99.9-ns", "lower"},
	{"rss-bytes/conn", "lower"}, {"rss-bytes", "lower"},
}

// WriteBenchfmt writes the records in Go benchmark format
// (golang.org/design/14313-benchmark-format): the host as configuration
// lines, then one line per successful run; `benchstat -col /server`
// compares the servers. Failed runs are written as comments.
func (rep *Report) WriteBenchfmt(w io.Writer) error {
	rep.WriteHeader(w)
	for _, r := range rep.Records {
		if err := r.writeBenchLine(w); err != nil {
			return err
		}
	}
	return nil
}

// WriteHeader writes the configuration lines that open WriteBenchfmt's
// output.
func (rep *Report) WriteHeader(w io.Writer) error {
	h := rep.Host
	fmt.Fprintf(w, "goos: %s\ngoarch: %s\n", h.GOOS, h.GOARCH)
	if h.CPU != "" {
		fmt.Fprintf(w, "cpu: %s\n", h.CPU)
	}
	fmt.Fprintf(w, "kernel: %s\ngo: %s\ncpus: %d\n", oneLine(h.Kernel), h.Go, h.CPUs)
	if h.LoadAvg != "" {
		fmt.Fprintf(w, "loadavg: %s\n", h.LoadAvg)
	}
	s := rep.Settings
	fmt.Fprintf(w, "pinning: %s\nserver-gomaxprocs: %d\nclient-transport: %s\n", s.Pinning, s.ServerGOMAXPROCS, s.ClientTransport)
	if s.Generator != "" {
		fmt.Fprintf(w, "generator: %s\n", s.Generator)
	}
	fmt.Fprintf(w, "warmup: %v\nwindow: %v\nperf: %s\n",
		time.Duration(s.WarmupSeconds*1e9), time.Duration(s.DurationSeconds*1e9), oneLine(s.Perf))
	for _, u := range units {
		fmt.Fprintf(w, "Unit %s better=%s\n", u.unit, u.better)
	}
	if s.KProfile != "" {
		fmt.Fprintf(w, "kprofile: %s\n", s.KProfile)
		for _, u := range KProfileUnits() {
			fmt.Fprintf(w, "Unit %s better=lower\n", u)
		}
	}
	_, err := fmt.Fprintln(w)
	return err
}

// writeBenchLine writes one record, or a comment saying why it failed.
func (r Record) writeBenchLine(w io.Writer) error {
	if r.Failed() {
		why := r.Err
		if why == "" {
			why = fmt.Sprintf("%d connections failed: %s", r.Errors, r.FirstErrors[0])
		}
		_, err := fmt.Fprintf(w, "# %s round %d failed: %s\n", r.Name, r.Round, oneLine(why))
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\t%d", r.Name, r.n())
	for _, m := range r.metrics() {
		fmt.Fprintf(&b, "\t%s %s", fmtNum(m.v), m.unit)
	}
	_, err := fmt.Fprintln(w, b.String())
	return err
}

// WriteLine writes one record as WriteBenchfmt does: for printing runs as
// they finish.
func (r Record) WriteLine(w io.Writer) error { return r.writeBenchLine(w) }

// fmtNum prints v with about four significant digits, no exponent.
func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1000 || v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " | ")
	return strings.TrimSpace(s)
}

// row is the medians of one benchmark over its rounds.
type row struct {
	name, server, workload string
	conns, size, depth     int
	rate                   string
	rateRPS                float64 // the offered rate, resolved
	runs, failed           int
	m                      map[string]float64 // unit -> median
	clientBound            int                // rounds labelled client-bound
	notes                  []string
	xFloor                 float64 // median cpu-ns/req over the floor's; 0: no floor
}

// rows returns the medians of every benchmark over its rounds (see
// Summaries).
func (rep *Report) rows() []*row {
	var out []*row
	sums := rep.Summaries()
	xFloor := floorRatios(sums)
	for _, s := range sums {
		rw := &row{name: s.Name, server: s.Server, workload: s.Workload, conns: s.Conns, size: s.Size, depth: s.Depth,
			rate: s.Rate, rateRPS: s.RateRPS, runs: s.Runs, failed: s.Failed, clientBound: s.ClientBound, notes: s.Notes, m: map[string]float64{},
			xFloor: xFloor[s.Name]}
		for u, st := range s.Stats {
			rw.m[u] = st.Median
		}
		out = append(out, rw)
	}
	return out
}

// WriteTable writes a table of the medians, one row per server and
// workload, with the client-bound label and failures, and where the run
// has floor servers, each row's CPU per request over its floor's ("x
// floor"); then the servers compared on CPU and user time per request
// (writeComparisons).
func (rep *Report) WriteTable(w io.Writer) error {
	rows := rep.rows()
	var main, idle []*row
	hasLat, hasRate, hasTSys, hasFloor := false, false, false, false
	for _, r := range rows {
		if r.workload == Idle {
			idle = append(idle, r)
			continue
		}
		main = append(main, r)
		_, lat := r.m["p50-ns"]
		_, ts := r.m["t-syscalls/req"]
		hasLat, hasRate, hasTSys, hasFloor = hasLat || lat, hasRate || r.rate != "", hasTSys || ts, hasFloor || r.xFloor > 0
	}
	if len(main) > 0 {
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
		head := []string{"server", "workload", "conns", "size", "depth"}
		if hasRate {
			head = append(head, "rate", "offered")
		}
		head = append(head, "req/s", "user ns/req", "sys ns/req")
		if hasFloor {
			head = append(head, "x floor")
		}
		head = append(head, "syscalls/req")
		if hasTSys {
			head = append(head, "t-sysc/req")
		}
		if hasLat {
			head = append(head, "p50", "p99", "p99.9")
		}
		head = append(head, "srv cpu", "cli cpu", "")
		fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
		for _, r := range main {
			size := strconv.Itoa(r.size)
			if r.workload == HTTP || r.workload == HTTPS {
				size = "-"
			}
			c := []string{r.server, r.workload, strconv.Itoa(r.conns), size, strconv.Itoa(r.depth)}
			if hasRate {
				offered := "-"
				if r.rateRPS > 0 {
					offered = strconv.FormatFloat(r.rateRPS, 'f', 0, 64)
				}
				c = append(c, dash(r.rate), offered)
			}
			c = append(c, cell(r, "req/s", 0), cell(r, "user-ns/req", 0), cell(r, "sys-ns/req", 0))
			if hasFloor {
				xf := "-"
				if r.xFloor > 0 {
					xf = strconv.FormatFloat(r.xFloor, 'f', 2, 64)
				}
				c = append(c, xf)
			}
			c = append(c, cell(r, "syscalls/req", 2))
			if hasTSys {
				c = append(c, cell(r, "t-syscalls/req", 2))
			}
			if hasLat {
				c = append(c, dur(r, "p50-ns"), dur(r, "p99-ns"), dur(r, "p99.9-ns"))
			}
			c = append(c, pct(r, "server-cpu-%"), pct(r, "client-cpu-%"), label(r))
			fmt.Fprintln(tw, strings.Join(c, "\t")+"\t")
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(idle) > 0 {
		if len(main) > 0 {
			fmt.Fprintln(w)
		}
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "server\tidle conns\tRSS/conn\tRSS\t\t")
		for _, r := range idle {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t\n", r.server, r.conns, bytesCell(r, "rss-bytes/conn"), bytesCell(r, "rss-bytes"), label(r))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if err := writeComparisons(w, rep.Summaries()); err != nil {
		return err
	}
	if err := rep.writeKProfile(w, main); err != nil {
		return err
	}
	return rep.writeByName(w)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cell(r *row, unit string, prec int) string {
	v, ok := r.m[unit]
	if !ok {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func pct(r *row, unit string) string {
	v, ok := r.m[unit]
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", v)
}

func dur(r *row, unit string) string {
	v, ok := r.m[unit]
	if !ok {
		return "-"
	}
	d := time.Duration(v)
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

func bytesCell(r *row, unit string) string {
	v, ok := r.m[unit]
	if !ok {
		return "-"
	}
	switch {
	case math.Abs(v) >= 10<<20:
		return fmt.Sprintf("%.0f MiB", v/(1<<20))
	case math.Abs(v) >= 10<<10:
		return fmt.Sprintf("%.0f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}

// label says what a reader must know of a row: failures, client-bound
// rounds, notes.
func label(r *row) string {
	var l []string
	if r.failed > 0 {
		l = append(l, fmt.Sprintf("FAILED %d/%d", r.failed, r.runs))
	}
	if r.clientBound > 0 {
		if r.clientBound == r.runs-r.failed {
			l = append(l, "client-bound")
		} else {
			l = append(l, fmt.Sprintf("client-bound %d/%d", r.clientBound, r.runs-r.failed))
		}
	}
	l = append(l, r.notes...)
	return strings.Join(l, "; ")
}

// WriteJSON writes the whole report as indented JSON: the host, the
// settings, every run's record, (key "summary") every benchmark's
// metrics over its rounds (Summaries), and (key "comparisons") every
// pair of servers of a cell compared on CPU and user time per request
// (Comparisons), so that a reader needs no arithmetic of its own for
// medians, spreads and tests.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	sums := rep.Summaries()
	cs := []Comparison{}
	for _, u := range compareUnits {
		cs = append(cs, comparisons(sums, u)...)
	}
	return enc.Encode(struct {
		*Report
		Summary     []Summary    `json:"summary"`
		Comparisons []Comparison `json:"comparisons"`
	}{rep, sums, cs})
}

// WriteCSV writes one row per run.
func (rep *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{
		"name", "round", "server", "kind", "workload", "conns", "size", "depth", "rate", "rate_rps",
		"seconds", "requests", "req_per_sec", "mb_per_sec",
		"server_user_ns_per_req", "server_sys_ns_per_req", "server_busy", "client_busy", "client_bound",
		"syscalls_per_req", "transport_syscalls_per_req",
		"p50_ns", "p99_ns", "p999_ns", "max_ns", "rss_per_conn", "errors", "error",
	})
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, r := range rep.Records {
		sysc, tsysc := "", ""
		if r.Syscalls >= 0 {
			sysc = f(r.perReq(float64(r.Syscalls)))
		}
		if v, ok := r.TransportStats["syscalls"]; ok {
			tsysc = f(r.perReq(float64(v)))
		}
		cw.Write([]string{
			r.Name, strconv.Itoa(r.Round), r.Server, r.Kind, r.Workload,
			strconv.Itoa(r.Conns), strconv.Itoa(r.Size), strconv.Itoa(r.Depth), r.Rate, f(r.RateRPS),
			f(r.Seconds), strconv.FormatUint(r.Requests, 10), f(r.ReqPerSec), f(r.MBPerSec),
			f(r.perReq(float64(r.ServerUserNs))), f(r.perReq(float64(r.ServerSysNs))), f(r.ServerBusy), f(r.ClientBusy),
			strconv.FormatBool(r.ClientBound), sysc, tsysc,
			strconv.FormatInt(r.P50ns, 10), strconv.FormatInt(r.P99ns, 10), strconv.FormatInt(r.P999ns, 10), strconv.FormatInt(r.MaxNs, 10),
			f(r.RSSPerConn), strconv.FormatUint(r.Errors, 10), oneLine(r.Err),
		})
	}
	cw.Flush()
	return cw.Error()
}

// writeByName writes, for runs counted with -syscalls, the most frequent
// system calls per request (medians over rounds).
func (rep *Report) writeByName(w io.Writer) error {
	var order []string
	per := map[string]map[string][]float64{}
	for _, r := range rep.Records {
		if r.Failed() || r.SyscallsByName == nil || r.Requests == 0 {
			continue
		}
		if per[r.Name] == nil {
			per[r.Name] = map[string][]float64{}
			order = append(order, r.Name)
		}
		for k, v := range r.SyscallsByName {
			per[r.Name][k] = append(per[r.Name][k], r.perReq(float64(v)))
		}
	}
	if len(order) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nsystem calls per request, by name (most frequent first):\n")
	for _, n := range order {
		counts := map[string]int64{}
		med := map[string]float64{}
		for k, v := range per[n] {
			med[k] = median(v)
			counts[k] = int64(med[k] * 1e6)
		}
		var parts []string
		for i, k := range topSyscalls(counts) {
			if i == 8 || med[k] < 0.005 {
				break
			}
			parts = append(parts, fmt.Sprintf("%s %.2f", k, med[k]))
		}
		if _, err := fmt.Fprintf(w, "  %s: %s\n", strings.TrimPrefix(n, "Benchmark"), strings.Join(parts, ", ")); err != nil {
			return err
		}
	}
	return nil
}
