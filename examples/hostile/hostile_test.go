package hostile_test

import (
	"testing"
	"time"

	"github.com/merlin-net/merlin/conformance"
	"github.com/merlin-net/merlin/examples/hostile"
	"github.com/merlin-net/merlin/transports"
	_ "github.com/merlin-net/merlin/transports/all" // the inner transports
)

// open returns the suite's way to open hostile with opt: a plain
// function, as any transport from another module would give.
func open(opt hostile.Options) conformance.MakeTransport {
	return func(cfg transports.Config) (transports.Transport, error) {
		t, err := hostile.New(cfg, opt)
		if err != nil {
			return nil, err
		}
		return t, nil
	}
}

// The whole suite, on the default inner transport (sockets): hostile
// keeps the contract however it cuts the input and the writes.
func TestConformance(t *testing.T) {
	conformance.RunFunc(t, open(hostile.Options{Seed: 7}))
}

// The smoke cases on the loop transports, one with callbacks held back;
// and once through the registry, by spec.
func TestSmoke(t *testing.T) {
	t.Run("libuvlike", func(t *testing.T) {
		conformance.SmokeFunc(t, open(hostile.Options{Inner: "libuvlike", Seed: 3, Delay: 200 * time.Microsecond}))
	})
	t.Run("uring", func(t *testing.T) { conformance.SmokeFunc(t, open(hostile.Options{Inner: "uring", Seed: 5})) })
	t.Run("spec", func(t *testing.T) { conformance.Smoke(t, "hostile:inner=uring,seed=9") })
}
