// Command gnet is the gnet v2 peer: an echo server on gnet's event loops
// (epoll, one read buffer per loop), one loop by default when GOMAXPROCS
// is 1. OnTraffic writes back everything it is given; gnet flushes it on
// the loop.
//
// gnet binds its own listener; with -reuseport it sets SO_REUSEPORT, which
// would silently share a port another such server holds, so the port is
// checked free first (and port 0 resolved to a free port).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/merlin-net/merlin/peers/internal/peer"
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

type echoServer struct {
	gnet.BuiltinEventEngine
	booted chan gnet.Engine
}

func (s *echoServer) OnBoot(eng gnet.Engine) gnet.Action {
	s.booted <- eng
	return gnet.None
}

func (s *echoServer) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Next(-1)
	c.Write(buf)
	return gnet.None
}

func main() {
	var loops int
	var reuseport bool
	f := peer.Parse(peer.Info{Name: "gnet", Mechanism: peer.Epoll}, func(fs *flag.FlagSet) {
		fs.IntVar(&loops, "loops", runtime.GOMAXPROCS(0), "event loops")
		fs.BoolVar(&reuseport, "reuseport", false, "one SO_REUSEPORT listener per loop (else one acceptor)")
	})
	stopProf := f.StartProfile()
	defer stopProf()

	addr, err := peer.FreePort(f.Network, f.Addr)
	if err != nil {
		peer.Fatalf(1, "%v", err)
	}
	s := &echoServer{booted: make(chan gnet.Engine, 1)}
	done := make(chan error, 1)
	go func() {
		done <- gnet.Run(s, f.Network+"://"+addr,
			gnet.WithNumEventLoop(loops),
			gnet.WithReusePort(reuseport),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithLogger(stderrLogger{}), // stdout carries the listening line
		)
	}()
	ctx, stop := peer.Signals()
	defer stop()

	var eng gnet.Engine
	select {
	case eng = <-s.booted:
	case err := <-done:
		peer.Fatalf(1, "%v", err)
	}
	la, err := listenAddr(eng)
	if err != nil {
		peer.Fatalf(1, "%v", err)
	}
	peer.Listening(la, "gnet")

	select {
	case <-ctx.Done():
	case err := <-done:
		peer.Fatalf(1, "gnet stopped: %v", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := eng.Stop(sctx); err != nil {
		peer.Fatalf(1, "stop: %v", err)
	}
	<-done
}

// listenAddr returns the address gnet's listener is bound to.
func listenAddr(eng gnet.Engine) (net.Addr, error) {
	fd, err := eng.Dup()
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, err
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}, nil
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}, nil
	}
	return nil, errors.New("gnet's listener is not on TCP")
}

// stderrLogger is gnet's logger: warnings and errors to stderr, the rest
// dropped (gnet's default logs to stdout).
type stderrLogger struct{}

func (stderrLogger) Debugf(string, ...any) {}
func (stderrLogger) Infof(string, ...any)  {}
func (stderrLogger) Warnf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "gnet: warning: "+format+"\n", a...)
}
func (stderrLogger) Errorf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "gnet: error: "+format+"\n", a...)
}
func (stderrLogger) Fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "gnet: fatal: "+format+"\n", a...)
	os.Exit(1)
}
