//go:build !linux

package uring

import (
	"context"
	"errors"
	"net"

	"github.com/merlin-net/merlin/transports"
)

// probeDriver reports that io_uring exists only on Linux.
func probeDriver() (string, error) {
	return "", transports.Unsupported("io_uring (Linux 5.1 and later only)")
}

// Transport is the uring transport; off Linux it cannot be made.
type Transport struct{}

func newTransport(transports.Config, options) (*Transport, error) {
	_, err := probeDriver()
	return nil, errors.Join(err)
}

// The methods exist so that *Transport is a transports.Transport
// everywhere; no value can be made off Linux.

func (*Transport) Name() string                   { return "uring" }
func (*Transport) Config() transports.Config      { return transports.Config{} }
func (*Transport) Stats() transports.Stats        { return transports.Stats{} }
func (*Transport) Close() error                   { return nil }
func (*Transport) Shutdown(context.Context) error { return nil }
func (*Transport) Listen(network, _ string, _ transports.Handler) (transports.Listener, error) {
	_, err := probeDriver()
	return nil, &net.OpError{Op: "listen", Net: network, Err: err}
}
func (*Transport) Dial(_ context.Context, network, _ string, _ transports.Handler) (transports.Conn, error) {
	_, err := probeDriver()
	return nil, &net.OpError{Op: "dial", Net: network, Err: err}
}
