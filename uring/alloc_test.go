//go:build linux

package uring_test

import (
	"testing"

	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
)

// TestHotPathAllocs holds the loop's hot path (a recv completion, OnData,
// Write, the gathered send and its completion) at zero allocations per
// round trip. Its 16 x 4 KiB row fails on the output buffer regrown for
// every burst that papers/0001's first run caught (12x gnet's user time).
func TestHotPathAllocs(t *testing.T) {
	testutil.HotPathAllocs(t, func(t *testing.T) transports.Transport {
		tr, err := transports.Open("uring", transports.Config{Loops: 1, Logger: quiet().Logger})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	})
}
