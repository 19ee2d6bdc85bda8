// Command netstd is the Go net peer: an echo server on Go's net package
// alone, a goroutine per connection reading into a 32 KiB buffer and
// writing back, no framework. It is the baseline every Go framework is
// measured against. With -app http it is net/http instead, answering GET
// /plaintext with "Hello, World!" (TechEmpower's plaintext test).
package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/merlin-net/merlin/peers/internal/peer"
)

func main() {
	f := peer.Parse("netstd", nil, "echo", "http")
	stopProf := f.StartProfile()
	defer stopProf()

	lc := net.ListenConfig{}
	lc.SetMultipathTCP(false) // plain TCP, as merlin's transports
	ln, err := lc.Listen(context.Background(), f.Network, f.Addr)
	if err != nil {
		peer.Fatalf(1, "%v", err)
	}
	ctx, stop := peer.Signals()
	defer stop()
	if f.App == "http" {
		serveHTTP(ctx, ln)
		return
	}

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Go(func() {
				echo(c)
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			})
		}
	})
	peer.Listening(ln.Addr(), "netstd")
	<-ctx.Done()
	ln.Close()
	mu.Lock()
	for c := range conns {
		c.Close()
	}
	mu.Unlock()
	wg.Wait()
}

func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 32<<10)
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

// serveHTTP serves TechEmpower's plaintext test with net/http until ctx
// ends.
func serveHTTP(ctx context.Context, ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /plaintext", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Server", "netstd")
		io.WriteString(w, "Hello, World!")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		srv.Serve(ln)
		close(done)
	}()
	peer.Listening(ln.Addr(), "netstd")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	<-done
}
