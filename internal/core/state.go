package core

import (
	"net"
	"os"
	"syscall"
)

// State is a connection's state: the contract's bits, and from Own up
// the transport's own. Which goroutine may change it, and under what
// lock, is the transport's choice (sockets and uring keep it under the
// connection's mutex; libuvlike on its loop, with the bits other
// goroutines read mirrored in an atomic).
type State uint32

// The contract's bits of State.
const (
	AppPaused   State = 1 << iota // PauseRead
	BPPaused                      // output reached MaxWriteBuffer
	WrClosed                      // CloseWrite (or Close): Write fails with EPIPE
	Closing                       // Close, or the default close at the peer's FIN: Write fails with net.ErrClosed, input is discarded
	Killed                        // torn down (Abort, a failure, OnClose): Close and Abort fail too, output is dropped
	Closed                        // OnClose has begun
	WantShut                      // send FIN once output is flushed
	ShutSent                      // FIN submitted
	ShutDone                      // ... and sent
	EOFSeen                       // the peer's FIN was read
	EOFOffered                    // ... and the kept bytes were offered once more
	EOFDone                       // ... and OnReadEOF (or the default close) has had its turn
	InCallback                    // a callback of the connection is running
	DrainDue                      // OnDrain is due
	ShutdownDue                   // Transport.Shutdown asked for OnShutdown (or Close)
	OfferKept                     // reading resumed: offer the kept bytes at once
	Linger                        // our FIN is out after Close: waiting for the peer's

	// Own is the first bit a transport may use for itself.
	Own State = 1 << 24
)

// Has reports whether every bit of b is set.
func (s State) Has(b State) bool { return s&b == b }

// Any reports whether any bit of b is set.
func (s State) Any(b State) bool { return s&b != 0 }

// Readable reports whether OnData may start: neither the application's
// pause nor, unless the Handler is full duplex, output at its limit.
func (s State) Readable(duplex bool) bool {
	return s&AppPaused == 0 && (s&BPPaused == 0 || duplex)
}

// Gone reports whether the connection is being torn down or has closed:
// Close, CloseWrite and Abort fail.
func (s State) Gone() bool { return s&(Killed|Closed) != 0 }

// WriteErr returns the error Write fails with in state s (nil: it may
// write). The caller wraps it in a *net.OpError with Op "write".
func (s State) WriteErr() error {
	switch {
	case s&(Closing|Killed|Closed) != 0:
		return net.ErrClosed
	case s&WrClosed != 0:
		return os.NewSyscallError("write", syscall.EPIPE)
	}
	return nil
}

// CloseWriteErr returns the error CloseWrite fails with in state s (nil:
// it may). The caller wraps it in a *net.OpError with Op "close".
func (s State) CloseWriteErr() error {
	if s&(Closing|Killed|Closed) != 0 {
		return net.ErrClosed
	}
	return nil
}

// CloseWrite records CloseWrite: no more Write, FIN once flushed.
func (s *State) CloseWrite() { *s |= WrClosed | WantShut }

// BeginClose records Close (or the default close at the peer's FIN) and
// reports whether it began now: input is discarded from now on, output
// is flushed within CloseTimeout, then FIN. A Shutdown request still
// pending is moot.
func (s *State) BeginClose() bool {
	if *s&(Closing|Killed|Closed) != 0 {
		return false
	}
	*s |= Closing | WrClosed | WantShut
	*s &^= ShutdownDue
	return true
}

// Kill records a teardown and reports whether it began now (false if the
// connection was already being torn down).
func (s *State) Kill() bool {
	if *s&(Killed|Closed) != 0 {
		return false
	}
	*s |= Killed | Closing | WrClosed
	return true
}

// ShutDue reports whether FIN must be sent now, output being flushed.
func (s State) ShutDue(flushed bool) bool {
	return flushed && s&(WantShut|ShutSent|Killed) == WantShut
}

// OrderlyEnd reports whether the connection may close with a nil error:
// our FIN is out and the peer's has been read and handled.
func (s State) OrderlyEnd() bool {
	return s&(ShutDone|EOFSeen|EOFDone|Killed) == ShutDone|EOFSeen|EOFDone
}

// LingerDue reports whether the wait for the peer's FIN begins: Close
// sent our FIN and theirs has not come.
func (s State) LingerDue() bool {
	return s&(Closing|ShutDone|EOFSeen|Linger|Killed) == Closing|ShutDone
}

// EOF is what the peer's FIN asks of the transport next (see EOFStep).
type EOF uint8

// The steps of the peer's FIN.
const (
	EOFNone     EOF = iota // no FIN, or its rules have run
	EOFWait                // reading is paused: the rules wait for ResumeRead (or the drain)
	EOFOffer               // offer the kept bytes once more (Deliver), then call EOFStep again
	EOFCallback            // call OnReadEOF (the kept bytes are dropped); the connection stays writable
	EOFClose               // close as Close does (BeginClose has been called; the kept bytes are dropped)
	EOFDiscard             // Close came first: the kept bytes are dropped; nothing else is due
)

// EOFStep runs the rules of the peer's FIN one step, once EOFSeen is set:
// the kept bytes are offered once more, then OnReadEOF is called, or the
// connection closes as Close does, and what is still kept is dropped;
// after Close the kept bytes are dropped. While reading is paused the
// rules wait, and an offer that ended with reading paused (the last
// OnData filled the output, or paused) is made again once it resumes, as
// any resume offers the kept bytes: only what an OnData declined with
// reading allowed is dropped. hasEOF says whether the Handler has
// OnReadEOF. The transport does what the step says and calls EOFStep
// again (a last OnData may pause, close or abort) until it returns
// EOFNone or EOFWait.
func (s *State) EOFStep(kept *Input, hasEOF, duplex bool) EOF {
	switch {
	case *s&(EOFSeen|EOFDone|Killed) != EOFSeen:
		return EOFNone
	case *s&Closing != 0:
		*s |= EOFDone
		kept.Release()
		return EOFDiscard
	case !s.Readable(duplex):
		*s &^= EOFOffered
		return EOFWait
	case kept.Len() > 0 && *s&EOFOffered == 0:
		*s |= EOFOffered
		return EOFOffer
	}
	*s |= EOFDone
	kept.Release()
	if hasEOF {
		return EOFCallback
	}
	s.BeginClose()
	return EOFClose
}
