package bench

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/merlin-net/merlin/internal/kprofile"
)

// A profile becomes ns per request by category (every category present),
// their sum, the measured time beside it, and the commonest leaves of
// other.
func TestKProfileOf(t *testing.T) {
	p := &kprofile.Profile{
		Samples: 10, Ns: 2500, Threads: 2, OtherProcesses: 10, Idle: 5,
		ByCategory:   map[string]int64{"tcpip": 6, "copy": 2, kprofile.Other: 2},
		NsByCategory: map[string]int64{"tcpip": 1500, "copy": 500, kprofile.Other: 500},
		OtherLeaves:  map[string]int64{"foo": 1, "bar": 1},
	}
	k := kprofileOf(p, 250*time.Nanosecond, 100, 2000, true, []string{"x.gz"})
	if len(k.NsPerReq) != len(kprofile.Categories) {
		t.Errorf("%d categories, want every one (%d)", len(k.NsPerReq), len(kprofile.Categories))
	}
	if k.NsPerReq["tcpip"] != 15 || k.NsPerReq["copy"] != 5 || k.NsPerReq["io_uring"] != 0 {
		t.Errorf("ns/req: %v", k.NsPerReq)
	}
	if k.SampledNsPerReq != 25 || k.MeasuredNsPerReq != 20 || k.Ratio != 1.25 || k.Samples != 10 || k.PeriodNs != 250 || k.Threads != 2 || k.SharedCPU != 0.25 {
		t.Errorf("%+v", k)
	}
	if diff := cmp.Diff([]string{"bar 50%", "foo 50%"}, k.OtherLeaves); diff != "" {
		t.Errorf("other leaves (-want +got):\n%s", diff)
	}
}

// With -kprofile the benchmark lines carry every category (for benchstat),
// the header their units, and the table a section per cell.
func TestKProfileOutput(t *testing.T) {
	ns := map[string]float64{}
	for _, c := range kprofile.Categories {
		ns[c.ID] = 0
	}
	ns["tcpip"], ns["copy"], ns[kprofile.Other] = 700, 200, 50
	rec := Record{Name: "BenchmarkEcho/server=a/conns=64/size=64/depth=1", Server: "a", Workload: Echo, Conns: 64, Size: 64, Depth: 1,
		Seconds: 1, Requests: 1000, ServerUserNs: 100000, ServerSysNs: 900000, Syscalls: -1,
		KProfile: &KProfile{NsPerReq: ns, SampledNsPerReq: 950, MeasuredNsPerReq: 1000, Ratio: 0.95, Samples: 3800, PeriodNs: 250000}}
	plain := rec
	plain.Name, plain.Server, plain.KProfile = "BenchmarkEcho/server=b/conns=64/size=64/depth=1", "b", nil
	rep := &Report{Settings: Settings{KProfile: "perf record ..."}, Records: []Record{rec, plain}}
	var b bytes.Buffer
	if err := rep.WriteBenchfmt(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"kprofile: perf record ...\n", "Unit kp-tcpip-ns/req better=lower\n", "Unit kp-sum-ns/req better=lower\n",
		"\t700 kp-tcpip-ns/req\t200 kp-copy-ns/req\t", "\t50 kp-other-ns/req\t950 kp-sum-ns/req\t0.950 kp-sampled/measured\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "BenchmarkEcho/server=b/") && strings.Contains(line, "kp-") {
			t.Errorf("a run without -kprofile has kprofile metrics: %s", line)
		}
	}
	b.Reset()
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	table := b.String()
	i := strings.Index(table, "where the server's CPU goes")
	if i < 0 {
		t.Fatalf("no -kprofile section in the table:\n%s", table)
	}
	section := table[i:]
	for _, want := range []string{"echo conns=64/size=64/depth=1\n", "tcpip", "io_uring", "other", "sum/meas", "700", "950", "1000", "95.0%"} {
		if !strings.Contains(section, want) {
			t.Errorf("the -kprofile section lacks %q:\n%s", want, section)
		}
	}
	if strings.Contains(section, "\n        b ") || strings.Contains(section, " b  ") {
		t.Errorf("the -kprofile section shows server b, which was not sampled:\n%s", section)
	}
}

func TestRecordArgs(t *testing.T) {
	on0 := recordArgs(250*time.Microsecond, 0)
	if !slices.Equal(on0[len(on0)-2:], []string{"-C", "0"}) || !slices.Contains(on0, "250000") || !slices.Contains(on0, "-g") {
		t.Errorf("recordArgs(250µs, 0) = %q", on0)
	}
	if all := recordArgs(time.Millisecond, -1); all[len(all)-1] != "-a" {
		t.Errorf("recordArgs(1ms, -1) = %q, want every CPU (-a)", all)
	}
}

// ProbeKProfile names the Debian package when perf is missing, and
// passes where perf works (this host runs the suite as root).
func TestProbeKProfile(t *testing.T) {
	err := ProbeKProfile("/nonexistent/perf")
	if err == nil || !strings.Contains(err.Error(), "linux-perf") {
		t.Errorf("ProbeKProfile without perf: %v, want an error naming linux-perf", err)
	}
	if _, err := exec.LookPath("perf"); err != nil {
		t.Skip("perf is not installed")
	}
	if err := ProbeKProfile("perf"); err != nil {
		t.Errorf("ProbeKProfile: %v", err)
	}
}
