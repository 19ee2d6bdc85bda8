package bench

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSplitServers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"uring,gnet", []string{"uring", "gnet"}},
		{"uring:minwait=50us,gnet", []string{"uring:minwait=50us", "gnet"}},
		{"uring:a=1,b=2,gnet,uring:c=3", []string{"uring:a=1,b=2", "gnet", "uring:c=3"}},
		{"gnet,a=1", []string{"gnet", "a=1"}}, // no server with options before it: an error later
	} {
		if diff := cmp.Diff(tc.want, SplitServers(tc.in)); diff != "" {
			t.Errorf("SplitServers(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestPickServersWithOptions(t *testing.T) {
	all := []Server{
		{Name: "uring", Kind: KindTransport, Argv: []string{"merlin", "serve", "-transport", "uring:loops=1"}},
		{Name: "gnet", Kind: KindPeer, Argv: []string{"/tmp/peer-gnet"}},
	}
	got, err := PickServers(all, SplitServers("uring:minwait=50us,bufcount=128,uring,gnet"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Server{
		{Name: "uring:minwait=50us,bufcount=128", Kind: KindTransport, Argv: []string{"merlin", "serve", "-transport", "uring:loops=1,minwait=50us,bufcount=128"}},
		all[0], all[1],
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PickServers (-want +got):\n%s", diff)
	}
	if all[0].Argv[3] != "uring:loops=1" {
		t.Errorf("PickServers changed the base server's argv: %q", all[0].Argv)
	}
	for _, bad := range []string{"gnet:x=1", "uring:bad key=1", "nosuch:x=1"} {
		if _, err := PickServers(all, SplitServers(bad)); err == nil {
			t.Errorf("PickServers(%q): no error", bad)
		}
	}
}

// A plan counts the runs bench will make, peers by name, unbuilt; a bad
// command line is a UsageError, one that names no server is not.
func TestFlagsPlan(t *testing.T) {
	f, err := ParseFlags([]string{"-peers", "a,b", "-servers", "a,b", "-conns", "1,64", "-sizes", "64,4k", "-depths", "1", "-count", "3", "-warmup", "1s", "-duration", "2s"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.Plan("merlin", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if p.Runs != 2*4*3 || p.Total != 24*4*time.Second || p.Servers != 2 || p.Workloads != 4 {
		t.Errorf("plan: %+v; want 24 runs of 2 servers x 4 workloads, 1m36s", p)
	}
	for _, bad := range [][]string{{"-conns", "x"}, {"-nosuchflag"}, {"stray"}, {"-count", "0"}, {"-perf", "off", "-kprofile"}, {"-rates", "5%x"}, {"-workloads", "nosuch"}} {
		var ue *UsageError
		if _, err := ParseFlags(bad); !errors.As(err, &ue) {
			t.Errorf("ParseFlags(%q): %v, want a UsageError", bad, err)
		}
	}
	f, err = ParseFlags([]string{"-peers", "a", "-servers", "nosuch"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Plan("merlin", 0); err == nil {
		t.Error("Plan of -servers nosuch: nil error")
	}
}

// -http-tls makes the http workload https, leaves echo alone, and needs
// the http workload; merlin's netconn servers serve TLS, the inline ones
// do not.
func TestFlagsHTTPTLS(t *testing.T) {
	f, err := ParseFlags([]string{"-workloads", "echo,http", "-http-tls", "-conns", "8", "-depths", "1,16"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := f.Matrix()
	if err != nil {
		t.Fatal(err)
	}
	want := []Workload{
		{Kind: Echo, Conns: 8, Size: 64, Depth: 1}, {Kind: Echo, Conns: 8, Size: 64, Depth: 16},
		{Kind: HTTPS, Conns: 8, Depth: 1}, {Kind: HTTPS, Conns: 8, Depth: 16},
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("matrix (-want +got):\n%s", diff)
	}
	var ue *UsageError
	if _, err := ParseFlags([]string{"-workloads", "echo", "-http-tls"}); !errors.As(err, &ue) {
		t.Errorf("-http-tls without http: %v, want a UsageError", err)
	}
	srvs, err := transportServers("merlin", "", true, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srvs {
		if s.TLS != (s.Kind == KindNetConn) {
			t.Errorf("%s (%s): TLS %t, want it for the netconn servers only", s.Name, s.Kind, s.TLS)
		}
	}
}

// -quick sets the windows and the matrix only where they were not given.
func TestFlagsQuick(t *testing.T) {
	f, err := ParseFlags([]string{"-quick", "-count", "3", "-rates", "closed"})
	if err != nil {
		t.Fatal(err)
	}
	got := []any{f.Count, f.Rates, f.Duration, f.Warmup, f.Workloads, f.Netconn}
	want := []any{3, "closed", 1500 * time.Millisecond, 300 * time.Millisecond, "echo,idle", false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("-quick -count 3 -rates closed (-want +got):\n%s", diff)
	}
	f, err = ParseFlags([]string{"-count", "3"})
	if err != nil {
		t.Fatal(err)
	}
	if f.Duration != 10*time.Second || !f.Netconn {
		t.Errorf("without -quick: duration %v, netconn %v; want the defaults", f.Duration, f.Netconn)
	}
}
