// Command netstd is the Go net peer: an echo server on Go's net package
// alone, a goroutine per connection reading into a 32 KiB buffer and
// writing back, no framework. It is the baseline every Go framework is
// measured against. With -app http it is net/http instead, serving the
// routes merlin serve -app http serves: /plaintext, /json, /echo. With
// -tls either app runs under crypto/tls, as merlin serve -tls does.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/merlin-net/merlin/peers/internal/peer"
)

func main() {
	f := peer.Parse(peer.Info{Name: "netstd", Apps: []string{"echo", "http"}, Mechanism: peer.Epoll, TLS: true}, nil)
	stopProf := f.StartProfile()
	defer stopProf()

	ln := f.Listen()
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

// serveHTTP serves the http app with net/http until ctx ends: GET
// /plaintext and GET /json (TechEmpower's plaintext and JSON tests), POST
// or PUT /echo (the request body back, at most 1 MiB: larger is 413), 404
// elsewhere; request headers are limited to 8 KiB (larger: 431).
func serveHTTP(ctx context.Context, ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /plaintext", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, peer.HelloWorld)
	})
	mux.HandleFunc("GET /json", func(w http.ResponseWriter, _ *http.Request) {
		b, _ := json.Marshal(struct {
			Message string `json:"message"`
		}{peer.HelloWorld}) // encoded per request, as the test requires
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
	echoBody := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}
	mux.HandleFunc("POST /echo", echoBody)
	mux.HandleFunc("PUT /echo", echoBody)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "netstd")
		mux.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 8 << 10}
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

// maxBody is the largest /echo request body (larger: 413), as merlin's
// http app.
const maxBody = 1 << 20
