// Package transports defines merlin's connection contract: the Handler an
// application implements, the Conn and Transport a transport implements,
// their Config and Stats, the errors both sides see, and a registry that
// opens transports by spec string ("uring:entries=4096").
//
// The contract is push-based: a transport owns the buffers and calls the
// Handler with received bytes; the Handler says how many it consumed.
// Backpressure is a byte limit in each direction (Config.MaxReadBuffer,
// Config.MaxWriteBuffer). The package imports no transport; each registers
// itself from its init function, as database/sql drivers do.
//
// NetListener and DialNet adapt any transport to net.Listener and net.Conn,
// so code written for package net runs unchanged on every transport.
//
//	t, err := transports.Open("sockets", transports.Config{})
//	if err != nil { ... }
//	defer t.Close()
//	ln, err := t.Listen("tcp", "127.0.0.1:0", echo.Handler{})
package transports
