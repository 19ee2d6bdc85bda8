// Command gofloor-epoll is cfloor-epoll's loop written in Go: the least a
// Go program can spend serving echo on epoll, so that what merlin's epoll
// transport costs above the C floor splits into what Go costs (this peer
// above cfloor-epoll) and what the transport adds (libuvlike above this
// peer).
//
// One goroutine, one epoll instance, level-triggered, every system call
// raw (syscall.RawSyscall6: no entersyscall, so the goroutine keeps its P
// while it blocks in epoll_wait, and nothing else runs; the runtime's
// preemption signal ends a wait with EINTR every 10 ms at most). On a
// readable socket it reads once into the loop's one buffer and writes
// back at once; only the rest a socket does not take is kept, and
// EPOLLOUT asked for until it has gone. No allocation per request. It is
// not a floor in merlin bench's sense (cfloor-epoll is the epoll
// mechanism's), and not a transport: no contract, no limits beyond
// cfloor-epoll's.
package main

import (
	"net"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/merlin-net/merlin/peers/internal/peer"
)

const (
	maxEvents = 1024
	readSize  = 65536
	outLimit  = 1 << 20 // stop reading while more than this waits to go out
	outResume = outLimit / 4
)

// conn is one connection, indexed by descriptor.
type conn struct {
	open, eof, paused bool
	events            uint32 // what epoll watches for now
	out               []byte // what the socket has not taken yet
}

// loop is the server: its epoll instance, connections and buffers.
type loop struct {
	ep, lfd int
	conns   []conn
	rbuf    [readSize]byte
	events  [maxEvents]unix.EpollEvent
}

func raw(trap, a1, a2, a3, a4 uintptr) (int, syscall.Errno) {
	r, _, errno := syscall.RawSyscall6(trap, a1, a2, a3, a4, 0, 0)
	return int(r), errno
}

func (l *loop) ctl(op, fd int, events uint32) {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if _, errno := raw(unix.SYS_EPOLL_CTL, uintptr(l.ep), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(&ev))); errno != 0 {
		peer.Fatalf(1, "epoll_ctl: %v", errno)
	}
}

// watch sets what epoll reports for fd, with a system call only on a
// change.
func (l *loop) watch(fd int) {
	c := &l.conns[fd]
	var want uint32
	if !c.eof && !c.paused {
		want = unix.EPOLLIN
	}
	if len(c.out) > 0 {
		want |= unix.EPOLLOUT
	}
	if want != c.events {
		l.ctl(unix.EPOLL_CTL_MOD, fd, want)
		c.events = want
	}
}

func (l *loop) drop(fd int) {
	raw(unix.SYS_CLOSE, uintptr(fd), 0, 0, 0) // also leaves the epoll set
	l.conns[fd] = conn{out: l.conns[fd].out[:0]}
}

func (l *loop) send(fd int, p []byte) (int, syscall.Errno) {
	return raw(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_NOSIGNAL)
}

// flush writes what fd's output holds; it reports whether fd is still
// open.
func (l *loop) flush(fd int) bool {
	c := &l.conns[fd]
	for len(c.out) > 0 {
		n, errno := l.send(fd, c.out)
		if errno == unix.EAGAIN || errno == unix.EINTR {
			break
		}
		if errno != 0 {
			l.drop(fd) // EPIPE, ECONNRESET: the peer is gone
			return false
		}
		c.out = c.out[:copy(c.out, c.out[n:])]
	}
	if len(c.out) == 0 && c.eof {
		l.drop(fd) // all echoed after the peer's FIN
		return false
	}
	if c.paused && len(c.out) <= outResume {
		c.paused = false
	}
	return true
}

// readable reads once and writes what came back at once; with output
// pending, after it.
func (l *loop) readable(fd int) {
	c := &l.conns[fd]
	n, errno := raw(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&l.rbuf[0])), readSize, 0)
	switch {
	case errno == unix.EAGAIN || errno == unix.EINTR:
		return
	case errno != 0:
		l.drop(fd)
		return
	case n == 0: // FIN: level-triggered EOF would be reported forever
		c.eof = true
		if len(c.out) == 0 {
			l.drop(fd)
			return
		}
		l.watch(fd)
		return
	}
	done := 0
	if len(c.out) == 0 {
		w, errno := l.send(fd, l.rbuf[:n])
		if errno != 0 && errno != unix.EAGAIN && errno != unix.EINTR {
			l.drop(fd)
			return
		}
		done = max(w, 0)
	}
	if done < n {
		c.out = append(c.out, l.rbuf[done:n]...)
		c.paused = len(c.out) > outLimit
	}
	l.watch(fd)
}

// accept accepts every pending connection. Out of descriptors it leaves
// the rest in the listener's backlog, and being level-triggered tries
// again at every wait: cfloor-epoll backs off, this peer spins, and
// merlin bench does not run it there.
func (l *loop) accept() {
	for {
		fd, errno := raw(unix.SYS_ACCEPT4, uintptr(l.lfd), 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch errno {
		case 0:
		case unix.EAGAIN, unix.EINTR, unix.ECONNABORTED, unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
			return
		default:
			peer.Fatalf(1, "accept4: %v", errno)
		}
		for fd >= len(l.conns) {
			l.conns = append(l.conns, make([]conn, len(l.conns))...)
		}
		l.conns[fd].open, l.conns[fd].events = true, unix.EPOLLIN
		l.ctl(unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN)
	}
}

func (l *loop) run() {
	for {
		n, errno := raw(unix.SYS_EPOLL_PWAIT, uintptr(l.ep), uintptr(unsafe.Pointer(&l.events[0])), maxEvents, ^uintptr(0))
		if errno == unix.EINTR {
			// A signal: the runtime's preemption, or SIGTERM for the
			// goroutine below. Neither can run while this one holds the
			// P in a raw call, and a goroutine that calls nothing but
			// raw calls never reaches a preemption point: yield.
			runtime.Gosched()
			continue
		}
		if errno != 0 {
			peer.Fatalf(1, "epoll_pwait: %v", errno)
		}
		for i := range n {
			e := &l.events[i]
			fd := int(e.Fd)
			if fd == l.lfd {
				l.accept()
				continue
			}
			if fd >= len(l.conns) || !l.conns[fd].open {
				continue
			}
			if e.Events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
				if !l.flush(fd) {
					continue
				}
				l.watch(fd)
			}
			if e.Events&(unix.EPOLLIN|unix.EPOLLERR|unix.EPOLLHUP) != 0 && l.conns[fd].open && !l.conns[fd].eof && !l.conns[fd].paused {
				l.readable(fd)
			}
		}
	}
}

func main() {
	f := peer.Parse(peer.Info{Name: "gofloor-epoll", Mechanism: peer.Epoll}, nil)
	stopProf := f.StartProfile()

	l := &loop{conns: make([]conn, 1024)}
	var addr net.Addr
	l.lfd, addr = f.ListenRaw(unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC)
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		peer.Fatalf(1, "epoll_create1: %v", err)
	}
	l.ep = ep
	l.ctl(unix.EPOLL_CTL_ADD, l.lfd, unix.EPOLLIN)

	peer.ExitOnSignal(stopProf) // SIGTERM and SIGINT end the peer
	peer.Listening(addr, "gofloor-epoll")
	l.run()
}
