package cli

import (
	"net"
	"strings"
	"testing"

	"github.com/merlin-net/merlin/transports"
)

// Usage, usage errors and errors: the exit status and what stderr says.
func TestErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name   string
		args   []string
		status int
		stdout []string // substrings of stdout
		stderr []string // substrings of stderr
	}{
		{name: "no-args", args: nil, status: 2, stderr: []string{"serve", "load", "transports"}},
		{name: "help", args: []string{"-h"}, status: 0, stdout: []string{"serve", "load", "transports"}},
		{name: "unknown-command", args: []string{"frobnicate"}, status: 2, stderr: []string{`unknown command "frobnicate"`}},
		{name: "serve-help", args: []string{"serve", "-h"}, status: 0, stdout: []string{"-transport", "-shutdown-timeout", "listening on ADDR", "default 127.0.0.1:7000"}},
		{name: "serve-bad-flag", args: []string{"serve", "-bogus"}, status: 2, stderr: []string{"-bogus"}},
		{name: "serve-argument", args: []string{"serve", "extra"}, status: 2, stderr: []string{`"extra"`}},
		{name: "serve-unix-no-addr", args: []string{"serve", "-network", "unix"}, status: 2, stderr: []string{"socket path"}},
		{name: "serve-bad-network", args: []string{"serve", "-network", "sctp"}, status: 2, stderr: []string{"sctp"}},
		{name: "serve-bad-key", args: []string{"serve", "-transport", "sockets:bogus=1", "-addr", "127.0.0.1:0"}, status: 1,
			stderr: []string{"bogus", "valid:", "maxwritebuffer", "closelinger"}},
		{name: "serve-bad-value", args: []string{"serve", "-transport", "sockets:nodelay=maybe", "-addr", "127.0.0.1:0"}, status: 1,
			stderr: []string{"nodelay=maybe"}},
		{name: "serve-unknown-transport", args: []string{"serve", "-transport", "carrier-pigeon", "-addr", "127.0.0.1:0"}, status: 1,
			stderr: []string{"carrier-pigeon", "registered:", "sockets"}},
		{name: "serve-unknown-app", args: []string{"serve", "-app", "nope", "-addr", "127.0.0.1:0"}, status: 1, stderr: []string{`"nope"`, "apps: echo"}},
		{name: "serve-addr-in-use", args: []string{"serve", "-transport", "sockets", "-addr", busy.Addr().String()}, status: 1, stderr: []string{"address already in use"}},
		{name: "load-help", args: []string{"load", "-h"}, status: 0, stdout: []string{"-conns", "-depth", "BenchmarkLoad"}},
		{name: "load-bad-size", args: []string{"load", "-size", "big"}, status: 2, stderr: []string{"-size big"}},
		{name: "load-unknown-app", args: []string{"load", "-app", "nope"}, status: 1, stderr: []string{`"nope"`}},
		{name: "load-refused", args: []string{"load", "-addr", closedAddr, "-conns", "3", "-duration", "1s"}, status: 1,
			stdout: []string{"errors: 3", "refused", "3 errors"}, stderr: []string{"3 of 3 connections failed"}},
		{name: "transports-argument", args: []string{"transports", "extra"}, status: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := merlin(t, tc.args...)
			if r.status != tc.status {
				t.Errorf("exit status %d, want %d", r.status, tc.status)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q", s)
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q", s)
				}
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			}
		})
	}
}

// Subcommands planned but not written are not advertised.
func TestTransports(t *testing.T) {
	r := merlin(t, "transports")
	if r.status != 0 {
		t.Fatalf("exit status %d\nstderr:\n%s", r.status, r.stderr)
	}
	// The sockets transport, and on the lines after its name, that it is
	// available here.
	_, after, ok := strings.Cut(r.stdout, "\nsockets: ")
	if !ok {
		t.Fatalf("no \"sockets: \" line:\n%s", r.stdout)
	}
	block, _, _ := strings.Cut(after, "\n\n")
	if !strings.Contains(block, "\n  available: ") {
		t.Errorf("sockets is not listed as available:\n%s", r.stdout)
	}
	if !strings.Contains(block, "\n  ignores common keys: loops\n") {
		t.Errorf("sockets does not say it ignores loops:\n%s", r.stdout)
	}
	for _, o := range transports.CommonOptions {
		if !strings.Contains(r.stdout, o.Key) {
			t.Errorf("common key %s is not listed", o.Key)
		}
	}
	t.Logf("\n%s", r.stdout)
}

func TestTransportNames(t *testing.T) {
	r := merlin(t, "transports", "-names")
	if r.status != 0 {
		t.Fatalf("exit status %d\nstderr:\n%s", r.status, r.stderr)
	}
	var want []string
	for _, d := range transports.Drivers() {
		want = append(want, d.Name)
	}
	if got := strings.Fields(r.stdout); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("merlin transports -names printed %q, want %q", got, want)
	}
}
