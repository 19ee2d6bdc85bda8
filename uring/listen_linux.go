package uring

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/merlin-net/merlin/internal/core"
	"github.com/merlin-net/merlin/transports"
	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// listener is a Listener: one listening socket per loop (reuseport), one
// shared by every loop (unix sockets), or one on the acceptor loop
// (msgring).
type listener struct {
	t       *Transport
	set     *loopSet // the loops that accept and serve its conns
	id      uint32
	h       transports.Handler
	network string
	family  int // the sockets' address family
	addr    net.Addr
	local   net.Addr // the accepted conns' local address, if not a wildcard
	path    string   // unix socket file to remove at Close ("" for an abstract name)
	fds     []int

	stopped atomic.Bool // Close has begun: accept errors are expected

	mu      sync.Mutex
	closed  bool
	pending int // acceptors not yet finished
	// handing counts the descriptors handed over to other loops (msgring)
	// that their targets have not taken yet: they find ln by its id.
	handing int
	done    chan struct{} // closed once every acceptor has finished, the fds are closed and no descriptor is on its way
}

// acceptor is a multishot accept on one loop.
type acceptor struct {
	ln      *listener
	l       *loop
	fd      int
	slot    uint32
	armed   bool
	closing bool
	backoff core.Backoff
	tmWhen  int64 // the back-off's timer: see timed
	tmPos   int32
}

func (a *acceptor) timer() (*int64, *int32) { return &a.tmWhen, &a.tmPos }

// expired ends the back-off.
func (a *acceptor) expired() {
	if !a.closing {
		a.arm()
	}
}

func (ln *listener) Addr() net.Addr { return ln.addr }

// Close stops accepting: the sockets stop listening at once (shutdown),
// the multishot accepts are cancelled and the descriptors closed. It waits
// for that unless called from a loop (a callback), where waiting would
// wait for itself: the acceptors finish on their loops. That holds for
// a second Close too, while another goroutine's Close waits.
func (ln *listener) Close() error {
	wait := !ln.t.inCallback()
	ln.mu.Lock()
	if ln.closed {
		ln.mu.Unlock()
		if wait {
			<-ln.done
		}
		return nil
	}
	ln.closed = true
	ln.mu.Unlock()
	ln.stopped.Store(true)
	for _, fd := range ln.fds {
		unix.Shutdown(fd, unix.SHUT_RDWR) // stop listening now: new connects are refused
	}
	if ln.path != "" {
		unix.Unlink(ln.path)
	}
	for _, l := range ln.set.loops {
		l.postTask(func() {
			for _, a := range l.acceptors {
				if a != nil && a.ln == ln {
					a.close()
				}
			}
		})
	}
	if wait {
		<-ln.done
	}
	return nil
}

// Done is closed once ln is closed: its acceptors have finished, its
// descriptors are closed, and every descriptor it handed to another loop
// has been taken there (transports.DoneListener).
func (ln *listener) Done() <-chan struct{} { return ln.done }

// acceptorDone counts one acceptor finished; the last closes the fds.
func (ln *listener) acceptorDone() {
	ln.mu.Lock()
	ln.pending--
	last := ln.pending == 0
	end := last && ln.handing == 0
	ln.mu.Unlock()
	if last {
		for _, fd := range ln.fds {
			unix.Close(fd)
		}
	}
	if end {
		ln.end()
	}
}

// handOver counts a descriptor handed over to another loop.
func (ln *listener) handOver() {
	ln.mu.Lock()
	ln.handing++
	ln.mu.Unlock()
}

// handedOver counts a descriptor handed over that its target has taken,
// or that never left (the MSG_RING failed). Every hand-over is made by an
// acceptor before it finishes, so once none is pending, handing only
// falls.
func (ln *listener) handedOver() {
	ln.mu.Lock()
	ln.handing--
	end := ln.pending == 0 && ln.handing == 0
	ln.mu.Unlock()
	if end {
		ln.end()
	}
}

// end forgets ln, for which no descriptor can arrive any more, and closes
// done.
func (ln *listener) end() {
	ln.t.forgetListener(ln)
	close(ln.done)
}

