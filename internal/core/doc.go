// Package core holds the rules of merlin's connection contract once, for
// the three transports of this module, as Go's internal/poll holds the
// descriptor rules under package net. A transport supplies its I/O and
// its loop (how it reads, writes, shuts down, closes, wakes and keeps
// time); core says what the contract asks of each event:
//
//   - State: one representation of a connection's state, a bitset with
//     the answers of Write, Close, CloseWrite and Abort, and the rules of
//     the peer's FIN (EOFStep) and of an orderly end.
//   - Handler: the application's Handler with its optional abilities found
//     once; every callback runs through it, with panic recovery, and
//     Deliver applies the input rules (the count check, kept bytes, the
//     input limit).
//   - Deadlines: a connection's time limits (Close's flush and linger, the
//     write-progress and idle timeouts, the application's timer)
//     multiplexed onto the one timer a transport keeps per connection.
//   - Backoff: the classification of accept errors and their back-off.
//   - the error values of the contract's error table.
//
// It is internal (Go's visibility rule puts it at the module's root, so
// that sockets/, libuvlike/ and uring/ can all import it): a transport
// from another module implements the contract itself and is held to it by
// the conformance suite.
package core
