package libuvlike

import (
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// TCP is a stream socket handle (libuv's uv_tcp_t; it also serves unix
// stream sockets, for which libuv has uv_pipe_t). It listens and accepts,
// connects, reads with an alloc callback, writes with requests, shuts
// down its sending side, and closes. Its methods must be called on its
// loop's goroutine.
type TCP struct {
	// The fields of the read and write paths come first (see conn).
	loop   *Loop
	fd     int // -1 until a socket is attached, and after Close
	flags  uint32
	wqHead *WriteReq // queued write requests, oldest first
	alloc  AllocFunc
	read   ReadFunc
	w      watcher

	wqTail  *WriteReq
	wqBytes int // bytes queued and not yet written
	onConn  ConnectionFunc

	accepted   int // descriptor accepted by the listener, not yet taken; -1 if none
	acceptedSA unix.Sockaddr

	shut    *ShutdownReq
	conn    *ConnectReq
	closeCb CloseFunc

	// Data is for the user, as uv_handle_t's data.
	Data any
}

// Flags of a TCP handle.
const (
	tcpReading      = 1 << iota // ReadStart: read callbacks wanted
	tcpListening                // Listen was called
	tcpAcceptPaused             // PauseListen: no accepts until ResumeListen
	tcpConnecting               // a connect(2) is in progress
	tcpShutting                 // Shutdown requested: no more writes
	tcpShut                     // shutdown(2) done
	tcpEOF                      // the peer's FIN was read
	tcpWriteBlocked             // the socket is full: waiting for EPOLLOUT
	tcpFlushQueued              // in the loop's list of handles to flush
	tcpClosing                  // Close was called
	tcpClosed                   // the close callback has run

	// tcpReadable masks the flags that decide whether a readable event is
	// a plain read: reading, and not listening, connecting or closing.
	tcpReadable = tcpReading | tcpListening | tcpConnecting | tcpClosing
)

// AllocFunc returns the buffer the next read goes into (uv_alloc_cb).
// suggested is the size the loop would like. An empty buffer makes the
// read fail with ENOBUFS.
type AllocFunc func(h *TCP, suggested int) []byte

// ReadFunc receives what a read returned (uv_read_cb): data (a prefix of
// the buffer AllocFunc gave, valid until the buffer's owner reuses it)
// and a nil err; or err == io.EOF at the peer's FIN, after which reading
// has stopped; or another error (an *os.SyscallError) from read(2).
type ReadFunc func(h *TCP, data []byte, err error)

// ConnectionFunc is called on a listening handle for each connection
// accepted, with a nil err, and for each failed accept(2) (uv_connection_cb).
// With a nil err it should take the connection with Accept or AcceptFD;
// one not taken when it returns is closed. After an error a retry cannot
// fix (EMFILE and its kind) it should pause the handle (PauseListen):
// otherwise the next accept follows at once.
type ConnectionFunc func(server *TCP, err error)

// WriteFunc is called when a write request has completed (uv_write_cb):
// err is nil once every byte is written, the write's error, or
// ErrCanceled when the handle closed first.
type WriteFunc func(req *WriteReq, err error)

// ShutdownFunc is called when a shutdown request has completed
// (uv_shutdown_cb).
type ShutdownFunc func(req *ShutdownReq, err error)

// ConnectFunc is called when a connect request has completed
// (uv_connect_cb).
type ConnectFunc func(req *ConnectReq, err error)

// CloseFunc is called in the closing phase of the iteration in which the
// handle was closed (uv_close_cb).
type CloseFunc func(h *TCP)

// suggestedRead is the read size the loop suggests to AllocFunc.
const suggestedRead = 64 << 10

// NewTCP returns a TCP handle of l with no socket yet (uv_tcp_init).
func (l *Loop) NewTCP() *TCP {
	h := new(TCP)
	l.InitTCP(h)
	return h
}

// InitTCP readies a TCP handle embedded in a larger value, so that it
// costs no allocation of its own.
func (l *Loop) InitTCP(h *TCP) {
	*h = TCP{loop: l, fd: -1, accepted: -1}
	h.w.fd = -1
}

// Loop returns h's loop.
func (h *TCP) Loop() *Loop { return h.loop }

// Fd returns h's socket, or -1 (uv_fileno).
func (h *TCP) Fd() int { return h.fd }

// Open makes h own fd, a non-blocking stream socket (uv_tcp_open): a
// connected one, or one handed over by another loop's AcceptFD.
func (h *TCP) Open(fd int) error {
	if h.flags&tcpClosing != 0 {
		return ErrClosing
	}
	if h.fd >= 0 {
		return os.NewSyscallError("open", syscall.EISCONN)
	}
	h.attach(fd)
	return nil
}

func (h *TCP) attach(fd int) {
	h.fd = fd
	h.loop.register(&h.w, fd, h)
	h.w.tcp = h
}

// socket gives h a new non-blocking socket of family.
func (h *TCP) socket(family int) error {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	h.loop.Stats.Syscalls++
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	h.attach(fd)
	return nil
}

// Bind flags.
const (
	// BindReusePort sets SO_REUSEPORT, so that several sockets (one per
	// loop) listen on one address and the kernel spreads connections.
	BindReusePort = 1 << iota
	// BindIPv6Only sets IPV6_V6ONLY on an IPv6 socket (UV_TCP_IPV6ONLY);
	// without it an IPv6 socket also accepts IPv4.
	BindIPv6Only
)

// Bind makes a socket of sa's family for h if it has none, and binds it to
// sa (uv_tcp_bind). On TCP it sets SO_REUSEADDR, as Go does for listeners.
func (h *TCP) Bind(sa unix.Sockaddr, flags int) error {
	if h.flags&tcpClosing != 0 {
		return ErrClosing
	}
	family := sockaddrFamily(sa)
	if h.fd < 0 {
		if err := h.socket(family); err != nil {
			return err
		}
	}
	if family != unix.AF_UNIX {
		if err := h.setsockopt(unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return err
		}
	}
	if flags&BindReusePort != 0 {
		if err := h.setsockopt(unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return err
		}
	}
	if family == unix.AF_INET6 {
		v6only := 0
		if flags&BindIPv6Only != 0 {
			v6only = 1
		}
		if err := h.setsockopt(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only); err != nil {
			return err
		}
	}
	err := unix.Bind(h.fd, sa)
	h.loop.Stats.Syscalls++
	if err != nil {
		return os.NewSyscallError("bind", err)
	}
	return nil
}

func (h *TCP) setsockopt(level, opt, v int) error {
	err := unix.SetsockoptInt(h.fd, level, opt, v)
	h.loop.Stats.Syscalls++
	if err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	return nil
}

// NoDelay sets or clears TCP_NODELAY (uv_tcp_nodelay).
func (h *TCP) NoDelay(on bool) error {
	v := 0
	if on {
		v = 1
	}
	return h.setsockopt(unix.IPPROTO_TCP, unix.TCP_NODELAY, v)
}

// Sockname returns the address h's socket is bound to (uv_tcp_getsockname).
func (h *TCP) Sockname() (unix.Sockaddr, error) {
	sa, err := unix.Getsockname(h.fd)
	h.loop.Stats.Syscalls++
	if err != nil {
		return nil, os.NewSyscallError("getsockname", err)
	}
	return sa, nil
}

// Peername returns the address of h's peer (uv_tcp_getpeername).
func (h *TCP) Peername() (unix.Sockaddr, error) {
	sa, err := unix.Getpeername(h.fd)
	h.loop.Stats.Syscalls++
	if err != nil {
		return nil, os.NewSyscallError("getpeername", err)
	}
	return sa, nil
}

// Listen starts listening on h's bound socket (uv_listen); cb is called
// for every connection and every accept error.
func (h *TCP) Listen(backlog int, cb ConnectionFunc) error {
	if h.flags&tcpClosing != 0 {
		return ErrClosing
	}
	err := unix.Listen(h.fd, backlog)
	h.loop.Stats.Syscalls++
	if err != nil {
		return os.NewSyscallError("listen", err)
	}
	h.onConn = cb
	h.flags |= tcpListening
	h.updateWant()
	return nil
}

// PauseListen stops accepting until ResumeListen; connections wait in
// the kernel's backlog. A listener backs off with it after EMFILE, so
// that a level-triggered loop does not spin on a backlog it cannot
// accept. (libuv has no such call: it uses a reserve descriptor instead.)
func (h *TCP) PauseListen() {
	h.flags |= tcpAcceptPaused
	h.updateWant()
}

// ResumeListen undoes PauseListen.
func (h *TCP) ResumeListen() {
	if h.flags&tcpAcceptPaused == 0 {
		return
	}
	h.flags &^= tcpAcceptPaused
	h.updateWant()
	if h.loop.et {
		h.loop.runAgain(&h.w) // no new edge comes for a backlog already there
	}
}

// Accept gives client, a TCP handle of the same loop without a socket, the
// connection the ConnectionFunc was called for (uv_accept).
func (h *TCP) Accept(client *TCP) error {
	fd, _, err := h.AcceptFD()
	if err != nil {
		return err
	}
	if client.loop != h.loop {
		h.loop.sysClose(fd)
		return os.NewSyscallError("accept", syscall.EXDEV)
	}
	return client.Open(fd)
}

// AcceptFD takes the connection the ConnectionFunc was called for as a
// bare descriptor, with its peer's address, to hand to another loop
// (which opens it with TCP.Open). It is how one acceptor dispatches
// connections to other loops, as libuv does by passing handles over a pipe
// (uv_write2).
func (h *TCP) AcceptFD() (int, unix.Sockaddr, error) {
	if h.accepted < 0 {
		return -1, nil, os.NewSyscallError("accept", syscall.EAGAIN)
	}
	fd, sa := h.accepted, h.acceptedSA
	h.accepted, h.acceptedSA = -1, nil
	return fd, sa, nil
}

// Connect connects h to sa (uv_tcp_connect), making a socket of sa's
// family if h has none; cb runs once the connection is made or has failed.
func (h *TCP) Connect(req *ConnectReq, sa unix.Sockaddr, cb ConnectFunc) error {
	if h.flags&tcpClosing != 0 {
		return ErrClosing
	}
	if h.conn != nil || h.flags&tcpListening != 0 {
		return os.NewSyscallError("connect", syscall.EALREADY)
	}
	if h.fd < 0 {
		if err := h.socket(sockaddrFamily(sa)); err != nil {
			return err
		}
	}
	*req = ConnectReq{h: h, cb: cb, Data: req.Data}
	h.conn = req
	err := unix.Connect(h.fd, sa)
	h.loop.Stats.Syscalls++
	switch err {
	case nil:
		h.conn = nil
		h.loop.pending = append(h.loop.pending, req)
	case unix.EINPROGRESS, unix.EINTR:
		h.flags |= tcpConnecting
		h.updateWant()
	default:
		h.conn = nil
		req.err = os.NewSyscallError("connect", err)
		h.loop.pending = append(h.loop.pending, req)
	}
	return nil
}

// ReadStart starts reading (uv_read_start): on every read, alloc gives the
// buffer and read receives the bytes.
func (h *TCP) ReadStart(alloc AllocFunc, read ReadFunc) error {
	if h.flags&tcpClosing != 0 {
		return ErrClosing
	}
	if h.flags&tcpEOF != 0 {
		return io.EOF
	}
	h.alloc, h.read = alloc, read
	if h.flags&tcpReading != 0 {
		return nil
	}
	h.flags |= tcpReading
	h.updateWant()
	if h.loop.et {
		// Bytes left unread when reading stopped raise no new edge.
		h.loop.runAgain(&h.w)
	}
	return nil
}

// ReadStop stops reading (uv_read_stop): no read callback runs until
// ReadStart. Bytes that arrive wait in the kernel, and TCP's flow control
// holds the peer back.
func (h *TCP) ReadStop() {
	if h.flags&tcpReading == 0 {
		return
	}
	h.flags &^= tcpReading
	h.updateWant()
}

// Reading reports whether h is reading.
func (h *TCP) Reading() bool { return h.flags&tcpReading != 0 }

// updateWant derives the events h waits for from its state.
func (h *TCP) updateWant() {
	var want uint32
	switch {
	case h.flags&tcpClosing != 0:
	case h.flags&tcpListening != 0:
		if h.flags&tcpAcceptPaused == 0 {
			want = unix.EPOLLIN
		}
	case h.flags&tcpConnecting != 0:
		want = unix.EPOLLOUT
	default:
		if h.flags&tcpReading != 0 {
			want = unix.EPOLLIN
			if h.loop.et {
				want |= unix.EPOLLRDHUP // to read on to the FIN after a short read
			}
		}
		if h.flags&tcpWriteBlocked != 0 {
			want |= unix.EPOLLOUT
		}
	}
	h.loop.setWant(&h.w, want)
}

func (h *TCP) onEvents(ev uint32) {
	switch {
	case h.flags&tcpClosing != 0:
		return
	case h.flags&tcpConnecting != 0:
		h.finishConnect()
		return
	case h.flags&tcpListening != 0:
		h.acceptReady()
		return
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 && h.flags&tcpReading != 0 {
		h.readReady(ev)
		if h.flags&tcpClosing != 0 {
			return
		}
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 && h.flags&tcpWriteBlocked != 0 {
		h.flags &^= tcpWriteBlocked
		if h.wqHead != nil || h.shut != nil {
			// Flushed with this iteration's other writes. EPOLLOUT stays
			// wanted until the flush leaves nothing behind.
			h.queueFlush()
		} else {
			h.updateWant() // a short TryWrite, and nothing queued after it
		}
	}
}

// readReady reads, once on a level-triggered loop (which reports the
// descriptor again while bytes remain), or on an edge-triggered one until
// the socket is drained, up to a budget after which the handle runs again
// at the next iteration.
func (h *TCP) readReady(ev uint32) {
	const budget = 16
	l := h.loop
	for i := 1; ; i++ {
		buf := h.alloc(h, suggestedRead)
		if len(buf) == 0 {
			h.read(h, nil, os.NewSyscallError("read", syscall.ENOBUFS))
			return
		}
		l.Stats.Syscalls++
		n, errno := sysRead(h.fd, buf)
		switch {
		case errno == syscall.EINTR:
			continue
		case errno != 0 || n == 0:
			h.readFailed(n, errno)
			return
		}
		l.Stats.Reads++
		l.Stats.BytesIn += uint64(n)
		h.read(h, buf[:n], nil)
		switch {
		case h.flags&(tcpReading|tcpClosing) != tcpReading:
			return // stopped or closed by the callback
		case !l.et:
			return
		case n < len(buf) && ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0:
			return // drained; new bytes raise a new edge
		case i == budget:
			l.runAgain(&h.w)
			return
		}
	}
}

// readFailed handles a read that returned no bytes: the peer's FIN, an
// error, or nothing yet (EAGAIN, EINTR: a level-triggered loop comes back).
func (h *TCP) readFailed(n int, errno syscall.Errno) {
	switch {
	case errno == syscall.EAGAIN || errno == syscall.EINTR:
	case errno != 0:
		h.read(h, nil, os.NewSyscallError("read", errno))
	case n == 0:
		h.flags |= tcpEOF
		h.ReadStop()
		h.read(h, nil, io.EOF)
	}
}

// acceptBudget bounds the accepts per event, so that a flood of
// connections does not starve the loop's other handles.
const acceptBudget = 64

// acceptReady accepts the connections waiting in the backlog.
func (h *TCP) acceptReady() {
	l := h.loop
	for i := 0; i < acceptBudget; i++ {
		if h.flags&(tcpListening|tcpAcceptPaused|tcpClosing) != tcpListening {
			return
		}
		fd, sa, err := unix.Accept4(h.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		l.Stats.Syscalls++
		if err != nil {
			if errnoOf(err) == syscall.EAGAIN {
				return
			}
			// The callback classifies the error: it pauses the listener
			// (PauseListen) after one a retry cannot fix, such as EMFILE,
			// which ends this loop; after one it can (ECONNABORTED), the
			// next accept follows at once.
			h.onConn(h, os.NewSyscallError("accept4", err))
			continue
		}
		h.accepted, h.acceptedSA = fd, sa
		h.onConn(h, nil)
		if h.accepted >= 0 {
			l.sysClose(h.accepted)
			h.accepted, h.acceptedSA = -1, nil
		}
	}
	l.runAgain(&h.w)
}

// finishConnect completes a connect(2) in progress.
func (h *TCP) finishConnect() {
	v, err := unix.GetsockoptInt(h.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	h.loop.Stats.Syscalls++
	switch {
	case err != nil:
		err = os.NewSyscallError("getsockopt", err)
	case v == int(syscall.EINPROGRESS) || v == int(syscall.EALREADY) || v == int(syscall.EINTR):
		return // not yet
	case v != 0:
		err = os.NewSyscallError("connect", syscall.Errno(v))
	}
	req := h.conn
	h.conn = nil
	h.flags &^= tcpConnecting
	h.updateWant()
	req.err = err
	h.loop.pending = append(h.loop.pending, req)
}

// Write queues a write of bufs (uv_write). The bytes go out with the
// loop's flush of this iteration, in one write or writev with every other
// request queued on h; cb runs once all are written, or with the error
// that stopped them. The request owns bufs until then: it advances them
// as bytes go out.
func (h *TCP) Write(req *WriteReq, bufs [][]byte, cb WriteFunc) error {
	switch {
	case h.flags&tcpClosing != 0:
		return ErrClosing
	case h.flags&(tcpShutting|tcpShut) != 0:
		return os.NewSyscallError("write", syscall.EPIPE)
	case h.fd < 0 || h.flags&(tcpListening|tcpConnecting) != 0:
		return os.NewSyscallError("write", syscall.ENOTCONN)
	}
	req.h, req.bufs, req.cb, req.n, req.err, req.next = h, bufs, cb, 0, nil, nil
	for _, b := range bufs {
		h.wqBytes += len(b)
	}
	if h.wqTail == nil {
		h.wqHead = req
	} else {
		h.wqTail.next = req
	}
	h.wqTail = req
	h.queueFlush()
	return nil
}

// TryWrite writes what of b the socket takes now, without a request
// (uv_try_write): it returns how many bytes went out, or an error
// matching syscall.EAGAIN if none could because the socket is full or
// writes are queued (which must go first). A short TryWrite leaves h
// waiting for EPOLLOUT, so that a Write queued right after it for the
// rest is flushed when the socket has room, without a futile try before.
// It is how a caller that gathers its own output (the transport, once
// per iteration) writes with one system call and no callback when the
// socket has room, as it usually has.
func (h *TCP) TryWrite(b []byte) (int, error) {
	if h.flags&tcpNoTry != 0 || h.wqHead != nil || h.fd < 0 {
		return 0, h.tryWriteErr()
	}
	if len(b) == 0 {
		return 0, nil
	}
	h.loop.Stats.Syscalls++
	n, errno := sysWrite(h.fd, b)
	if errno == 0 && n == len(b) {
		h.loop.Stats.Writes++
		h.loop.Stats.BytesOut += uint64(n)
		return n, nil
	}
	return h.tryWriteDone(b, n, errno)
}

// tcpNoTry masks the flags under which a write cannot be tried at once
// (tryWriteErr says why).
const tcpNoTry = tcpClosing | tcpShutting | tcpShut | tcpListening | tcpConnecting | tcpWriteBlocked

// tryWriteErr returns why a write cannot be tried now, or nil.
func (h *TCP) tryWriteErr() error {
	switch {
	case h.flags&tcpClosing != 0:
		return ErrClosing
	case h.flags&(tcpShutting|tcpShut) != 0:
		return os.NewSyscallError("write", syscall.EPIPE)
	case h.fd < 0 || h.flags&(tcpListening|tcpConnecting) != 0:
		return os.NewSyscallError("write", syscall.ENOTCONN)
	case h.wqHead != nil || h.flags&tcpWriteBlocked != 0:
		return syscall.EAGAIN
	}
	return nil
}

// tryWriteDone completes a TryWrite whose write(2) returned n and errno.
func (h *TCP) tryWriteDone(b []byte, n int, errno syscall.Errno) (int, error) {
	l := h.loop
	for {
		switch errno {
		case 0:
			l.Stats.Writes++
			l.Stats.BytesOut += uint64(n)
			if n < len(b) {
				h.blockWrites()
			}
			return n, nil
		case syscall.EINTR:
			l.Stats.Syscalls++
			n, errno = sysWrite(h.fd, b)
			continue
		case syscall.EAGAIN:
			h.blockWrites()
			return 0, syscall.EAGAIN
		}
		return 0, os.NewSyscallError("write", errno)
	}
}

// WriteQueueSize returns the bytes queued and not yet written
// (uv_stream_get_write_queue_size).
func (h *TCP) WriteQueueSize() int { return h.wqBytes }

// queueFlush puts h on the loop's list of handles to flush in this
// iteration, unless it waits for EPOLLOUT.
func (h *TCP) queueFlush() {
	if h.flags&(tcpFlushQueued|tcpWriteBlocked) == 0 {
		h.flags |= tcpFlushQueued
		h.loop.writing = append(h.loop.writing, h)
	}
}

// flushWrites writes out the queues of the handles written in this
// iteration.
func (l *Loop) flushWrites() {
	for i := 0; i < len(l.writing); i++ {
		h := l.writing[i]
		l.writing[i] = nil
		h.flags &^= tcpFlushQueued
		if h.flags&tcpClosing == 0 {
			h.flush()
		}
	}
	l.writing = l.writing[:0]
}

// flush writes as much of h's queue as the socket takes, one buffer with
// write(2) or many with writev(2), completing the requests that are
// done; then, with the queue empty, makes a pending shutdown.
func (h *TCP) flush() {
	l := h.loop
	for h.wqHead != nil {
		iov := l.iov[:0]
		var (
			one   []byte
			total int
		)
	gather:
		for r := h.wqHead; r != nil; r = r.next {
			for _, b := range r.bufs {
				if len(b) == 0 {
					continue
				}
				if len(iov) == maxIovecs {
					break gather
				}
				v := unix.Iovec{Base: &b[0]}
				v.SetLen(len(b))
				iov = append(iov, v)
				one = b
				total += len(b)
			}
		}
		if total == 0 {
			h.advance(0) // requests of empty buffers only
			continue
		}
		var (
			n     int
			errno syscall.Errno
			name  = "write"
		)
		if len(iov) == 1 {
			l.Stats.Syscalls++
			n, errno = sysWrite(h.fd, one)
		} else {
			name = "writev"
			l.Stats.Syscalls++
			n, errno = sysWritev(h.fd, iov)
			clear(iov) // drop the references to the buffers
		}
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN:
			h.blockWrites()
			return
		case errno != 0:
			h.failWrites(os.NewSyscallError(name, errno))
			return
		}
		l.Stats.Writes++
		l.Stats.BytesOut += uint64(n)
		h.advance(n)
		if n < total {
			h.blockWrites() // the socket is full: EAGAIN would be next
			return
		}
	}
	if h.flags&tcpWriteBlocked != 0 || h.w.want&unix.EPOLLOUT != 0 {
		h.flags &^= tcpWriteBlocked
		h.updateWant()
	}
	if h.shut != nil {
		h.doShutdown()
	}
}

// advance accounts for n bytes written, completing the requests they end.
func (h *TCP) advance(n int) {
	h.wqBytes -= n
	for r := h.wqHead; r != nil; r = h.wqHead {
		for len(r.bufs) > 0 {
			b := r.bufs[0]
			if n < len(b) {
				r.bufs[0] = b[n:]
				r.n += n
				return
			}
			n -= len(b)
			r.n += len(b)
			r.bufs = r.bufs[1:]
		}
		h.wqHead = r.next
		if h.wqHead == nil {
			h.wqTail = nil
		}
		r.next = nil
		h.loop.pending = append(h.loop.pending, r)
	}
}

// failWrites completes every queued write, and a pending shutdown, with
// err.
func (h *TCP) failWrites(err error) {
	h.cancelWrites(err)
	h.flags &^= tcpWriteBlocked
	h.updateWant()
}

func (h *TCP) cancelWrites(err error) {
	for r := h.wqHead; r != nil; {
		next := r.next
		r.next, r.err = nil, err
		h.loop.pending = append(h.loop.pending, r)
		r = next
	}
	h.wqHead, h.wqTail, h.wqBytes = nil, nil, 0
	if s := h.shut; s != nil {
		h.shut = nil
		s.err = err
		h.loop.pending = append(h.loop.pending, s)
	}
}

func (h *TCP) blockWrites() {
	if h.flags&tcpWriteBlocked == 0 {
		h.flags |= tcpWriteBlocked
		h.updateWant()
	}
}

// Shutdown sends FIN once the queued writes are written (uv_shutdown):
// shutdown(2) with SHUT_WR, then cb. Later writes fail with EPIPE.
func (h *TCP) Shutdown(req *ShutdownReq, cb ShutdownFunc) error {
	switch {
	case h.flags&tcpClosing != 0:
		return ErrClosing
	case h.flags&(tcpShutting|tcpShut) != 0 || h.fd < 0 || h.flags&(tcpListening|tcpConnecting) != 0:
		return os.NewSyscallError("shutdown", syscall.ENOTCONN)
	}
	*req = ShutdownReq{h: h, cb: cb, Data: req.Data}
	h.shut = req
	h.flags |= tcpShutting
	h.queueFlush()
	return nil
}

func (h *TCP) doShutdown() {
	req := h.shut
	h.shut = nil
	err := unix.Shutdown(h.fd, unix.SHUT_WR)
	h.loop.Stats.Syscalls++
	if err != nil {
		req.err = os.NewSyscallError("shutdown", err)
	}
	h.flags |= tcpShut
	h.loop.pending = append(h.loop.pending, req)
}

// Close closes h (uv_close): reading stops, queued requests complete with
// ErrCanceled, the socket is closed, and cb (if not nil) runs in this
// iteration's closing phase, after those requests' callbacks.
func (h *TCP) Close(cb CloseFunc) { h.close(cb, false) }

// CloseReset closes h as Close does, with SO_LINGER 0 first, so that a TCP
// peer sees a reset (uv_tcp_close_reset).
func (h *TCP) CloseReset(cb CloseFunc) { h.close(cb, true) }

func (h *TCP) close(cb CloseFunc, reset bool) {
	if h.flags&tcpClosing != 0 {
		return
	}
	l := h.loop
	h.flags |= tcpClosing
	h.flags &^= tcpReading | tcpWriteBlocked
	h.closeCb = cb
	h.cancelWrites(ErrCanceled)
	if r := h.conn; r != nil {
		h.conn = nil
		r.err = ErrCanceled
		l.pending = append(l.pending, r)
	}
	if h.accepted >= 0 {
		l.sysClose(h.accepted)
		h.accepted, h.acceptedSA = -1, nil
	}
	if h.fd >= 0 {
		if reset {
			unix.SetsockoptLinger(h.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
			l.Stats.Syscalls++
		}
		l.unregister(&h.w)
		l.sysClose(h.fd)
		h.fd = -1
	}
	l.closing = append(l.closing, h)
}

func (h *TCP) closed() {
	h.flags |= tcpClosed
	if h.closeCb != nil {
		h.closeCb(h)
	}
}

// WriteReq is a write request (uv_write_t). Reuse one once its callback
// has run.
type WriteReq struct {
	h    *TCP
	bufs [][]byte
	n    int
	err  error
	cb   WriteFunc
	next *WriteReq

	// Data is for the user, as uv_req_t's data.
	Data any
}

// Handle returns the handle req was written on.
func (r *WriteReq) Handle() *TCP { return r.h }

// Written returns how many bytes of req have been written.
func (r *WriteReq) Written() int { return r.n }

func (r *WriteReq) complete() {
	r.bufs = nil
	if r.cb != nil {
		r.cb(r, r.err)
	}
}

// ShutdownReq is a shutdown request (uv_shutdown_t).
type ShutdownReq struct {
	h   *TCP
	err error
	cb  ShutdownFunc

	// Data is for the user, as uv_req_t's data.
	Data any
}

// Handle returns the handle req shut down.
func (r *ShutdownReq) Handle() *TCP { return r.h }

func (r *ShutdownReq) complete() {
	if r.cb != nil {
		r.cb(r, r.err)
	}
}

// ConnectReq is a connect request (uv_connect_t).
type ConnectReq struct {
	h   *TCP
	err error
	cb  ConnectFunc

	// Data is for the user, as uv_req_t's data.
	Data any
}

// Handle returns the handle req connects.
func (r *ConnectReq) Handle() *TCP { return r.h }

func (r *ConnectReq) complete() {
	if r.cb != nil {
		r.cb(r, r.err)
	}
}

// sockaddrFamily returns the address family of sa.
func sockaddrFamily(sa unix.Sockaddr) int {
	switch sa.(type) {
	case *unix.SockaddrInet6:
		return unix.AF_INET6
	case *unix.SockaddrUnix:
		return unix.AF_UNIX
	}
	return unix.AF_INET
}
