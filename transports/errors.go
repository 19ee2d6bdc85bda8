package transports

import (
	"errors"
	"fmt"
	"os"
)

// The errors a Handler sees in OnClose, besides nil, the *net.OpError of a
// reset peer, net.ErrClosed and os.ErrDeadlineExceeded. Check them with
// errors.Is.
var (
	// ErrAborted is the OnClose error after the application's Conn.Abort.
	ErrAborted = errors.New("transports: connection aborted")
	// ErrInputLimit is the OnClose error of a Conn that kept more than
	// Config.MaxReadBuffer bytes after an OnData.
	ErrInputLimit = errors.New("transports: input limit reached")
	// ErrHandler is the OnClose error of a Conn whose callback panicked or
	// whose OnData returned a count outside [0, len(in)].
	ErrHandler = errors.New("transports: handler failed")
	// ErrWriteTimeout is the OnClose error of a Conn aborted because its
	// output made no progress for Config.WriteTimeout: the peer stopped
	// reading. It wraps os.ErrDeadlineExceeded.
	ErrWriteTimeout = fmt.Errorf("transports: no output progress within the write timeout: %w", os.ErrDeadlineExceeded)
	// ErrIdleTimeout is the OnClose error of a Conn closed because no byte
	// moved either way for Config.IdleTimeout. It does not wrap
	// os.ErrDeadlineExceeded: the close itself was orderly.
	ErrIdleTimeout = errors.New("transports: idle timeout")
	// ErrInCallback is returned by Transport.Dial, Shutdown and Close called
	// from a callback, where waiting for the loops would wait for itself.
	ErrInCallback = errors.New("transports: called from a callback")
)

// PanicError returns the OnClose error for a callback that panicked with v.
// It matches ErrHandler, and v when v is an error.
func PanicError(callback string, v any) error {
	if err, ok := v.(error); ok {
		return fmt.Errorf("%w: %s panicked: %w", ErrHandler, callback, err)
	}
	return fmt.Errorf("%w: %s panicked: %v", ErrHandler, callback, v)
}

// CountError returns the OnClose error for an OnData that returned n for an
// input of length len. It matches ErrHandler.
func CountError(n, len int) error {
	return fmt.Errorf("%w: OnData consumed %d of %d bytes", ErrHandler, n, len)
}

// InputLimitError returns the OnClose error for a Conn that kept kept bytes
// over a limit of max. It matches ErrInputLimit.
func InputLimitError(kept, max int) error {
	return fmt.Errorf("%w: %d bytes kept, MaxReadBuffer is %d", ErrInputLimit, kept, max)
}

// Unsupported returns an error wrapping errors.ErrUnsupported that names
// what is missing on this host ("io_uring: IORING_SETUP_DEFER_TASKRUN").
func Unsupported(what string) error {
	return fmt.Errorf("%s: %w", what, errors.ErrUnsupported)
}
