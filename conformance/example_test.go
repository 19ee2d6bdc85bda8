package conformance_test

import (
	"testing"

	"github.com/merlin-net/merlin/conformance"
	"github.com/merlin-net/merlin/sockets"
	"github.com/merlin-net/merlin/transports"
)

// A transport's test runs the whole suite by handing it a function that
// opens the transport: no registry is needed, so a transport from another
// module is tested the same way (examples/hostile is). This is the body of
// such a test, TestConformance(t *testing.T).
func ExampleRunFunc() {
	var t *testing.T // the test's own
	conformance.RunFunc(t, func(cfg transports.Config) (transports.Transport, error) {
		tr, err := sockets.New(cfg, sockets.Options{})
		if err != nil {
			return nil, err // not a nil *Transport in a non-nil interface
		}
		return tr, nil
	})
}

// Run is the shortcut for a registered transport, by its spec; Smoke
// runs the cases marked smoke, for a transport's other option sets.
func ExampleRun() {
	var t *testing.T // the test's own
	conformance.Run(t, "uring")
	conformance.Smoke(t, "uring:accept=msgring,fixedfiles=false")
}
