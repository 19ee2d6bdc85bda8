// Command fasthttp is the fasthttp peer: github.com/valyala/fasthttp's
// server, a goroutine per connection from a worker pool, with its own
// HTTP/1.1 parser and reused request and response objects. It serves only
// -app http: GET /plaintext and GET /json (TechEmpower's plaintext and
// JSON tests), POST or PUT /echo (the request body back), 404 elsewhere, as
// merlin serve -app http and netstd -app http do; with -tls, over
// crypto/tls (fasthttp serves any net.Listener).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/merlin-net/merlin/peers/internal/peer"
	"github.com/valyala/fasthttp"
)

// maxBody is the largest request body accepted (larger: 413), as merlin's
// http app.
const maxBody = 1 << 20

// message is TechEmpower's JSON test object.
type message struct {
	Message string `json:"message"`
}

func handle(ctx *fasthttp.RequestCtx) {
	path, method := string(ctx.Path()), string(ctx.Method())
	switch {
	case path == "/plaintext" && (method == "GET" || method == "HEAD"):
		ctx.SetContentType("text/plain")
		ctx.SetBodyString(peer.HelloWorld)
	case path == "/json" && (method == "GET" || method == "HEAD"):
		b, _ := json.Marshal(message{Message: peer.HelloWorld}) // encoded per request, as the test requires
		ctx.SetContentType("application/json")
		ctx.SetBody(b)
	case path == "/echo" && (method == "POST" || method == "PUT"):
		ctx.SetContentType("application/octet-stream")
		ctx.SetBody(ctx.PostBody())
	case path == "/plaintext" || path == "/json" || path == "/echo":
		ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
	default:
		ctx.Error("404 page not found", fasthttp.StatusNotFound)
	}
}

// handleError answers a request fasthttp could not read: 413 for a body
// past maxBody (fasthttp's default says 400), 431 for headers past the
// read buffer, 400 otherwise.
func handleError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ctx.Error("request body too large", fasthttp.StatusRequestEntityTooLarge)
	case errors.As(err, &small):
		ctx.Error("request header fields too large", fasthttp.StatusRequestHeaderFieldsTooLarge)
	default:
		ctx.Error("bad request", fasthttp.StatusBadRequest)
	}
}

func main() {
	f := peer.Parse(peer.Info{Name: "fasthttp", Apps: []string{"http"}, Mechanism: peer.Epoll, TLS: true}, nil)
	stopProf := f.StartProfile()
	defer stopProf()

	ln := f.Listen()
	srv := &fasthttp.Server{
		Handler:            handle,
		ErrorHandler:       handleError,
		Name:               "fasthttp",
		MaxRequestBodySize: maxBody,
		ReadTimeout:        time.Minute,
		IdleTimeout:        time.Minute,
		ReadBufferSize:     8 << 10, // the request line and headers: 8 KiB, as merlin's http app
	}
	ctx, stop := peer.Signals()
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	peer.Listening(ln.Addr(), "fasthttp")
	select {
	case <-ctx.Done():
	case err := <-done:
		peer.Fatalf(1, "fasthttp stopped: %v", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.ShutdownWithContext(sctx); err != nil {
		peer.Fatalf(1, "shutdown: %v", err)
	}
	<-done
}
