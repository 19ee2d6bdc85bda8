// Package echo is the echo workload: a Handler that writes back every byte
// it receives, on any transport. It keeps no state, so one value serves
// every connection.
//
//	ln, err := t.Listen("tcp", ":7000", echo.Handler{})
package echo

import "github.com/merlin-net/merlin/transports"

// Handler echoes. Writes inside OnData are flushed together after it
// returns, so a burst of pipelined requests is answered with one send. It
// has no OnReadEOF: at the peer's FIN the transport flushes the echoes and
// closes the connection.
type Handler struct{}

// OnOpen does nothing.
func (Handler) OnOpen(transports.Conn) {}

// OnData writes in back and consumes all of it.
func (Handler) OnData(c transports.Conn, in []byte) int {
	c.Write(in)
	return len(in)
}

// OnClose does nothing.
func (Handler) OnClose(transports.Conn, error) {}
