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
//	                             Shutdown, Close, CloseReset (uv_tcp_close_reset)
//	uv_write_t     WriteReq      completion callback WriteFunc
//	uv_shutdown_t  ShutdownReq   completion callback ShutdownFunc
//	uv_connect_t   ConnectReq    completion callback ConnectFunc
//	uv_timer_t     Timer         Start, Stop, Again (a binary heap; epoll_pwait's
//	                             timeout is the earliest deadline)
//	uv_async_t     Async         Send from any goroutine wakes the loop (eventfd)
//	uv_idle_t      Idle          uv_prepare_t Prepare, uv_check_t Check
//
// An iteration runs due timers, pending request callbacks, idle and
// prepare handles, the poll, then check handles and close callbacks, as
// libuv's does. Where this reactor differs: writes are not tried inside
// TCP.Write but gathered, and flushed once per iteration with one write or
// writev per handle; a TCP handle also serves unix stream sockets (libuv's
// uv_pipe_t); and a listener can pause accepting (PauseListen) to back off
// from EMFILE.
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
// with no lock; after the loop's callbacks, each connection written is
// flushed with one system call, and EPOLLOUT is wanted only while output
// is pending. Conn methods called from other goroutines queue their work
// under the connection's mutex and wake the loop with its Async handle.
//
// Off Linux the driver is registered, but Probe and New return an error
// wrapping errors.ErrUnsupported.
//
//	t, err := transports.Open("libuvlike:loops=4,accept=dispatch,trigger=edge", transports.Config{})
//	if err != nil { ... }
//	defer t.Close()
//	ln, err := t.Listen("tcp", "127.0.0.1:0", echo.Handler{})
package libuvlike
