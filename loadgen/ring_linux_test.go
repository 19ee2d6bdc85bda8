package loadgen

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

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

// A server that answers every request twice, both answers in one write,
// fails the ring engine's run, closed and open loop: bytes beyond the
// responses asked for are a bad response. (The net engine reads the
// second answer as the next request's, and cannot tell it from one
// unless bodies differ, as the echo route's do.)
func TestRingHTTPExtraResponse(t *testing.T) {
	const answer = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n" + helloBody
	for _, tc := range []struct {
		name string
		rate float64
	}{
		{name: "closed"},
		{name: "open-loop", rate: 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := rawHTTP(t, func(int) string { return answer + answer }, writeOnce)
			res, err := Config{
				Addr: addr, Workload: HTTP, Conns: 2, Rate: tc.rate, HTTPBody: []byte(helloBody),
				Duration: 5 * time.Second, Engine: EngineRing,
			}.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 2 || !errors.Is(res.FirstErrors[0], ErrBadResponse) || !strings.Contains(res.FirstErrors[0].Error(), "beyond the responses asked for") {
				t.Fatalf("Errors = %d (%v), want 2 ErrBadResponses: bytes beyond the responses asked for", res.Errors, res.FirstErrors)
			}
		})
	}
}
