package hostile

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// pieces is an inner Conn that takes Writes until it is half-closed or
// ended, then fails them as a transport does. Its first Write can be
// held until release is closed.
type pieces struct {
	transports.Conn // nil: only the methods below are called

	mu       sync.Mutex
	writes   int
	ended    error // what Writes fail with from now on
	entered  chan struct{}
	release  chan struct{}
	closeSaw chan struct{} // closed as CloseWrite reaches the inner Conn
}

func newPieces() *pieces {
	return &pieces{entered: make(chan struct{}), release: make(chan struct{}), closeSaw: make(chan struct{})}
}

// Write takes p, or fails if the Conn has ended; the first Write, having
// taken p, returns only once release is closed.
func (f *pieces) Write(p []byte) (int, error) {
	f.mu.Lock()
	f.writes++
	first, ended := f.writes == 1, f.ended
	f.mu.Unlock()
	if ended != nil {
		return 0, &net.OpError{Op: "write", Net: "tcp", Err: ended}
	}
	if first {
		close(f.entered)
		<-f.release
	}
	return len(p), nil
}

func (f *pieces) CloseWrite() error {
	f.mu.Lock()
	f.ended = syscall.EPIPE
	f.mu.Unlock()
	close(f.closeSaw)
	return nil
}

// end ends the connection abortively, as a reset or a limit does.
func (f *pieces) end() {
	f.mu.Lock()
	f.ended = net.ErrClosed
	f.mu.Unlock()
}

const cutUp = 1000 // bytes of a Write the wrapper cuts into several pieces

// writeCutUp starts a Write of cutUp bytes on a conn over pieces, and
// returns once its first piece has been taken (and is held until
// f.release is closed). wrote waits for the Write's result, failing the
// test if it went down in one piece: a case would then test nothing.
func writeCutUp() (f *pieces, c *conn, wrote func(t *testing.T) (int, error)) {
	f = newPieces()
	c = &conn{Conn: f}
	var (
		n    int
		err  error
		done = make(chan struct{})
	)
	go func() {
		n, err = c.Write(make([]byte, cutUp))
		close(done)
	}()
	<-f.entered
	return f, c, func(t *testing.T) (int, error) {
		t.Helper()
		<-done
		if f.writes < 2 {
			t.Fatalf("the Write went down in %d piece, want several: the case tests nothing", f.writes)
		}
		return n, err
	}
}

// A CloseWrite from another goroutine while a Write is being cut up must
// not make it fail half-way: the Write takes all or nothing. CI saw the
// race case fail this way: "Write = 3, ... broken pipe; want 0".
func TestCloseWriteWaitsForAWriteUnderWay(t *testing.T) {
	f, c, wrote := writeCutUp()
	closed := make(chan struct{})
	go func() {
		c.CloseWrite()
		close(closed)
	}()
	// Give a CloseWrite that does not wait the chance to reach the inner
	// Conn between the pieces; one that waits passes however long this is.
	select {
	case <-f.closeSaw:
	case <-time.After(200 * time.Millisecond):
	}
	close(f.release)
	n, err := wrote(t)
	<-closed
	if !(n == cutUp && err == nil) && !(n == 0 && err != nil) {
		t.Errorf("Write = %d, %v beside a CloseWrite; want %d, nil or 0 and an error", n, err, cutUp)
	}
}

// A connection that ends abortively between a Write's pieces ends after
// the Write, which took all of p: it returns len(p), nil, not some of p
// and an error.
func TestWriteCutByAnAbortiveEnd(t *testing.T) {
	f, c, wrote := writeCutUp()
	f.end()
	close(f.release)
	n, err := wrote(t)
	if n != cutUp || err != nil {
		t.Errorf("Write = %d, %v with the connection ended after its first piece; want %d, nil", n, err, cutUp)
	}

	// Once ended, a Write takes nothing.
	n, err = c.Write([]byte("after"))
	if n != 0 || !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after the end = %d, %v; want 0 and net.ErrClosed", n, err)
	}
}