// arm arms the multishot accept.
func (a *acceptor) arm() {
	s := a.l.sqe()
	s.PrepareMultishotAccept(a.fd, 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	s.UserData = mkUD(opAccept, 0, a.slot)
	a.armed = true
}

// close cancels the accept; the acceptor finishes at its last completion.
func (a *acceptor) close() {
	if a.closing {
		return
	}
	a.closing = true
	if a.armed {
		a.l.cancel(mkUD(opAccept, 0, a.slot))
		return
	}
	a.l.stopTimer(a)
	a.finish()
}

// finish forgets the acceptor. Descriptors it handed over may still be
// on their way: the listener counts them (handing), and its end waits
// for them.
func (a *acceptor) finish() {
	a.l.acceptors[a.slot] = nil
	a.ln.acceptorDone()
}

// onAccept handles a multishot accept completion: a new descriptor, or an
// error, after which the accept is re-armed at once or after a back-off.
func (a *acceptor) onAccept(res int32, flags uint32) {
	l := a.l
	more := flags&giouring.CQEFMore != 0
	if !more {
		a.armed = false
	}
	if !a.closing && a.ln.stopped.Load() {
		// Close shut the socket down (the accept ends with EINVAL); its
		// task reaches this loop next.
		a.closing = true
	}
	var wait time.Duration
	if res >= 0 {
		a.backoff.Accepted()
		if a.closing {
			unix.Close(int(res))
		} else {
			l.dispatchFD(int(res), a.ln)
		}
	} else if !a.closing {
		errno := syscall.Errno(-res)
		l.stats.AcceptErrors.Add(1)
		var log bool
		if wait, log = a.backoff.Failed(errno); log {
			l.t.cfg.Logger.Error("uring: accept", "addr", a.ln.addr, "err", errno)
		}
	}
	if more {
		return
	}
	if a.closing {
		a.finish()
		return
	}
	if wait > 0 {
		l.setTimer(a, l.now()+int64(wait))
		return
	}
	a.arm()
}

// dispatchFD serves an accepted descriptor: here, or (msgring) on the next
// loop, handed over with MSG_RING.
func (l *loop) dispatchFD(fd int, ln *listener) {
	set := l.set
	if l.t.opt.accept == AcceptMsgRing && len(set.loops) > 1 {
		target := set.loops[int(set.rr.Add(1))%len(set.loops)]
		if target != l {
			tfd := target.fdOut.Load()
			if tfd >= 0 {
				ln.handOver()
				s := l.sqe()
				s.PrepareMsgRing(int(tfd), uint32(fd), mkUD(opMsgFD, ln.id, 0), 0)
				s.UserData = mkUD(opMsgSent, ln.id, uint32(fd))
				l.msgsOut++
				return
			}
		}
	}
	l.acceptFD(fd, ln)
}

// onHandedFD serves a descriptor another loop handed over.
func (l *loop) onHandedFD(fd int, lnID uint32) {
	ln := l.t.listenerByID(lnID)
	if ln == nil {
		// The transport has closed, and forgotten every listener.
		if fd >= 0 {
			unix.Close(fd)
		}
		return
	}
	if fd >= 0 {
		l.acceptFD(fd, ln)
	}
	ln.handedOver() // after acceptFD: the conn counts in the transport by now
}

// handOffFailed handles a MSG_RING that did not deliver descriptor fd,
// handed over for listener lnID: the descriptor is still ours.
func (l *loop) handOffFailed(fd int, lnID uint32, errno syscall.Errno) {
	unix.Close(fd)
	l.t.cfg.Logger.Error("uring: MSG_RING hand-off failed", "err", errno)
	if ln := l.t.listenerByID(lnID); ln != nil {
		ln.handedOver()
	}
}

// acceptFD makes a conn of an accepted descriptor and opens it.
func (l *loop) acceptFD(fd int, ln *listener) {
	c := newConn(l, fd, ln.network, ln.h)
	c.laddr = ln.local
	if c.laddr == nil {
		if sa, err := unix.Getsockname(fd); err == nil {
			c.laddr = sockaddrToAddr(ln.network, sa)
		}
		l.stats.Syscalls.Add(1)
		if c.laddr == nil {
			c.laddr = ln.addr // the wildcard; never nil, as package net
		}
	}
	sa, err := unix.Getpeername(fd)
	l.stats.Syscalls.Add(1)
	if err != nil {
		// The peer reset the connection before the accept: the socket
		// is closed, and getpeername says ENOTCONN. accept(2) would
		// still have told the address, and SO_PEERNAME does.
		sa, _ = peerName(fd, ln.family)
		l.stats.Syscalls.Add(1)
	}
	if sa4, ok := sa.(*unix.SockaddrInet4); ok && sa4.Port != 0 {
		c.peer4, c.peerPort = sa4.Addr, uint16(sa4.Port)
	} else {
		c.raddr = sockaddrToAddr(ln.network, sa)
		if c.raddr == nil {
			c.raddr = unknownAddr(ln.network) // never nil, as package net
		}
	}
	if !l.t.connAdd() {
		unix.Close(fd)
		return
	}
	l.stats.Accepted.Add(1)
	l.open(c, false)
}

// open registers c on the loop and runs OnOpen.
func (l *loop) open(c *conn, added bool) {
	if !added {
		l.addConn(c)
	}
	if len(l.fixed) > 0 {
		c.fixed = l.fixed[len(l.fixed)-1]
		l.fixed = l.fixed[:len(l.fixed)-1]
		c.fdBox = c.fd
		s := l.sqe()
		s.OpCode = giouring.OpFilesUpdate
		s.Fd = -1
		s.Addr = uint64(uintptr(unsafe.Pointer(&c.fdBox)))
		s.Len = 1
		s.Off = uint64(c.fixed)
		s.UserData = mkUD(opFiles, 0, c.slot)
		c.inflight++
	}
	c.mu.Lock()
	c.st |= core.InCallback
	if l.t.lim.Idle > 0 {
		c.dl.Opened(l.now()) // the idle clock starts
	}
	c.mu.Unlock()
	if !c.tcp {
		c.armRdhup()
	}
	c.call(core.OnOpen)
	c.opened = true
	if d := c.dialing(); d != nil {
		c.rare.dial = nil
		d.done <- nil
	}
	l.markDirty(c)
}

// peerName returns the peer's address of fd, a TCP socket of family, by
// SO_PEERNAME, which unlike getpeername(2) answers once the connection is
// closed (the kernel reads the address as accept(2) does). The kernel
// wants a length no longer than the address: the family's.
func peerName(fd, family int) (unix.Sockaddr, error) {
	var raw unix.RawSockaddrAny
	var n uint32
	switch family {
	case unix.AF_INET:
		n = unix.SizeofSockaddrInet4
	case unix.AF_INET6:
		n = unix.SizeofSockaddrInet6
	default:
		return nil, syscall.EAFNOSUPPORT
	}
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERNAME, uintptr(unsafe.Pointer(&raw)), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return nil, os.NewSyscallError("getsockopt", e)
	}
	switch raw.Addr.Family {
	case unix.AF_INET:
		r := (*unix.RawSockaddrInet4)(unsafe.Pointer(&raw))
		p := (*[2]byte)(unsafe.Pointer(&r.Port))
		return &unix.SockaddrInet4{Port: int(p[0])<<8 | int(p[1]), Addr: r.Addr}, nil
	case unix.AF_INET6:
		r := (*unix.RawSockaddrInet6)(unsafe.Pointer(&raw))
		p := (*[2]byte)(unsafe.Pointer(&r.Port))
		return &unix.SockaddrInet6{Port: int(p[0])<<8 | int(p[1]), ZoneId: r.Scope_id, Addr: r.Addr}, nil
	}
	return nil, syscall.EAFNOSUPPORT
}

