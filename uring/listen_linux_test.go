package uring

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
)

// TestListenerForgotten: a closed listener leaves the transport's byID
// (where loops that get descriptors handed over with MSG_RING look it up)
// once no descriptor can still arrive for it, so that Listen and Close in
// turn leak nothing; connections it handed over are served, and their
// descriptors closed with the transport.
func TestListenerForgotten(t *testing.T) {
	const (
		cycles = 3
		conns  = 4 // per cycle: msgring hands every other one to the second loop
		wait   = 10 * time.Second
	)
	for _, spec := range []string{"uring", "uring:accept=msgring"} {
		t.Run(spec, func(t *testing.T) {
			base := testutil.TakeBaseline()
			t.Cleanup(func() { base.Check(t, wait) })
			cfg := transports.Config{Loops: 2, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			tr, err := transports.Open(spec, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tr.Close() })
			ut := tr.(*Transport)
			for i := range cycles {
				ln, err := tr.Listen("tcp", "127.0.0.1:0", echoHandler{})
				if err != nil {
					t.Fatal(err)
				}
				for range conns {
					c, err := net.DialTimeout("tcp", ln.Addr().String(), wait)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { c.Close() })
					c.SetDeadline(time.Now().Add(wait))
					msg := []byte("served")
					if _, err := c.Write(msg); err != nil {
						t.Fatal(err)
					}
					if _, err := io.ReadFull(c, msg); err != nil {
						t.Fatalf("cycle %d: echo: %v", i, err)
					}
				}
				if err := ln.Close(); err != nil {
					t.Fatalf("Listener.Close: %v", err)
				}
				ut.mu.Lock()
				n := len(ut.byID)
				ut.mu.Unlock()
				if n != 0 {
					t.Fatalf("after %d Listen and Close cycles, byID holds %d listeners, want 0", i+1, n)
				}
			}
			if spec == "uring:accept=msgring" && ut.thread.loops[1].stats.Accepted.Load() == 0 {
				t.Errorf("the acceptor loop handed no descriptor over to the other: the case tested nothing")
			}
			if err := tr.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// echoHandler writes back what it receives.
type echoHandler struct{}

func (echoHandler) OnOpen(transports.Conn) {}
func (echoHandler) OnData(c transports.Conn, in []byte) int {
	c.Write(in)
	return len(in)
}
func (echoHandler) OnClose(transports.Conn, error) {}
