package cli

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/merlin-net/merlin/bench"
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
		if diff := cmp.Diff(tc.want, splitServers(tc.in)); diff != "" {
			t.Errorf("splitServers(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestPickServersWithOptions(t *testing.T) {
	all := []bench.Server{
		{Name: "uring", Kind: bench.KindTransport, Argv: []string{"merlin", "serve", "-transport", "uring:loops=1"}},
		{Name: "gnet", Kind: bench.KindPeer, Argv: []string{"/tmp/peer-gnet"}},
	}
	got, err := pickServers(all, splitServers("uring:minwait=50us,bufcount=128,uring,gnet"))
	if err != nil {
		t.Fatal(err)
	}
	want := []bench.Server{
		{Name: "uring:minwait=50us,bufcount=128", Kind: bench.KindTransport, Argv: []string{"merlin", "serve", "-transport", "uring:loops=1,minwait=50us,bufcount=128"}},
		all[0], all[1],
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pickServers (-want +got):\n%s", diff)
	}
	if all[0].Argv[3] != "uring:loops=1" {
		t.Errorf("pickServers changed the base server's argv: %q", all[0].Argv)
	}
	for _, bad := range []string{"gnet:x=1", "uring:bad key=1", "nosuch:x=1"} {
		if _, err := pickServers(all, splitServers(bad)); err == nil {
			t.Errorf("pickServers(%q): no error", bad)
		}
	}
}
