package uring

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
)

// serveAndDial listens on tr with h on loopback TCP and dials it, with a
// minute's deadline on the client's reads and writes; the client is
// closed at the end of the test.
func serveAndDial(t *testing.T, tr transports.Transport, h transports.Handler) net.Conn {
	t.Helper()
	ln, err := tr.Listen("tcp", "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Minute))
	return c
}

// TestInlineSendOneEnterPerRequest: with inline sends (the default) a
// request-response on a thread loop costs one io_uring_enter, the wait
// that submits the response and sleeps on to the next request; without
// them, two (the response's send completes at once and ends the wait
// that submitted it). Stats().Syscalls counts the enters; 2,000
// sequential echo round trips of 64 bytes.
func TestInlineSendOneEnterPerRequest(t *testing.T) {
	const trips = 2000
	for _, tc := range []struct {
		spec   string
		lo, hi float64 // enters per round trip
	}{
		{"uring:park=thread", 0.9, 1.3},
		{"uring:park=thread,inlinesend=false", 1.8, 2.5},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			tr := openT(t, tc.spec, 1)
			c := serveAndDial(t, tr, testutil.FrameEcho{Size: 64})
			msg, got := testutil.Pattern(64, 'e'), make([]byte, 64)
			trip := func() {
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c, got); err != nil {
					t.Fatal(err)
				}
			}
			for range 100 { // past the connection's first requests (its recv, its file slot)
				trip()
			}
			before := tr.Stats()
			for range trips {
				trip()
			}
			after := tr.Stats()
			per := float64(after.Syscalls-before.Syscalls) / trips
			t.Logf("%.3f io_uring_enter calls per round trip; inline_sends_full %d", per, after.Extra["inline_sends_full"])
			if per < tc.lo || per > tc.hi {
				t.Errorf("%.3f system calls per echo round trip; want %.1f to %.1f", per, tc.lo, tc.hi)
			}
			if n := after.Extra["inline_sends_full"]; n != 0 {
				t.Errorf("inline_sends_full = %d for 64-byte responses read at once; want 0", n)
			}
		})
	}
}

// flood is a Handler that answers each byte it receives with a burst of
// output, in Writes of under core.DirectWrite bytes (so that they queue
// for the loop's send rather than go out inside Write): 'g' asks for
// goSize bytes, 'm' for moreSize. The output is one pattern, counted
// from the connection's first byte out, which the peer checks.
type flood struct{ sent *int }

const (
	floodPiece = 8 << 10
	goSize     = 16 << 20
	moreSize   = 1 << 20
)

func (flood) OnOpen(transports.Conn)         {}
func (flood) OnClose(transports.Conn, error) {}
func (f flood) OnData(c transports.Conn, in []byte) int {
	piece := make([]byte, floodPiece)
	for _, b := range in {
		n := goSize
		if b == 'm' {
			n = moreSize
		}
		for end := *f.sent + n; *f.sent < end; {
			k := min(floodPiece, end-*f.sent)
			for i := range k {
				piece[i] = floodByte(*f.sent + i)
			}
			c.Write(piece[:k])
			*f.sent += k
		}
	}
	return len(in)
}

func floodByte(i int) byte { return byte(i % 251) }

// TestInlineSendSocketFull: an inline send the socket cannot take whole
// (the peer does not read) reports the bytes it took, its linked NOP's
// cancellation wakes the loop (inline_send_wakeups counts one for each
// inline send that found the socket full), and the rest goes again as a
// send that waits for room, whose completion wakes the loop by itself:
// output queued behind it (the answer to a second request, received
// while it waited) goes out once the peer reads, and the peer gets every
// byte in order. A wait that counted the waiting send among those that
// complete at once would sleep through its completion and never send the
// second answer; a short inline send reported as -EAGAIN would send its
// bytes twice.
func TestInlineSendSocketFull(t *testing.T) {
	for _, spec := range []string{"uring:park=thread", "uring:park=thread,fixedfiles=false"} {
		t.Run(spec, func(t *testing.T) {
			tr := openT(t, spec, 1)
			var sent int // the loop's
			c := serveAndDial(t, tr, flood{sent: &sent})
			if _, err := c.Write([]byte{'g'}); err != nil {
				t.Fatal(err)
			}
			// 16 MiB does not fit in the sockets' buffers: the first
			// inline send comes back short.
			for deadline := time.Now().Add(10 * time.Second); tr.Stats().Extra["inline_sends_full"] == 0; {
				if time.Now().After(deadline) {
					t.Fatal("inline_sends_full stayed 0 for 10 s with 16 MiB queued for a peer that does not read")
				}
				time.Sleep(time.Millisecond) // polling a counter
			}
			if _, err := c.Write([]byte{'m'}); err != nil {
				t.Fatal(err)
			}
			want := goSize + moreSize
			buf := make([]byte, 64<<10)
			for got := 0; got < want; {
				n, err := c.Read(buf[:min(len(buf), want-got)])
				for i := range n {
					if buf[i] != floodByte(got+i) {
						t.Fatalf("byte %d: got %d, want %d: output out of order", got+i, buf[i], floodByte(got+i))
					}
				}
				got += n
				if err != nil {
					t.Fatalf("after %d of %d bytes: %v", got, want, err)
				}
			}
			// The counters are flushed before the loop waits, which it
			// does once the peer has read everything.
			for deadline := time.Now().Add(10 * time.Second); ; {
				x := tr.Stats().Extra
				if x["inline_send_wakeups"] == x["inline_sends_full"] {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("inline_send_wakeups = %d for inline_sends_full = %d; want one wake-up for each inline send that found the socket full", x["inline_send_wakeups"], x["inline_sends_full"])
				}
				time.Sleep(time.Millisecond) // polling a counter
			}
		})
	}
}
