package loadgen

import "testing"

// The ring engine's provided buffers hold every batch in flight twice
// over: fewer would end receives with ENOBUFS and slow the generator
// (papers/0003's first run found 4 KiB x 16 client-bound everywhere).
func TestRingBuffers(t *testing.T) {
	for _, tc := range []struct {
		name                string
		conns, batch        int
		wantSize, wantCount int
	}{
		{name: "small", conns: 64, batch: 64, wantSize: 4 << 10, wantCount: 256},
		{name: "1000 small", conns: 1000, batch: 64, wantSize: 4 << 10, wantCount: 2048},
		{name: "64 x 64 KiB", conns: 64, batch: 64 << 10, wantSize: 16 << 10, wantCount: 512},
		{name: "1000 x 64 KiB", conns: 1000, batch: 64 << 10, wantSize: 16 << 10, wantCount: 8192},
		{name: "capped", conns: 10000, batch: 1 << 20, wantSize: 16 << 10, wantCount: 1 << 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size, count := ringBuffers(tc.conns, tc.batch)
			if size != tc.wantSize || count != tc.wantCount {
				t.Errorf("ringBuffers(%d, %d) = %d x %d, want %d x %d", tc.conns, tc.batch, count, size, tc.wantCount, tc.wantSize)
			}
		})
	}
}
