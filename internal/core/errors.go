package core

import (
	"fmt"
	"net"
	"os"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// OpError returns err in the shape package net gives its errors.
func OpError(op, network string, laddr, raddr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: network, Source: laddr, Addr: raddr, Err: err}
}

// FlushTimeout is the error (under a "close" OpError) of a Close whose
// output was not flushed within CloseTimeout.
func FlushTimeout(d time.Duration) error {
	return fmt.Errorf("output not flushed within CloseTimeout %v: %w", d, os.ErrDeadlineExceeded)
}

// LingerTimeout is the error (under a "close" OpError) of a Close whose
// peer sent no FIN within CloseLinger.
func LingerTimeout(d time.Duration) error {
	return fmt.Errorf("no FIN from the peer within CloseLinger %v: %w", d, os.ErrDeadlineExceeded)
}

// WriteTimeout is the error (under a "write" OpError) of a connection
// whose output made no progress within WriteTimeout d. It matches
// transports.ErrWriteTimeout.
func WriteTimeout(d time.Duration) error {
	return fmt.Errorf("%w (%v)", transports.ErrWriteTimeout, d)
}

// IdleTimeout is the OnClose error of a connection closed after
// IdleTimeout d with no bytes either way. It matches
// transports.ErrIdleTimeout.
func IdleTimeout(d time.Duration) error {
	return fmt.Errorf("%w: no bytes either way for %v", transports.ErrIdleTimeout, d)
}
