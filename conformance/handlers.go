package conformance

import "github.com/merlin-net/merlin/transports"

// echoHandler writes back every byte it receives.
type echoHandler struct{}

func (echoHandler) OnOpen(transports.Conn) {}
func (echoHandler) OnData(c transports.Conn, in []byte) int {
	c.Write(in)
	return len(in)
}
func (echoHandler) OnClose(transports.Conn, error) {}

// hooks builds a Handler from functions; a nil function is a no-op (OnData
// consumes everything), and a nil optional one (ReadEOF, Drain, Shutdown)
// means the Handler lacks that ability. See handler.
type hooks struct {
	Open     func(c transports.Conn)
	Data     func(c transports.Conn, in []byte) int
	Close    func(c transports.Conn, err error)
	ReadEOF  func(c transports.Conn)
	Drain    func(c transports.Conn)
	Shutdown func(c transports.Conn)
}

// handler returns a Handler running h, which implements exactly the
// optional interfaces whose functions h sets.
func handler(h hooks) transports.Handler {
	b := base{&h}
	switch {
	case h.ReadEOF != nil && h.Drain != nil && h.Shutdown != nil:
		return struct {
			base
			withEOF
			withDrain
			withShutdown
		}{b, withEOF{&h}, withDrain{&h}, withShutdown{&h}}
	case h.ReadEOF != nil && h.Drain != nil:
		return struct {
			base
			withEOF
			withDrain
		}{b, withEOF{&h}, withDrain{&h}}
	case h.ReadEOF != nil && h.Shutdown != nil:
		return struct {
			base
			withEOF
			withShutdown
		}{b, withEOF{&h}, withShutdown{&h}}
	case h.Drain != nil && h.Shutdown != nil:
		return struct {
			base
			withDrain
			withShutdown
		}{b, withDrain{&h}, withShutdown{&h}}
	case h.ReadEOF != nil:
		return struct {
			base
			withEOF
		}{b, withEOF{&h}}
	case h.Drain != nil:
		return struct {
			base
			withDrain
		}{b, withDrain{&h}}
	case h.Shutdown != nil:
		return struct {
			base
			withShutdown
		}{b, withShutdown{&h}}
	}
	return b
}

type base struct{ h *hooks }

func (b base) OnOpen(c transports.Conn) {
	if b.h.Open != nil {
		b.h.Open(c)
	}
}

func (b base) OnData(c transports.Conn, in []byte) int {
	if b.h.Data != nil {
		return b.h.Data(c, in)
	}
	return len(in)
}

func (b base) OnClose(c transports.Conn, err error) {
	if b.h.Close != nil {
		b.h.Close(c, err)
	}
}

type withEOF struct{ h *hooks }

func (w withEOF) OnReadEOF(c transports.Conn) { w.h.ReadEOF(c) }

type withDrain struct{ h *hooks }

func (w withDrain) OnDrain(c transports.Conn) { w.h.Drain(c) }

type withShutdown struct{ h *hooks }

func (w withShutdown) OnShutdown(c transports.Conn) { w.h.Shutdown(c) }
