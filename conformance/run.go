package conformance

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
)

// A testCase is one behaviour every transport must have.
type testCase struct {
	name string
	// tcpOnly marks cases about TCP itself (RST, SIOCOUTQ); the others run
	// on unix sockets too.
	tcpOnly bool
	// smoke marks the cases Smoke runs, for a transport's other option sets.
	smoke bool
	// run is the case. It runs with s.Network set.
	run func(t *testing.T, s *Suite)
	// child, if set, is what a re-executed test binary runs for this case
	// (see childArgs and runChild; cases_lifecycle_emfile.go starts one).
	child func(t *testing.T, s *Suite)
}

// cases returns every case in the order they run. Each file holds one
// group.
func cases() []testCase {
	return slices.Concat(
		basicCases,     // cases_basic.go: order, echo, consumed bytes, batch isolation
		closeCases,     // cases_close.go: half-close, FIN, RST, Close and Abort
		bufferCases,    // cases_buffer.go: write and read backpressure, MaxReadBuffer
		errorCases,     // cases_errors.go: the error table, panics, Write from other goroutines
		lifecycleCases, // cases_lifecycle.go: Shutdown, EMFILE, Dial, addresses
		netconnCases,   // cases_netconn.go: the net.Conn adapter, nettest, net/http
		hazardCases,    // cases_hazard.go: lost bytes after deadlines, aborts mid-send, churn
		listenCases,    // cases_listen.go: listeners, Dial against Close, addresses
		inputCases,     // cases_input.go: the FIN while paused or closing, what a paused Conn takes in, output after Abort
	)
}

// Run runs every case on the transport spec names, once over TCP and once
// over unix sockets (the TCP-only cases excepted).
func Run(t *testing.T, spec string) {
	t.Helper()
	run(t, spec, cases())
}

// Smoke runs the cases marked smoke: a transport's suite for its other
// option sets.
func Smoke(t *testing.T, spec string) {
	t.Helper()
	var cs []testCase
	for _, c := range cases() {
		if c.smoke {
			cs = append(cs, c)
		}
	}
	run(t, spec, cs)
}

// Suite is what a case gets: the transport under test and helpers to use
// it.
type Suite struct {
	// Spec is the spec under test, as given to Run.
	Spec string
	// Name is the transport's registered name.
	Name string
	// Network is "tcp" or "unix".
	Network string
	// required reports that a skip must fail (MERLIN_REQUIRE).
	required bool
}

// Environment variables of a re-executed child.
const (
	envChild = "MERLIN_CONFORMANCE_CHILD" // network/case to run
	envSpec  = "MERLIN_CONFORMANCE_SPEC"
)

func run(t *testing.T, spec string, cs []testCase) {
	t.Helper()
	sp, err := transports.ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	base := Suite{Spec: spec, Name: sp.Name, required: required(sp.Name)}

	if child := os.Getenv(envChild); child != "" {
		runChild(t, base, child, cs)
		return
	}

	tr, err := transports.Open(spec, transports.Config{})
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			base.Skip(t, err.Error())
		}
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("Close of an unused transport: %v", err)
	}

	// The warm-up runs on t itself, not as a subtest that -run could
	// filter out: without it the baseline would miss what the runtime
	// opens lazily (its poller's descriptors), and every case would fail.
	ws := base
	ws.Network = "tcp"
	warmup(t, &ws)
	baseline := testutil.TakeBaseline()

	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			for _, c := range cs {
				if c.tcpOnly && network != "tcp" {
					continue
				}
				t.Run(c.name, func(t *testing.T) {
					t.Cleanup(func() { baseline.Check(t, 10*time.Second) })
					s := base
					s.Network = network
					c.run(t, &s)
				})
			}
		})
	}
}

// warmup runs one echo exchange, so that everything started lazily (the
// runtime's poller, pools) exists before the leak baseline. It closes all
// it opened before returning.
func warmup(t *testing.T, s *Suite) {
	t.Helper()
	tr := s.Open(t, nil)
	ln := s.Listen(t, tr, echoHandler{})
	c := s.DialClient(t, ln)
	msg := []byte("warm-up")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
		t.Fatalf("warm-up echo: got %q, %v", got, err)
	}
	c.Close()
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
}

// required reports whether MERLIN_REQUIRE lists name.
func required(name string) bool {
	for _, r := range strings.Split(os.Getenv("MERLIN_REQUIRE"), ",") {
		if strings.TrimSpace(r) == name {
			return true
		}
	}
	return false
}

// Skip skips the test, or fails it where MERLIN_REQUIRE lists the
// transport.
func (s *Suite) Skip(t testing.TB, why string) {
	t.Helper()
	if s.required {
		t.Fatalf("%s is required here (MERLIN_REQUIRE) but would be skipped: %s", s.Name, why)
	}
	t.Skip(why)
}

// Open opens the transport under test with a Config that edit may change
// (nil for the defaults); the spec's settings win over it. The transport
// is closed by t.Cleanup, and Close must return nil.
func (s *Suite) Open(t testing.TB, edit func(*transports.Config)) transports.Transport {
	t.Helper()
	cfg := transports.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if edit != nil {
		edit(&cfg)
	}
	tr, err := transports.Open(s.Spec, cfg)
	if err != nil {
		t.Fatalf("Open(%q): %v", s.Spec, err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("transport Close: %v", err)
		}
	})
	return tr
}

// Address returns a fresh loopback address for s.Network.
func (s *Suite) Address(t testing.TB) string {
	t.Helper()
	return testutil.LoopbackAddress(t, s.Network)
}

// Listen listens with h on a fresh loopback address of s.Network. The
// listener is closed by t.Cleanup.
func (s *Suite) Listen(t testing.TB, tr transports.Transport, h transports.Handler) transports.Listener {
	t.Helper()
	ln, err := tr.Listen(s.Network, s.Address(t), h)
	if err != nil {
		t.Fatalf("Listen(%s): %v", s.Network, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// DialClient connects a Go net client to ln. It is closed by t.Cleanup.
func (s *Suite) DialClient(t testing.TB, ln transports.Listener) net.Conn {
	t.Helper()
	a := ln.Addr()
	c, err := net.DialTimeout(a.Network(), a.String(), 10*time.Second)
	if err != nil {
		t.Fatalf("dial %v: %v", a, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// childArgs returns the arguments of a re-executed test binary that runs
// the top-level test top alone: the binary's own flags (-transport, say)
// pass on, go test's do not.
func childArgs(top string) []string {
	args := []string{"-test.run=^" + regexp.QuoteMeta(top) + "$", "-test.count=1", "-test.v", "-test.timeout=5m"}
	for _, a := range os.Args[1:] {
		if !strings.HasPrefix(a, "-test.") {
			args = append(args, a)
		}
	}
	return args
}

// runChild runs, in a re-executed test binary, the child function of the
// case named by envChild ("network/case/...").
func runChild(t *testing.T, base Suite, child string, cs []testCase) {
	network, name, _ := strings.Cut(child, "/")
	name, _, _ = strings.Cut(name, "/")
	if os.Getenv(envSpec) != base.Spec {
		t.Skipf("child for spec %q, not %q", os.Getenv(envSpec), base.Spec)
	}
	for _, c := range cs {
		if c.name == name && c.child != nil {
			s := base
			s.Network = network
			c.child(t, &s)
			return
		}
	}
	t.Fatalf("child: no case %q with a child function", child)
}