// unknownAddr is the address of a connection whose kernel would not tell
// it: an empty one of network's kind, which, unlike nil, a handler can
// print.
func unknownAddr(network string) net.Addr {
	if network == "unix" {
		return &net.UnixAddr{Net: "unix"}
	}
	return &net.TCPAddr{}
}

// sockaddrToAddr converts a socket address to a net.Addr as package net
// reports it.
func sockaddrToAddr(network string, sa unix.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
	case *unix.SockaddrInet6:
		a := &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a.Zone = ifi.Name
			}
		}
		return a
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}
	}
	return nil
}

// sockaddrOf converts a resolved address to a socket address and family.
func sockaddrOf(network string, a net.Addr) (unix.Sockaddr, int, error) {
	switch a := a.(type) {
	case *net.UnixAddr:
		return &unix.SockaddrUnix{Name: a.Name}, unix.AF_UNIX, nil
	case *net.TCPAddr:
		if ip4 := a.IP.To4(); ip4 != nil && network != "tcp6" {
			sa := &unix.SockaddrInet4{Port: a.Port}
			copy(sa.Addr[:], ip4)
			return sa, unix.AF_INET, nil
		}
		if a.IP == nil && network == "tcp4" {
			return &unix.SockaddrInet4{Port: a.Port}, unix.AF_INET, nil
		}
		sa := &unix.SockaddrInet6{Port: a.Port}
		if a.IP != nil {
			copy(sa.Addr[:], a.IP.To16())
		}
		if a.Zone != "" {
			if ifi, err := net.InterfaceByName(a.Zone); err == nil {
				sa.ZoneId = uint32(ifi.Index)
			}
		}
		return sa, unix.AF_INET6, nil
	}
	return nil, 0, errors.New("uring: unsupported address type")
}

// resolve resolves address for network.
func resolve(network, address string) (net.Addr, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return net.ResolveTCPAddr(network, address)
	case "unix":
		return net.ResolveUnixAddr(network, address)
	}
	return nil, net.UnknownNetworkError(network)
}

