//go:build linux

package libuvlike

import (
	"testing"

	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
)

// TestHotPathAllocs holds the loop's hot path (read into the loop's
// buffer, OnData, Write, the gathered flush, the write's completion) at
// zero allocations per message.
func TestHotPathAllocs(t *testing.T) {
	testutil.HotPathAllocs(t, func(t *testing.T) transports.Transport {
		tr, err := New(transports.Config{Loops: 1}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	})
}
