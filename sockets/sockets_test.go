package sockets_test

import (
	"testing"

	"github.com/merlin-net/merlin/conformance"
	_ "github.com/merlin-net/merlin/sockets"
)

// TestConformance runs the whole suite on the default options.
func TestConformance(t *testing.T) { conformance.Run(t, "sockets") }

// TestSmoke runs the smoke subset with other options: Nagle on, small
// buffers.
func TestSmoke(t *testing.T) {
	conformance.Smoke(t, "sockets:nodelay=false,maxwritebuffer=16k,maxreadbuffer=256k")
}