// socket makes a non-blocking plain TCP (never MPTCP) or unix stream
// socket.
func socket(family int) (int, error) {
	proto := 0
	if family != unix.AF_UNIX {
		proto = unix.IPPROTO_TCP
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	return fd, nil
}

// listenSocket makes a listening socket bound to sa.
func (t *Transport) listenSocket(network string, sa unix.Sockaddr, family int, reusePort bool) (int, error) {
	fd, err := socket(family)
	if err != nil {
		return -1, err
	}
	fail := func(call string, err error) (int, error) {
		unix.Close(fd)
		return -1, os.NewSyscallError(call, err)
	}
	if family != unix.AF_UNIX {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fail("setsockopt", err)
		}
		if reusePort {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
				return fail("setsockopt", err)
			}
		}
		if family == unix.AF_INET6 {
			v6only := 0
			if network == "tcp6" {
				v6only = 1
			}
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only)
		}
		if t.cfg.NoDelay.Or(true) {
			// Accepted sockets inherit TCP_NODELAY from the listener.
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
				return fail("setsockopt", err)
			}
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if err := unix.Listen(fd, listenBacklog()); err != nil {
		return fail("listen", err)
	}
	return fd, nil
}

// listenBacklog is the kernel's limit (net.core.somaxconn), as Go uses.
var listenBacklog = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	n := 0
	if err == nil {
		for _, ch := range b {
			if ch < '0' || ch > '9' {
				break
			}
			n = n*10 + int(ch-'0')
		}
	}
	if n <= 0 {
		n = unix.SOMAXCONN
	}
	return min(n, 65535)
})

// dialState is a Dial waiting for its connect.
type dialState struct {
	sa         []byte // the raw sockaddr CONNECT reads, off the stack until its completion
	done       chan error
	err        error
	ctxErr     error // the context ended: the connect was cancelled
	connecting bool  // the CONNECT is in the kernel
}

// fail reports a failed dial (the conn's socket is closed by now).
func (d *dialState) fail(c *conn) {
	c.l.t.connDone()
	err := d.err
	if err == nil {
		err = net.ErrClosed
	}
	d.done <- err
}

// onConnect handles the connect's completion.
func (c *conn) onConnect(res int32) {
	d := c.dialing()
	d.connecting = false
	t := c.l.t
	switch {
	case res == -int32(syscall.ECANCELED) && d.ctxErr != nil:
		d.err = c.opError("dial", d.ctxErr)
	case c.dying || t.isClosed():
		// The transport's Close or Shutdown killed c, cancelling the
		// connect (ECANCELED), or began while it connected.
		d.err = c.opError("dial", net.ErrClosed)
	case res < 0:
		d.err = c.opError("dial", os.NewSyscallError("connect", syscall.Errno(-res)))
	}
	if d.err != nil {
		c.dying = true
		c.maybeFinish()
		return
	}
	if sa, err := unix.Getsockname(int(c.fd)); err == nil {
		c.laddr = sockaddrToAddr(c.network(), sa)
	}
	if c.laddr == nil {
		c.laddr = unknownAddr(c.network()) // never nil, as package net
	}
	c.l.stats.Syscalls.Add(1)
	c.l.stats.Dialed.Add(1)
	c.l.open(c, true)
}

// rawSockaddr returns sa as the bytes connect(2) reads.
func rawSockaddr(sa unix.Sockaddr) []byte {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		var r unix.RawSockaddrInet4
		r.Family = unix.AF_INET
		p := (*[2]byte)(unsafe.Pointer(&r.Port))
		p[0], p[1] = byte(sa.Port>>8), byte(sa.Port)
		r.Addr = sa.Addr
		return append([]byte(nil), (*[unix.SizeofSockaddrInet4]byte)(unsafe.Pointer(&r))[:]...)
	case *unix.SockaddrInet6:
		var r unix.RawSockaddrInet6
		r.Family = unix.AF_INET6
		p := (*[2]byte)(unsafe.Pointer(&r.Port))
		p[0], p[1] = byte(sa.Port>>8), byte(sa.Port)
		r.Addr = sa.Addr
		r.Scope_id = sa.ZoneId
		return append([]byte(nil), (*[unix.SizeofSockaddrInet6]byte)(unsafe.Pointer(&r))[:]...)
	case *unix.SockaddrUnix:
		var r unix.RawSockaddrUnix
		r.Family = unix.AF_UNIX
		n := copy(unsafe.Slice((*byte)(unsafe.Pointer(&r.Path[0])), len(r.Path)-1), sa.Name)
		size := 2 + n + 1 // family, path, NUL
		if abstractUnix(sa.Name) {
			// A name in the abstract namespace: a NUL where package net
			// writes '@', and no NUL after it (the length ends it), as
			// unix.Connect and unix.Bind send it.
			r.Path[0] = 0
			size--
		}
		return append([]byte(nil), (*[unix.SizeofSockaddrUnix]byte)(unsafe.Pointer(&r))[:size]...)
	}
	return nil
}

// abstractUnix reports whether a unix socket address names no file but a
// name in Linux's abstract namespace: it begins with '@' (as package net
// writes it) or a NUL.
func abstractUnix(name string) bool {
	return name != "" && (name[0] == '@' || name[0] == 0)
}
