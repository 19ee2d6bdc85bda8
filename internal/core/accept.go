package core

import (
	"errors"
	"syscall"
	"time"
)

// The accept back-off: resource errors pause a listener from MinBackoff,
// doubling to MaxBackoff, reset by a success.
const (
	MinBackoff = 5 * time.Millisecond
	MaxBackoff = time.Second
)

// Backoff is a listener's accept back-off. The zero value is ready.
type Backoff struct{ d time.Duration }

// Accepted resets the back-off after a success.
func (b *Backoff) Accepted() { b.d = 0 }

// Failed classifies an accept error (an Errno, or an error wrapping one):
// ECONNABORTED, EPROTO and EINTR are retried at once (wait 0); EMFILE,
// ENFILE, ENOBUFS and ENOMEM pause the listener for the next back-off;
// any other error pauses it too and should be logged (log true), as no
// one expects it. No accept error stops a listener.
func (b *Backoff) Failed(err error) (wait time.Duration, log bool) {
	var errno syscall.Errno
	errors.As(err, &errno)
	switch errno {
	case syscall.ECONNABORTED, syscall.EPROTO, syscall.EINTR:
		return 0, false
	case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM:
	default:
		log = true
	}
	b.d = min(max(2*b.d, MinBackoff), MaxBackoff)
	return b.d, log
}
