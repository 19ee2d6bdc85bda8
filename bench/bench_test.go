package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/merlin-net/merlin/loadgen"
)

func TestParsePerfCSV(t *testing.T) {
	out := `# started on Wed Nov 25 00:08:08 2026

342518,,raw_syscalls:sys_enter,755195452,100.00,,
120000,,syscalls:sys_enter_read,755195452,100.00,,
0,,syscalls:sys_enter_openat,755195452,100.00,,
<not counted>,,syscalls:sys_enter_mmap,0,0.00,,
60000,,syscalls:sys_enter_write,755195452,100.00,,
`
	got, err := parsePerfCSV([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"total": 342518, "read": 120000, "write": 60000, "other": 162518}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("counts (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"other", "read", "write"}, topSyscalls(got)); d != "" {
		t.Errorf("top (-want +got):\n%s", d)
	}
	for _, bad := range []string{"", "# nothing\n", "<not supported>,,raw_syscalls:sys_enter,0,0,,\n"} {
		if _, err := parsePerfCSV([]byte(bad)); err == nil {
			t.Errorf("parsePerfCSV(%q): nil error", bad)
		}
	}
}

func TestParseStats(t *testing.T) {
	got, ok := parseStats("stats accepted=3 bytes_in=100 sqes=7")
	if !ok {
		t.Fatal("not parsed")
	}
	if d := cmp.Diff(map[string]uint64{"accepted": 3, "bytes_in": 100, "sqes": 7}, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	for _, bad := range []string{"listening on x", "stats a=b", "stats a"} {
		if _, ok := parseStats(bad); ok {
			t.Errorf("parseStats(%q) ok", bad)
		}
	}
}

func TestBenchName(t *testing.T) {
	for _, tc := range []struct {
		w    Workload
		want string
	}{
		{Workload{Kind: Echo, Conns: 64, Size: 64, Depth: 1}, "BenchmarkEcho/server=s/conns=64/size=64/depth=1"},
		{Workload{Kind: Echo, Conns: 64, Size: 64, Depth: 16, Rate: "80%"}, "BenchmarkEcho/server=s/conns=64/size=64/depth=16/rate=80%"},
		{Workload{Kind: HTTP, Conns: 256, Depth: 16}, "BenchmarkHTTP/server=s/conns=256/depth=16"},
		{Workload{Kind: HTTPS, Conns: 256, Depth: 1}, "BenchmarkHTTPS/server=s/conns=256/depth=1"},
		{Workload{Kind: Idle, Conns: 1000, Size: 64, Depth: 1}, "BenchmarkIdle/server=s/conns=1000"},
		{Workload{Kind: Churn, Conns: 8, Size: 64, Depth: 1}, "BenchmarkChurn/server=s/conns=8/size=64/depth=1"},
	} {
		if got := benchName(tc.w, "s"); got != tc.want {
			t.Errorf("benchName(%+v) = %q, want %q", tc.w, got, tc.want)
		}
	}
}

// A relative rate is a percentage of the slowest server's median
// closed-loop throughput on the same workload; failed runs do not count.
func TestResolveRate(t *testing.T) {
	w := Workload{Kind: Echo, Conns: 64, Size: 64, Depth: 1}
	b := &bencher{rep: &Report{}}
	add := func(server string, rps float64, failed bool) {
		r := Record{Server: server, Workload: Echo, Conns: 64, Size: 64, Depth: 1, ReqPerSec: rps}
		if failed {
			r.Err = "boom"
		}
		b.rep.Records = append(b.rep.Records, r)
	}
	add("a", 100, false)
	add("a", 300, false)
	add("a", 200, false) // median 200
	add("b", 400, false)
	add("b", 10, true) // failed: ignored
	add("b", 500, false)
	w.Rate = "50%"
	got, err := b.resolveRate(w)
	if err != nil || got != 100 {
		t.Errorf("resolveRate(50%%) = %v, %v; want 100 (half of a's median 200)", got, err)
	}
	w.Rate = "12345"
	if got, err := b.resolveRate(w); err != nil || got != 12345 {
		t.Errorf("resolveRate(12345) = %v, %v", got, err)
	}
	w.Conns = 1
	w.Rate = "50%"
	if _, err := b.resolveRate(w); err == nil {
		t.Error("resolveRate with no closed-loop runs: nil error")
	}
}

// The output: configuration lines, one benchmark line per run (failed runs
// as comments), a table of medians with the client-bound label.
func TestOutput(t *testing.T) {
	rep := &Report{Host: Host{GOOS: "linux", GOARCH: "amd64", CPU: "X", Kernel: "Linux 6", Go: "go1.26", CPUs: 2},
		Settings: Settings{Pinning: "server=0,client=1", ServerGOMAXPROCS: 1, ClientTransport: "net", Perf: "perf 6"}}
	ok := Record{Name: "BenchmarkEcho/server=a/conns=1/size=64/depth=1", Server: "a", Workload: Echo, Conns: 1, Size: 64, Depth: 1,
		Seconds: 2, Requests: 200000, ReqPerSec: 100000, MBPerSec: 6.4, ServerUserNs: 2e8, ServerSysNs: 8e8, ServerBusy: 0.5,
		ClientBusy: 1, ClientBound: true, Syscalls: 600000, TransportStats: map[string]uint64{"syscalls": 400000}}
	bad := ok
	bad.Round, bad.Err = 1, "a exited\nstderr: x"
	idle := Record{Name: "BenchmarkIdle/server=a/conns=100", Server: "a", Workload: Idle, Conns: 100, RSSPerConn: 4096, RSSLoaded: 5 << 20, Syscalls: -1}
	rep.Records = []Record{ok, bad, idle}
	var b bytes.Buffer
	if err := rep.WriteBenchfmt(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"goos: linux\n", "cpu: X\n", "pinning: server=0,client=1\n", "Unit req/s better=higher\n",
		"BenchmarkEcho/server=a/conns=1/size=64/depth=1\t200000\t10000 ns/op\t100000 req/s\t6.400 MB/s\t5000 cpu-ns/req\t1000 user-ns/req\t4000 sys-ns/req\t3 syscalls/req\t2 t-syscalls/req\t0 ctxsw/req\t50 server-cpu-%\t100 client-cpu-%\t0 client-cpu-ns/req\n",
		"# BenchmarkEcho/server=a/conns=1/size=64/depth=1 round 1 failed: a exited | stderr: x\n",
		"BenchmarkIdle/server=a/conns=100\t100\t4096 rss-bytes/conn\t5242880 rss-bytes\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	table := b.String()
	for _, want := range []string{"100000", "FAILED 1/2", "client-bound", "4096 B"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	b.Reset()
	if err := rep.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "\n"); n != 4 {
		t.Errorf("CSV has %d lines, want a header and 3 rows:\n%s", n, b.String())
	}
}

// Summaries: every metric over the rounds that succeeded, as median,
// minimum, maximum and the values with their rounds; failed rounds are
// counted apart.
func TestBenchSummaries(t *testing.T) {
	rec := func(round int, rps float64, user int64) Record {
		return Record{Name: "BenchmarkEcho/server=a/conns=1/size=64/depth=1", Round: round, Server: "a", Workload: Echo, Conns: 1, Size: 64, Depth: 1,
			Seconds: 1, Requests: 1000, ReqPerSec: rps, ServerUserNs: user, Syscalls: -1}
	}
	bad := rec(1, 1, 1)
	bad.Err = "boom"
	rep := &Report{Records: []Record{rec(0, 300, 3000), bad, rec(2, 100, 1000), rec(3, 200, 2000)}}
	sums := rep.Summaries()
	if len(sums) != 1 {
		t.Fatalf("%d summaries, want 1", len(sums))
	}
	s := sums[0]
	if s.Runs != 4 || s.Failed != 1 || s.Cell() != "echo/conns=1/size=64/depth=1" {
		t.Errorf("runs %d, failed %d, cell %q", s.Runs, s.Failed, s.Cell())
	}
	if d := cmp.Diff(Stat{Median: 200, Min: 100, Max: 300, Values: []float64{300, 100, 200}, Rounds: []int{0, 2, 3}}, s.Stats["req/s"]); d != "" {
		t.Errorf("req/s (-want +got):\n%s", d)
	}
	if d := cmp.Diff(Stat{Median: 2, Min: 1, Max: 3, Values: []float64{3, 1, 2}, Rounds: []int{0, 2, 3}}, s.Stats["user-ns/req"]); d != "" {
		t.Errorf("user-ns/req (-want +got):\n%s", d)
	}
	if _, ok := s.Stats["p99-ns"]; ok {
		t.Error("a closed loop has latency percentiles")
	}
	var b bytes.Buffer
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"summary": [`) || !strings.Contains(b.String(), `"records": [`) {
		t.Errorf("JSON lacks the summary or the records:\n%s", b.String())
	}
}

// Estimate plans what Run runs: closed loops a relative rate needs are
// added, every run costs its windows plus the overhead.
func TestBenchEstimate(t *testing.T) {
	o := Options{
		Servers: []Server{{Name: "a"}, {Name: "b"}, {Name: "c"}},
		Workloads: []Workload{
			{Kind: Echo, Conns: 64, Size: 64, Depth: 1, Rate: "50%"},
			{Kind: Echo, Conns: 64, Size: 64, Depth: 1, Rate: "90%"},
			{Kind: Idle, Conns: 100, Size: 64, Depth: 1},
		},
		Count: 2, Warmup: time.Second, Duration: 3 * time.Second, IdleHold: 500 * time.Millisecond,
	}
	runs, total := Estimate(o, 250*time.Millisecond)
	// (1 closed + 2 open) x 3 servers x 2 rounds at 4.25 s, and 3 x 2 idle
	// runs at 0.75 s.
	if runs != 24 || total != 18*4250*time.Millisecond+6*750*time.Millisecond {
		t.Errorf("Estimate = %d runs, %v", runs, total)
	}
}

// A server that lists its apps runs only their workloads: gnet serves
// echo, fasthttp http; merlin's servers (no list) serve both.
func TestPlanSkipsAppsAServerLacks(t *testing.T) {
	o := Options{
		Servers: []Server{{Name: "uring"}, {Name: "gnet", Apps: []string{"echo"}}, {Name: "fasthttp", Apps: []string{"http"}}},
		Workloads: []Workload{
			{Kind: Echo, Conns: 64, Size: 64, Depth: 1},
			{Kind: HTTP, Conns: 64, Depth: 16},
			{Kind: Idle, Conns: 100, Size: 64, Depth: 1},
		},
		Count: 1,
	}
	var got []string
	for _, pr := range planRuns(o) {
		got = append(got, pr.w.Kind+" "+pr.srv.Name)
	}
	want := []string{"echo uring", "echo gnet", "http uring", "http fasthttp", "idle uring", "idle gnet"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("planRuns (-want +got):\n%s", diff)
	}
}

// The https workload runs only on the servers that serve TLS: merlin's
// netconn servers and the peers that say tls=true.
func TestPlanSkipsTLSAServerLacks(t *testing.T) {
	o := Options{
		Servers: []Server{{Name: "uring", Kind: KindTransport}, {Name: "uring-netconn", Kind: KindNetConn, TLS: true},
			{Name: "netstd", Kind: KindPeer, Apps: []string{"echo", "http"}, TLS: true}, {Name: "gnet", Kind: KindPeer, Apps: []string{"echo"}},
			{Name: "nginx", Kind: KindPeer, Apps: []string{"http"}}},
		Workloads: []Workload{{Kind: Echo, Conns: 8, Size: 64, Depth: 1}, {Kind: HTTPS, Conns: 8, Depth: 1}},
		Count:     1,
	}
	var got []string
	for _, pr := range planRuns(o) {
		got = append(got, pr.w.Kind+" "+pr.srv.Name)
	}
	want := []string{"echo uring", "echo uring-netconn", "echo netstd", "echo gnet", "https uring-netconn", "https netstd"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("planRuns (-want +got):\n%s", diff)
	}
}

// setAffinity gives back the CPUs pinSelf took away (Run does, when it
// returns).
func TestBenchAffinityRestored(t *testing.T) {
	cpus, err := allowedCPUs()
	if err != nil {
		t.Skip(err)
	}
	if err := pinSelf(cpus[len(cpus)-1]); err != nil {
		t.Fatal(err)
	}
	if err := setAffinity(cpus); err != nil {
		t.Fatal(err)
	}
	got, err := allowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(cpus, got); d != "" {
		t.Errorf("CPUs after restoring (-want +got):\n%s", d)
	}
}

// The generator's engine runs echo and http (in the clear); churn, idle
// and https stay on net, whatever the generator.
func TestEngine(t *testing.T) {
	for _, generator := range []string{loadgen.EngineRing, loadgen.EngineNet} {
		b := &bencher{generator: generator}
		got := map[string]string{}
		for _, kind := range []string{Echo, HTTP, HTTPS, Churn, Idle} {
			got[kind] = b.engine(Workload{Kind: kind})
		}
		want := map[string]string{Echo: generator, HTTP: generator, HTTPS: loadgen.EngineNet, Churn: loadgen.EngineNet, Idle: loadgen.EngineNet}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("generator %s: engines by workload (-want +got):\n%s", generator, d)
		}
	}
}

// The wrk generator is refused, before any server starts, for what wrk
// cannot drive.
func TestWrkGeneratorRefused(t *testing.T) {
	if err := loadgen.EngineAvailable(loadgen.EngineWrk); err != nil {
		t.Skip(err)
	}
	http := Workload{Kind: HTTP, Conns: 8, Depth: 1}
	open := http
	open.Rate = "1000"
	for name, o := range map[string]Options{
		"echo":         {Workloads: []Workload{{Kind: Echo, Conns: 8, Size: 64, Depth: 1}}},
		"https":        {Workloads: []Workload{{Kind: HTTPS, Conns: 8, Depth: 1}}},
		"open loop":    {Workloads: []Workload{open}},
		"POST /echo":   {Workloads: []Workload{http}, HTTPPath: loadgen.EchoPath},
		"part seconds": {Workloads: []Workload{http}, Duration: 1500 * time.Millisecond},
	} {
		o.Generator = loadgen.EngineWrk
		o.Servers = []Server{{Name: "never-started"}}
		o.ServerCPU, o.ClientCPU = -1, -1
		if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "wrk") {
			t.Errorf("%s: Run = %v, want the wrk generator refused", name, err)
		}
	}
}
