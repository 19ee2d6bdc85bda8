package libuvlike

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// bigWriter writes size bytes with one Write in OnOpen, consumes its
// input, and reports OnClose's error.
type bigWriter struct {
	size   int
	closed chan error
}

func (h *bigWriter) OnOpen(c transports.Conn)              { c.Write(make([]byte, h.size)) }
func (*bigWriter) OnData(_ transports.Conn, in []byte) int { return len(in) }
func (h *bigWriter) OnClose(_ transports.Conn, err error)  { h.closed <- err }

// TestWriteTimeoutSeesProgressInsideARequest: a large Write to a slow but
// steady reader goes out in one write request (what the first write(2)
// did not take), which the reactor advances as the socket takes its
// bytes, with no callback until the last one. The write-progress timeout
// must count that progress (conn.noteProgress): the request here stays in
// flight for several timeouts while the reader never stops for long, and
// the connection must not be aborted.
//
// The reader reads 32 KiB every 8 ms (4 MB/s) through a 64 KiB receive
// buffer; the output is 12 MiB more than the kernel's send buffer may
// hold (tcp_wmem's maximum), so the request takes about 3 s, three write
// timeouts. A reader stalled for a whole second would fail it rightly.
func TestWriteTimeoutSeesProgressInsideARequest(t *testing.T) {
	const (
		timeout = time.Second
		chunk   = 32 << 10
	)
	size := 12<<20 + maxSendBuffer(t)
	tr := openTransport(t, transports.Config{Loops: 1, WriteTimeout: timeout}, Options{})
	h := &bigWriter{size: size, closed: make(chan error, 1)}
	c := dialTCP(t, listenTCP(t, tr, h))
	c.SetReadBuffer(64 << 10)
	c.SetReadDeadline(time.Now().Add(60 * time.Second))

	buf := make([]byte, chunk)
	begin := time.Now()
	for got := 0; got < size; {
		n, err := io.ReadFull(c, buf[:min(chunk, size-got)])
		got += n
		if err != nil {
			select {
			case cerr := <-h.closed:
				t.Fatalf("after %v and %d of %d bytes, the server closed the connection: %v", time.Since(begin), got, size, cerr)
			default:
				t.Fatalf("read after %d of %d bytes: %v", got, size, err)
			}
		}
		time.Sleep(8 * time.Millisecond) // the pace of a slow reader, not a synchronisation
	}
	if el := time.Since(begin); el < 2*timeout {
		t.Errorf("the transfer took %v: the case needs one request in flight for more than two write timeouts (%v)", el, timeout)
	}
	c.Close() // the server closes at our FIN, its output flushed
	select {
	case err := <-h.closed:
		if err != nil {
			t.Errorf("OnClose err = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no OnClose 10 s after the client closed")
	}
}

// TestIdleTimeout: IdleTimeout closes a connection that moved no byte
// for that long, as Close does (the client sees EOF, and OnClose's error
// matches ErrIdleTimeout), and bytes read keep it open meanwhile.
func TestIdleTimeout(t *testing.T) {
	const (
		idle = time.Second
		pace = 200 * time.Millisecond
	)
	tr := openTransport(t, transports.Config{Loops: 1, IdleTimeout: idle}, Options{})
	closed := make(chan error, 1)
	c := dialTCP(t, listenTCP(t, tr, closeRecorder(closed)))
	var last time.Time             // of the last byte written
	for range 2 * int(idle/pace) { // two timeouts' worth of activity
		last = time.Now()
		if _, err := c.Write([]byte{1}); err != nil {
			t.Fatalf("write: %v", err)
		}
		select {
		case err := <-closed:
			t.Fatalf("closed while the client wrote every %v: %v", pace, err)
		case <-time.After(pace): // the pace of the client
		}
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read = %d, %v; want EOF (an orderly close)", n, err)
	}
	if el := time.Since(last); el < idle {
		t.Errorf("closed %v after the last byte, before the idle timeout of %v", el, idle)
	}
	c.Close() // our FIN ends the server's linger
	select {
	case err := <-closed:
		if !errors.Is(err, transports.ErrIdleTimeout) {
			t.Errorf("OnClose err = %v, want ErrIdleTimeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no OnClose 10 s after the client closed")
	}
}

// maxSendBuffer returns the largest send buffer the kernel gives a TCP
// socket (the last field of net.ipv4.tcp_wmem).
func maxSendBuffer(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		t.Fatalf("tcp_wmem = %q, want three fields", b)
	}
	n, err := strconv.Atoi(f[2])
	if err != nil {
		t.Fatalf("tcp_wmem = %q: %v", b, err)
	}
	return n
}

// closeRecorder consumes its input and sends OnClose's error.
type closeRecorder chan error

func (closeRecorder) OnOpen(transports.Conn)                  {}
func (closeRecorder) OnData(_ transports.Conn, in []byte) int { return len(in) }
func (r closeRecorder) OnClose(_ transports.Conn, err error)  { r <- err }
