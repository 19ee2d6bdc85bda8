package cli

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/merlin-net/merlin/apps/http1"
)

// netConnBuffer is the read buffer of each connection served through the
// net.Conn adapter, as a goroutine-per-connection echo would have.
const netConnBuffer = 32 << 10

// serveNetConn serves echo on nl, a goroutine per connection, until the
// returned function is called; that function closes nl and every
// connection (each flushes its output and sends FIN), waits for the
// goroutines, and returns nil.
func serveNetConn(nl net.Listener) (stop func(context.Context) error) {
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
	return func(context.Context) error {
		nl.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
		return nil
	}
}

// netHTTPServer returns the net/http server of the http app
// (http1.NewServer), logging its errors (a client's failed TLS handshake,
// say) through log.
func netHTTPServer(log *slog.Logger) *http.Server {
	srv := http1.NewServer(http1.Config{})
	if srv.ErrorLog == nil {
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelInfo)
	}
	return srv
}

// serveHTTP serves srv on nl until the returned function is called; that
// function shuts srv down gracefully (stops accepting, closes idle
// connections, waits for the others to finish their requests) until its
// context ends, then closes what is left and returns the context's error.
func serveHTTP(nl net.Listener, srv *http.Server) (stop func(context.Context) error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(nl) // returns http.ErrServerClosed once stop begins
	}()
	return func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		if err != nil {
			srv.Close()
		}
		<-done
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		return err
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
