// Package libuvlike implements a transports.Transport on an epoll reactor
// written in libuv's vocabulary, in Go's idiom.
//
// The reactor stands on its own: a Loop owns one epoll descriptor and runs
// on the goroutine that calls Run; handles register with it; requests
// complete with callbacks on that goroutine. The names map to libuv's:
//
//	uv_loop_t      Loop          NewLoop, Run, Stop, Close, Now, UpdateTime
//	uv_tcp_t       TCP           Bind, Listen, Accept (AcceptFD to hand a socket
//	                             to another loop), Open, Connect, ReadStart with
//	                             an AllocFunc and a ReadFunc, ReadStop, Write,
//	                             TryWrite (uv_try_write), Shutdown, Close,
//	                             CloseReset (uv_tcp_close_reset)
//	uv_write_t     WriteReq      completion callback WriteFunc
//	uv_shutdown_t  ShutdownReq   completion callback ShutdownFunc
//	uv_connect_t   ConnectReq    completion callback ConnectFunc
//	uv_timer_t     Timer         Start, Stop, Again (a binary heap; epoll_pwait's
//	                             timeout is the earliest deadline)
//	uv_async_t     Async         Send from any goroutine wakes the loop (an eventfd,
//	                             or a poke of a loop parked in the runtime)
//	uv_idle_t      Idle          uv_prepare_t Prepare, uv_check_t Check
//
// An iteration runs due timers, pending request callbacks, idle and
// prepare handles, the poll, then check handles and close callbacks, as
// libuv's does. Where this reactor differs: TCP.Write does not try the
// socket at once but queues, and the loop flushes each handle's queue
// once per iteration (after the prepare and again after the check
// handles) with one write or writev; a TCP handle also serves unix stream
// sockets (libuv's uv_pipe_t); and a listener can pause accepting
// (PauseListen) to back off from EMFILE. Reads and writes are raw system
// calls (no scheduler hand-off: the descriptors never block); only
// epoll_pwait tells the scheduler it may block, and not while the loop is
// busy (rawwait, below) or parks in the runtime (Loop.SetPark, below).
//
// The transport runs Config.Loops loops (spec key loops, default
// GOMAXPROCS), each on a goroutine of its own (lockthread=true locks it to
// a thread). Connections reach them through a SO_REUSEPORT listener per
// loop (accept=reuseport) or one acceptor that hands them round-robin to
// every loop (accept=dispatch, as Kestrel's libuv transport did; unix
// listeners always dispatch); trigger=level or edge chooses epoll's mode.
// Each loop has one read buffer (readbuf, default 64 KiB), lent to one
// OnData at a time; the bytes an OnData leaves are copied to its
// connection. Writes made on a loop append to the connection's output
// with no lock and no atomic operation; after the loop's callbacks (in a
// check handle; work made where no check follows, by timer, write or
// close callbacks, starts an idle handle that does it before the poll,
// Loop.ChecksDue), each connection written is flushed with one TryWrite, and
// only what the socket does not take becomes a write request, flushed
// when EPOLLOUT comes (wanted only while output is pending; two requests
// in flight go out in one writev). A Write of 16 KiB or more on the loop,
// with no output waiting, goes to the socket at once instead of being
// copied. Conn methods called from other
// goroutines queue their work under the connection's mutex and wake the
// loop with its Async handle, which costs nothing while the loop is awake
// (it looks at its Asyncs before it sleeps).
//
// How a loop waits is the park key. A loop that blocks its thread in
// epoll_pwait (park=thread) costs least per wake-up for inline handlers.
// For handlers that hand their work to goroutines (the net.Conn adapter,
// transports.HandoffHandler) every request would cross between the
// loop's thread and the handler goroutine's twice; such a loop instead
// parks in the Go runtime's netpoller on its epoll descriptor
// (park=runtime): it first yields, so that the goroutines its callbacks
// readied run on its P and queue their Writes while it is awake, then
// parks, and an Async.Send pokes it by moving the descriptor's read
// deadline into the past, without a system call. With park=auto (the
// default) a loop parks in the runtime while it serves a connection whose
// handler hands off, and blocks its thread otherwise; a loop locked to its
// thread always blocks it. A loop that blocks its thread does so with a
// raw system call, keeping its P, while its last wait ended within
// rawwait (default 2 ms) and no Async was sent to it lately: told of every
// wait, the scheduler's sysmon may take the P from each one and wake two
// threads for it (internal/schedtick). Nothing on the path from a read to its
// echo's write allocates. The contract's rules come from internal/core; a
// connection's time limits (Close's, the write-progress and idle
// timeouts, the application's timer) share one Timer of its loop, set
// only when the earliest of them moves earlier, and the loop reads the
// clock at most once per iteration, none when nothing needs it.
//
// Off Linux the driver is registered, but Probe and New return an error
// wrapping errors.ErrUnsupported.
//
//	t, err := transports.Open("libuvlike:loops=4,accept=dispatch,trigger=edge", transports.Config{})
//	if err != nil { ... }
//	defer t.Close()
//	ln, err := t.Listen("tcp", "127.0.0.1:0", echo.Handler{})
package libuvlike
