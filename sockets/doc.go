// Package sockets implements a transports.Transport on Go's net package:
// the baseline every other transport is compared with.
//
// Each connection has one goroutine that waits for readability through
// syscall.RawConn.Read (a 1-byte MSG_PEEK probe, so an idle connection holds
// no read buffer), reads into a pooled buffer and runs the Handler's
// callbacks. Writes made inside a callback are copied into one contiguous
// output buffer and sent with one write(2) after the callback returns; what
// the socket does not take at once, and writes from other goroutines, are
// sent by a writer goroutine that lives only while output is pending.
// The contract's rules come from internal/core; a connection's time limits
// (Close's, the write-progress and idle timeouts, the application's timer)
// share one time.AfterFunc, made when first needed, that wakes its
// goroutine. Listeners and dialers are plain TCP (no MPTCP) with TCP_NODELAY on by
// default.
//
// Config.Loops means nothing here (every connection is its own loop) and is
// ignored. Stats.Syscalls counts the transport's own peeks, reads, writes,
// shutdowns and accepts, not the runtime poller's epoll calls, which it
// cannot see.
//
//	t, err := transports.Open("sockets", transports.Config{})
package sockets
