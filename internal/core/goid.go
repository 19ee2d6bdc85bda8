package core

import (
	"bytes"
	"net"
	"runtime"
	"strconv"
)

// GoID returns the calling goroutine's id, read from the header of its
// stack trace ("goroutine 42 [running]:"). A transport uses it to know
// whether it is called from one of its callbacks (Dial, Shutdown and
// Close then fail with transports.ErrInCallback). It costs about a
// microsecond: not for the hot path.
func GoID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		panic("core: cannot read the goroutine id from " + strconv.Quote(string(b)))
	}
	return id
}

// ListenError returns the error Listen fails with before it tries
// anything, in the shape package net gives it: a network other than tcp,
// tcp4, tcp6 and unix, or a closed transport (net.ErrClosed). nil: go on.
func ListenError(network string, closed bool) error {
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
	default:
		return &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	if closed {
		return &net.OpError{Op: "listen", Net: network, Err: net.ErrClosed}
	}
	return nil
}
