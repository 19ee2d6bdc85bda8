// Package uring implements a transports.Transport on Linux io_uring.
//
// Each loop owns one ring and one goroutine; connections never move
// between loops. A thread loop's goroutine is locked to its thread and
// blocks it in io_uring_enter, on a ring created with SINGLE_ISSUER and
// DEFER_TASKRUN where the kernel has them; other goroutines wake it
// through an eventfd read kept armed in its ring. While it is busy (its
// last wait ended within rawwait, default 2 ms, and nobody posted work to
// it lately) it waits with a raw system call, keeping its P: told of every
// wait, the scheduler's sysmon may take the P from each one and wake two
// threads for it (internal/schedtick). A runtime loop's
// goroutine is not locked: it parks in the Go runtime's netpoller on its
// ring's descriptor, on a ring without those flags (with COOP_TASKRUN
// instead: completions do not interrupt a running thread), and other goroutines
// wake it with a read deadline in the past, without a system call; it
// ignores the sqpoll, minwait and rawwait keys. The park key chooses:
// by default (auto) the conns of a Handler that hands off (the net.Conn
// adapter, transports.HandoffHandler) are served by runtime loops, started
// by the first Listen or Dial that needs them, and every other conn by
// thread loops. Received bytes land in a kernel-provided buffer ring
// (multishot recv; consumed piece by piece on Linux 6.12 and later, so
// small receives share a buffer) and are lent to the Handler for one
// OnData call; what it keeps is copied out so the buffer goes back to the
// ring at once, and no connection holds any. Output is copied into one
// buffer per connection and sent with at most one send in flight, which
// gathers everything written since the last one (SEND_ZC above a size
// threshold); a Write of 16 KiB or more with nothing queued before it goes
// out at once with send(2), and only what the socket does not take is
// copied. A thread loop's sends go inline (inlinesend, by default): with
// MSG_DONTWAIT, so that each completes in the io_uring_enter that submits
// it, and a busy loop's wait asks for one completion more for each whose
// completion needs nothing of it, sleeping on to the next event: a
// request-response costs one io_uring_enter, not two. The contract's rules come from internal/core; a
// connection's time limits (Close's, the write-progress and idle
// timeouts, the application's timer) share one timer in its loop's heap,
// and a loop with timers keeps one IORING_OP_TIMEOUT in its ring for the
// earliest.
//
// Where the kernel lacks io_uring or a feature this package needs, Open
// returns an error wrapping errors.ErrUnsupported that names the feature and
// the Linux version that has it; elsewhere than Linux it always does.
//
//	t, err := transports.Open("uring:entries=4096,bufsize=16k", transports.Config{})
package uring
