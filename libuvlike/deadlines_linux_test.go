package libuvlike

import (
	"io"
	"net"
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
// buffer; the 16 MiB less what the kernel's buffers hold (at most 4 MiB of
// send buffer by default) take about 3 s, three write timeouts. A reader
// stalled for a whole second would fail it rightly.
func TestWriteTimeoutSeesProgressInsideARequest(t *testing.T) {
	const (
		timeout = time.Second
		size    = 16 << 20
		chunk   = 32 << 10
	)
	tr := openTransport(t, transports.Config{Loops: 1, WriteTimeout: timeout}, Options{})
	h := &bigWriter{size: size, closed: make(chan error, 1)}
	ln, err := tr.Listen("tcp", "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := nc.(*net.TCPConn)
	defer c.Close()
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
