package conformance_test

import (
	"errors"
	"flag"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/merlin-net/merlin/conformance"
	"github.com/merlin-net/merlin/sockets"
	"github.com/merlin-net/merlin/transports"
	_ "github.com/merlin-net/merlin/transports/all"
)

var spec = flag.String("transport", "", "run the conformance suite on this transport spec (\"sockets\", \"uring:entries=4096\")")

// TestConformance runs the suite on -transport. Each transport's own
// package runs it on its default options; this is for any other spec.
func TestConformance(t *testing.T) {
	if *spec == "" {
		t.Skip("no -transport given")
	}
	conformance.Run(t, *spec)
}

// TestRunFunc runs the whole suite on sockets opened by a plain function,
// as a transport from another module would be, the child process of the
// descriptor-limit case included.
func TestRunFunc(t *testing.T) {
	conformance.RunFunc(t, func(cfg transports.Config) (transports.Transport, error) {
		tr, err := sockets.New(cfg, sockets.Options{})
		if err != nil {
			return nil, err // not a nil *Transport in a non-nil interface
		}
		return tr, nil
	})
}

// envUnsupported marks the re-executed test binary of
// TestRunFuncUnsupported: its value is the error the child's MakeTransport
// returns, wrapping errors.ErrUnsupported.
const envUnsupported = "MERLIN_TEST_UNSUPPORTED"

// TestRunFuncUnsupported checks that a MakeTransport failing with an error
// wrapping errors.ErrUnsupported skips the suite, unless MERLIN_REQUIRE
// lists a transport the error names: then the suite fails. Each row runs
// RunFunc in a child process, whose test result is the row's outcome.
func TestRunFuncUnsupported(t *testing.T) {
	if what := os.Getenv(envUnsupported); what != "" {
		conformance.RunFunc(t, func(transports.Config) (transports.Transport, error) {
			return nil, transports.Unsupported(what)
		})
		return
	}
	rows := []struct {
		name    string
		err     string // the child's error, before ": unsupported operation"
		require string // the child's MERLIN_REQUIRE
		fail    bool   // whether the child must fail rather than skip
		want    string // in the child's output
	}{
		{name: "not-required", err: "transports: fake: not here", require: "", want: "--- SKIP: TestRunFuncUnsupported"},
		{name: "others-required", err: "transports: fake: not here", require: "sockets,uring", want: "--- SKIP: TestRunFuncUnsupported"},
		{name: "required", err: "transports: fake: not here", require: "sockets,fake", fail: true, want: "fake is required here (MERLIN_REQUIRE)"},
		{name: "spaces", err: `conformance: Open("fake:loops=1"): not here`, require: " fake ", fail: true, want: "fake is required here (MERLIN_REQUIRE)"},
		{name: "not-a-word", err: "other: needs io_fake", require: "fake", want: "--- SKIP: TestRunFuncUnsupported"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestRunFuncUnsupported$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), envUnsupported+"="+row.err, "MERLIN_REQUIRE="+row.require)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			switch {
			case err != nil && !errors.As(err, &exit):
				t.Fatalf("child: %v", err)
			case row.fail && err == nil:
				t.Errorf("child passed with MERLIN_REQUIRE=%q and %q, want a failure; its output:\n%s", row.require, row.err, out)
			case !row.fail && err != nil:
				t.Errorf("child failed (%v) with MERLIN_REQUIRE=%q and %q, want a skip; its output:\n%s", err, row.require, row.err, out)
			}
			if !strings.Contains(string(out), row.want) {
				t.Errorf("child's output lacks %q:\n%s", row.want, out)
			}
		})
	}
}
