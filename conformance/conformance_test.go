package conformance_test

import (
	"flag"
	"testing"

	"github.com/merlin-net/merlin/conformance"
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
