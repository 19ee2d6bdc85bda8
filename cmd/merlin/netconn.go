package main

import (
	"net"
	"sync"
)

// netConnBuffer is the read buffer of each connection served through the
// net.Conn adapter, as a goroutine-per-connection echo would have.
const netConnBuffer = 32 << 10

// serveNetConn serves echo on nl, a goroutine per connection, until the
// returned function is called; that function closes nl and every
// connection (each flushes its output and sends FIN) and waits for the
// goroutines.
func serveNetConn(nl net.Listener) (stop func()) {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  = map[net.Conn]struct{}{} // guarded by mu
		closed bool                      // guarded by mu
	)
	wg.Go(func() {
		for {
			c, err := nl.Accept()
			if err != nil {
				return // closed: Accept errors are the transport's to retry
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Go(func() {
				echoConn(c)
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			})
		}
	})
	return func() {
		nl.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

// echoConn writes back what it reads until EOF or an error, then closes c.
func echoConn(c net.Conn) {
	defer c.Close()
	buf := make([]byte, netConnBuffer)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
