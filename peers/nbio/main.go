// Command nbio is the nbio peer: an echo server on lesismal/nbio's epoll
// pollers (one by default when GOMAXPROCS is 1), OnData writing back what
// it is given.
package main

import (
	"flag"
	"net"
	"os"
	"runtime"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/logging"
	"github.com/merlin-net/merlin/peers/internal/peer"
)

func main() {
	var pollers int
	f := peer.Parse(peer.Info{Name: "nbio", Mechanism: peer.Epoll}, func(fs *flag.FlagSet) {
		fs.IntVar(&pollers, "loops", runtime.GOMAXPROCS(0), "pollers (event loops)")
	})
	logging.Output = os.Stderr // stdout carries the listening line
	stopProf := f.StartProfile()
	defer stopProf()
	addr, err := peer.FreePort(f.Network, f.Addr)
	if err != nil {
		peer.Fatalf(1, "%v", err)
	}
	g := nbio.NewEngine(nbio.Config{
		Network: f.Network,
		Addrs:   []string{addr},
		NPoller: pollers,
	})
	g.OnData(func(c *nbio.Conn, data []byte) { c.Write(data) })
	if err := g.Start(); err != nil {
		peer.Fatalf(1, "%v", err)
	}
	ctx, stop := peer.Signals()
	defer stop()
	peer.Listening(peerAddr(addr), "nbio")
	<-ctx.Done()
	g.Stop()
}

// peerAddr is the address nbio listens on, resolved before it binds.
func peerAddr(addr string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return &net.TCPAddr{}
	}
	return a
}
