//go:build !linux

package libuvlike

import (
	"context"
	"net"

	"github.com/merlin-net/merlin/transports"
)

// errNotLinux is what every entry point returns off Linux.
var errNotLinux = transports.Unsupported("libuvlike: epoll (Linux only)")

func probe() (string, error) { return "", errNotLinux }

// Transport is the libuvlike transport; off Linux it cannot be made.
type Transport struct{}

// New fails off Linux with an error wrapping errors.ErrUnsupported.
func New(transports.Config, Options) (*Transport, error) { return nil, errNotLinux }

// The methods exist so that *Transport is a transports.Transport
// everywhere; no value can be made off Linux.

func (*Transport) Name() string                   { return "libuvlike" }
func (*Transport) Config() transports.Config      { return transports.Config{} }
func (*Transport) Stats() transports.Stats        { return transports.Stats{} }
func (*Transport) Close() error                   { return nil }
func (*Transport) Shutdown(context.Context) error { return nil }
func (*Transport) Listen(network, _ string, _ transports.Handler) (transports.Listener, error) {
	return nil, &net.OpError{Op: "listen", Net: network, Err: errNotLinux}
}
func (*Transport) Dial(_ context.Context, network, _ string, _ transports.Handler) (transports.Conn, error) {
	return nil, &net.OpError{Op: "dial", Net: network, Err: errNotLinux}
}
