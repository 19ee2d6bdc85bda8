package conformance

import (
	"errors"
	"fmt"
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
	// smoke marks the cases SmokeFunc runs, for a transport's other option
	// sets.
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
		raceCases,      // cases_race.go: every Conn method from many goroutines while OnData runs
		timerCases,     // cases_timers.go: the application's timer, the write and idle timeouts
	)
}

// MakeTransport opens the transport under test, as nettest's MakePipe
// makes a pipe. cfg holds what the case asks for (a Loops of 1, a small
// MaxWriteBuffer, a Logger that discards); zero fields mean the defaults.
// Settings of the transport's own, as a spec's, win over cfg's fields, as
// they do in transports.Open. A transport this host cannot run is an
// error wrapping errors.ErrUnsupported that names the transport (as
// transports.Open's do: "transports: uring: ..."), so that MERLIN_REQUIRE
// can tell whether its skip must fail.
type MakeTransport func(cfg transports.Config) (transports.Transport, error)

// RunFunc runs every case on the transports open makes, once over TCP and
// once over unix sockets (the TCP-only cases excepted). Each case opens
// the transports it needs through open, so a transport from another module
// needs no registry. Cases that re-execute the test binary run the same
// top-level test in the child, which must call RunFunc again with the same
// function.
func RunFunc(t *testing.T, open MakeTransport) {
	t.Helper()
	runSuite(t, open, "", cases())
}

// Run runs RunFunc on the registered transport that spec names.
func Run(t *testing.T, spec string) {
	t.Helper()
	runSuite(t, openSpec(spec), spec, cases())
}

// SmokeFunc runs the cases marked smoke on the transports open makes: a
// transport's suite for its other option sets.
func SmokeFunc(t *testing.T, open MakeTransport) {
	t.Helper()
	runSuite(t, open, "", smokeCases())
}

// Smoke runs SmokeFunc on the registered transport that spec names.
func Smoke(t *testing.T, spec string) {
	t.Helper()
	runSuite(t, openSpec(spec), spec, smokeCases())
}

// smokeCases returns the cases marked smoke.
func smokeCases() []testCase {
	var cs []testCase
	for _, c := range cases() {
		if c.smoke {
			cs = append(cs, c)
		}
	}
	return cs
}

// openSpec returns a MakeTransport that opens spec through the registry.
// Its errors name the spec, and so the transport.
func openSpec(spec string) MakeTransport {
	return func(cfg transports.Config) (transports.Transport, error) {
		tr, err := transports.Open(spec, cfg)
		if err != nil {
			return nil, fmt.Errorf("conformance: Open(%q): %w", spec, err)
		}
		return tr, nil
	}
}

// Suite is what a case gets: the transport under test and helpers to use
// it.
type Suite struct {
	// Name is the transport's name (its Name method), for messages and
	// MERLIN_REQUIRE.
	Name string
	// Network is "tcp" or "unix".
	Network string
	// open makes the transport under test.
	open MakeTransport
	// spec is the registry's spec of it, where Run or Smoke named one.
	spec string
	// required reports that a skip must fail (MERLIN_REQUIRE).
	required bool
	// dog is the case's watchdog; Open hands it the transports to close
	// should it fire.
	dog *watchdog
}

// envChild names, in a re-executed test binary, the case whose child
// function runs: the case's full test name (t.Name()).
const envChild = "MERLIN_CONFORMANCE_CHILD"

func runSuite(t *testing.T, open MakeTransport, spec string, cs []testCase) {
	t.Helper()
	child := os.Getenv(envChild)
	if child != "" && !strings.HasPrefix(child, t.Name()+"/") {
		// The child re-runs a whole top-level test, which may run more
		// than one suite (a Smoke per option set).
		t.Skipf("child of %s, not of this suite", child)
	}
	if open == nil {
		t.Fatal("conformance: a nil MakeTransport")
	}
	limit, err := caseTimeout()
	if err != nil {
		t.Fatal(err)
	}

	tr, err := open(quietConfig())
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			// There is no transport to ask its name: the error names it.
			if name := requiredIn(err.Error()); name != "" {
				t.Fatalf("%s is required here (MERLIN_REQUIRE) but would be skipped: %v", name, err)
			}
			t.Skip(err.Error())
		}
		t.Fatal(err)
	}
	base := Suite{Name: tr.Name(), open: open, spec: spec, required: required(tr.Name())}
	if err := tr.Close(); err != nil {
		t.Fatalf("Close of an unused transport: %v", err)
	}

	if child != "" {
		runChild(t, base, strings.TrimPrefix(child, t.Name()+"/"), cs)
		return
	}

	// The warm-up runs on t itself, not as a subtest that -run could
	// filter out: without it the baseline would miss what the runtime
	// opens lazily (its poller's descriptors), and every case would fail.
	ws := base
	ws.Network = "tcp"
	func() {
		ws.dog = watch(t, limit)
		defer ws.dog.stop()
		warmup(t, &ws)
	}()
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
					// Stopped before the leak check (cleanups run last
					// first), and after the case's own cleanups.
					s.dog = watch(t, limit)
					t.Cleanup(s.dog.stop)
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
	return slices.Contains(requiredNames(), name)
}

// requiredIn returns a transport MERLIN_REQUIRE lists that msg names as a
// word ("uring" in "transports: uring: ...", not in "io_uring"), or "".
func requiredIn(msg string) string {
	words := strings.FieldsFunc(strings.ToLower(msg), func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '_' || r == '-')
	})
	for _, name := range requiredNames() {
		if slices.Contains(words, name) {
			return name
		}
	}
	return ""
}

// requiredNames returns the transports MERLIN_REQUIRE lists.
func requiredNames() []string {
	var names []string
	for _, r := range strings.Split(os.Getenv("MERLIN_REQUIRE"), ",") {
		if r = strings.TrimSpace(r); r != "" {
			names = append(names, r)
		}
	}
	return names
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
// (nil for the defaults); the transport's own settings win over it. The
// transport is closed by t.Cleanup, and Close must return nil.
func (s *Suite) Open(t testing.TB, edit func(*transports.Config)) transports.Transport {
	t.Helper()
	cfg := quietConfig()
	if edit != nil {
		edit(&cfg)
	}
	tr, err := s.open(cfg)
	if err != nil {
		t.Fatalf("opening %s: %v", s.Name, err)
	}
	if s.dog != nil {
		s.dog.track(tr)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("transport Close: %v", err)
		}
	})
	return tr
}

// quietConfig is a Config whose log is discarded.
func quietConfig() transports.Config {
	return transports.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
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
// case named by name ("network/case/...", under the suite's test).
func runChild(t *testing.T, base Suite, name string, cs []testCase) {
	network, name, _ := strings.Cut(name, "/")
	name, _, _ = strings.Cut(name, "/")
	for _, c := range cs {
		if c.name == name && c.child != nil {
			s := base
			s.Network = network
			c.child(t, &s)
			return
		}
	}
	t.Fatalf("child: no case %q with a child function", name)
}
