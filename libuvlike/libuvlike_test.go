package libuvlike_test

import (
	"testing"

	"github.com/merlin-net/merlin/conformance"
	_ "github.com/merlin-net/merlin/libuvlike"
	_ "github.com/merlin-net/merlin/transports/all" // the peers of the dial case
)

// TestConformance runs the whole suite on the default options: a
// SO_REUSEPORT listener per loop, level-triggered epoll.
func TestConformance(t *testing.T) { conformance.Run(t, "libuvlike") }

// TestSmoke runs the smoke subset on the other accept and trigger modes,
// with the loops locked to threads, and with every loop parking in the
// runtime or blocking its thread whatever its connections' handlers.
func TestSmoke(t *testing.T) {
	for _, spec := range []string{
		"libuvlike:accept=reuseport,trigger=edge",
		"libuvlike:accept=dispatch,trigger=level,loops=3",
		"libuvlike:accept=dispatch,trigger=edge",
		"libuvlike:lockthread=true",
		"libuvlike:park=runtime",
		"libuvlike:park=thread",
		"libuvlike:park=runtime,accept=dispatch,trigger=edge,loops=2",
	} {
		t.Run(spec, func(t *testing.T) { conformance.Smoke(t, spec) })
	}
}
