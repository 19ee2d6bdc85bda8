package testutil

import "github.com/merlin-net/merlin/transports"

// LargeWriter is a Handler whose OnData, for each byte in, writes A, then
// the byte '<' and B, and sends on Obs what OutboundBuffered said after A
// and after B: the output of a transport's large-write test.
type LargeWriter struct {
	A, B []byte
	Obs  chan [2]int
}

func (LargeWriter) OnOpen(transports.Conn)         {}
func (LargeWriter) OnClose(transports.Conn, error) {}

func (w LargeWriter) OnData(c transports.Conn, in []byte) int {
	for range in {
		c.Write(w.A)
		first := c.OutboundBuffered()
		c.Write([]byte{'<'})
		c.Write(w.B)
		w.Obs <- [2]int{first, c.OutboundBuffered()}
	}
	return len(in)
}

// Want is what the peer must read for each byte it sends.
func (w LargeWriter) Want() []byte {
	return append(append(append([]byte{}, w.A...), '<'), w.B...)
}

// Pattern returns n bytes counting up from first, so that a reordering
// shows.
func Pattern(n int, first byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = first + byte(i%23)
	}
	return b
}
