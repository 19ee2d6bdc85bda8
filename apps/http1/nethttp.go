package http1

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// NetHTTP returns the same routes and limits as an http.Handler for
// net/http: the goroutine-per-connection mode, over the net.Conn adapter
// or a plain net.Listener. Routes match the path as sent (URL.RawPath when
// the client escaped it unusually), as the inline Handler does.
//
// It answers 413 for a body over MaxBodyBytes (by Content-Length at once,
// without a 100 Continue; by reading through http.MaxBytesReader
// otherwise) and asks net/http to close the connection then. The 431 for a
// head over MaxHeaderBytes comes from http.Server.MaxHeaderBytes: serve it
// with NewServer, which sets that. net/http also adds the Date header
// itself (formatted per response: this mode is the baseline, not tuned).
func NetHTTP(cfg Config) http.Handler {
	cfg = cfg.withDefaults()
	return &netHandler{
		cfg:    cfg,
		server: []string{cfg.Server},
	}
}

// NewServer returns an http.Server serving NetHTTP(cfg) with the settings
// it expects: MaxHeaderBytes from cfg (net/http allows 4 KiB of slack over
// it, so its 431 comes a little later than the inline Handler's), and
// OPTIONS * passed to the handler (404) instead of net/http's default
// answer. Its time limits are the nearest net/http has to the inline
// Handler's: ReadHeaderTimeout from RequestHeadersTimeout and IdleTimeout
// from KeepAliveTimeout (off where those are negative). They differ: on a
// new connection net/http runs the headers timeout from the accept, not
// the first byte, and it has no minimum body data rate. Serve it with
// srv.Serve(ln) on any net.Listener.
func NewServer(cfg Config) *http.Server {
	cfg = cfg.withDefaults()
	return &http.Server{
		Handler:                      NetHTTP(cfg),
		MaxHeaderBytes:               cfg.MaxHeaderBytes,
		ReadHeaderTimeout:            max(cfg.RequestHeadersTimeout, 0),
		IdleTimeout:                  max(cfg.KeepAliveTimeout, 0),
		DisableGeneralOptionsHandler: true,
	}
}

type netHandler struct {
	cfg    Config
	server []string
}

var (
	hdrPlain    = []string{typePlain}
	hdrJSON     = []string{typeJSON}
	hdrOctets   = []string{typeOctets}
	hdrText     = []string{typeErrorText}
	hdrHelloLen = []string{strconv.Itoa(len(helloWorld))}
	hdrClose    = []string{"close"}
	bufPool     = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

func (h *netHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr["Server"] = h.server
	path := r.URL.Path
	if r.URL.RawPath != "" {
		path = r.URL.RawPath
	}
	if r.ContentLength > h.cfg.MaxBodyBytes {
		h.error(w, http.StatusRequestEntityTooLarge, "")
		return
	}
	switch path {
	case "/plaintext", "/json":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if h.drain(w, r) {
				h.error(w, http.StatusMethodNotAllowed, allowGetHead)
			}
			return
		}
		if !h.drain(w, r) {
			return
		}
		if path == "/plaintext" {
			hdr["Content-Type"] = hdrPlain
			hdr["Content-Length"] = hdrHelloLen
			io.WriteString(w, helloWorld)
			return
		}
		m := message{Message: helloWorld}
		var buf [64]byte
		body := m.appendJSON(buf[:0])
		hdr["Content-Type"] = hdrJSON
		hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
		w.Write(body)
	case "/echo":
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			if h.drain(w, r) {
				h.error(w, http.StatusMethodNotAllowed, allowPostPut)
			}
			return
		}
		buf := bufPool.Get().(*bytes.Buffer)
		defer bufPool.Put(buf)
		buf.Reset()
		if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)); err != nil {
			h.bodyError(w, err)
			return
		}
		hdr["Content-Type"] = hdrOctets
		hdr["Content-Length"] = []string{strconv.Itoa(buf.Len())}
		w.Write(buf.Bytes())
	default:
		if h.drain(w, r) {
			h.error(w, http.StatusNotFound, "")
		}
	}
}

// drain reads and drops a body the route ignores, within MaxBodyBytes, as
// the inline Handler does. It reports false if it answered an error.
func (h *netHandler) drain(w http.ResponseWriter, r *http.Request) bool {
	if r.ContentLength == 0 {
		return true
	}
	if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)); err != nil {
		h.bodyError(w, err)
		return false
	}
	return true
}

// bodyError answers a body that could not be read: 413 over the limit,
// 400 for a malformed one.
func (h *netHandler) bodyError(w http.ResponseWriter, err error) {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		h.error(w, http.StatusRequestEntityTooLarge, "")
		return
	}
	h.error(w, http.StatusBadRequest, "")
}

// error answers status with the inline Handler's text body. 413 and 400
// close the connection.
func (h *netHandler) error(w http.ResponseWriter, status int, allow string) {
	hdr := w.Header()
	text := http.StatusText(status) + "\n"
	hdr["Content-Type"] = hdrText
	hdr["Content-Length"] = []string{strconv.Itoa(len(text))}
	if allow != "" {
		hdr["Allow"] = []string{allow}
	}
	if status == http.StatusRequestEntityTooLarge || status == http.StatusBadRequest {
		hdr["Connection"] = hdrClose
	}
	w.WriteHeader(status)
	io.WriteString(w, text)
}
