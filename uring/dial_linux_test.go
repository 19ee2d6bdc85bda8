package uring

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
)

// TestDialPostedAfterCloseKilled: a Dial counted before Close began, whose
// connect reaches the loop only after Close's kill tasks ran there, must
// not connect (the kill tasks cannot see it; a connect to an address that
// never answers would hold Close for the kernel's SYN timeout, minutes):
// Close returns and the Dial fails with net.ErrClosed. The test hooks
// make that interleaving: Dial, counted, waits until Close has posted
// its kill tasks.
func TestDialPostedAfterCloseKilled(t *testing.T) {
	const wait = 10 * time.Second
	base := testutil.TakeBaseline()
	t.Cleanup(func() { base.Check(t, wait) }) // last: after the blackhole's cleanups
	addr := testutil.Blackhole(t).String()
	cfg := transports.Config{Loops: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tr, err := transports.Open("uring", cfg)
	if err != nil {
		t.Fatal(err)
	}
	killed := make(chan struct{})
	closed := make(chan error, 1)
	testHookCloseKilled = func() { close(killed) }
	testHookDialCounted = func() {
		go func() { closed <- tr.Close() }()
		<-killed
	}
	t.Cleanup(func() { testHookCloseKilled, testHookDialCounted = nil, nil })

	dialed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*wait)
		defer cancel()
		c, err := tr.Dial(ctx, "tcp", addr, nopHandler{})
		if err == nil {
			c.Close()
		}
		dialed <- err
	}()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close = %v", err)
		}
	case <-time.After(wait):
		t.Fatalf("Close had not returned after %v: it waits for a connect posted after its kill tasks", wait)
	}
	select {
	case err := <-dialed:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Dial = %v, want an error matching net.ErrClosed", err)
		}
	case <-time.After(wait):
		t.Fatalf("Dial had not returned %v after Close", wait)
	}
}

// nopHandler is a Handler that does nothing.
type nopHandler struct{}

func (nopHandler) OnOpen(transports.Conn)                  {}
func (nopHandler) OnData(_ transports.Conn, in []byte) int { return len(in) }
func (nopHandler) OnClose(transports.Conn, error)          {}
