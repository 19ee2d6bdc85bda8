package http1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// netHTTPDiffers names the answerCases on which net/http answers
// differently from the inline Handler, and why; the others must get the
// same status codes, the same bodies for 2xx answers, and the same close.
var netHTTPDiffers = map[string]string{
	"echo-chunked":                 "it refuses a quoted-string chunk extension (400)",
	"leading-empty-lines":          "it closes the connection after a request preceded by empty lines",
	"same-content-length-twice":    "it refuses repeated identical Content-Lengths (RFC 9110 section 8.6 allows either)",
	"content-length-overflow":      "it answers 400, not 413, to a Content-Length past int64",
	"cl-and-te":                    "it drops Content-Length and reads the chunked body",
	"te-final-not-chunked":         "it answers 501 (unknown coding) before checking that chunked is final",
	"te-chunked-twice":             "it accepts chunked twice",
	"te-http10":                    "it reads a chunked body on HTTP/1.0",
	"bare-lf-request-line":         "it accepts a bare LF as a line end (RFC 9112 section 2.2 allows it)",
	"bare-lf-header":               "it accepts a bare LF as a line end (RFC 9112 section 2.2 allows it)",
	"obs-fold":                     "it replaces obs-fold with a space (RFC 9112 section 5.2 allows it)",
	"target-non-ascii":             "it keeps the connection open after refusing the target",
	"chunk-ext-bad":                "it does not check chunk extensions' syntax",
	"chunk-ext-unterminated-quote": "it does not check chunk extensions' syntax",
	"trailer-obs-fold":             "it accepts obs-fold in trailers",
}

// TestNetHTTPParity serves NewServer on a loopback listener and sends each
// answerCase's bytes over a raw connection.
func TestNetHTTPParity(t *testing.T) {
	for _, tc := range answerCases {
		t.Run(tc.name, func(t *testing.T) {
			if why, ok := netHTTPDiffers[tc.name]; ok {
				t.Skip("net/http differs: " + why)
			}
			cfg := tc.cfg
			if tc.cfg.MaxHeaderBytes != 0 {
				t.Skip("net/http's MaxHeaderBytes has 4 KiB of slack; see TestNetHTTPLimits")
			}
			got, closed := netHTTPAnswers(t, cfg, tc.in, tc.methods, len(tc.want))
			want := make([]resp, len(tc.want))
			for i, w := range tc.want {
				if w.Status >= 300 || w.Status < 200 {
					w = resp{Status: w.Status}
				}
				w.Connection = ""
				want[i] = w
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("answers (-inline +net/http):\n%s", diff)
			}
			if closed != tc.closed {
				t.Errorf("closed = %v, want %v", closed, tc.closed)
			}
		})
	}
}

// netHTTPAnswers sends in to a NewServer(cfg) and reads n answers (1xx
// included); for comparison, it keeps only the status of non-2xx ones and
// no Connection header. closed reports whether the server then closed the
// connection: if not, a GET /plaintext sent after must be answered.
func netHTTPAnswers(t *testing.T, cfg Config, in string, methods []string, n int) (got []resp, closed bool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(cfg)
	srv.ErrorLog = nil
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	defer func() {
		srv.Close()
		<-done
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, in); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	final := 0
	for len(got) < n {
		m := http.MethodGet
		if final < len(methods) {
			m = methods[final]
		}
		r, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("answer %d: %v", len(got), err)
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatalf("answer %d body: %v", len(got), err)
		}
		if r.StatusCode >= 200 {
			final++
		}
		if r.StatusCode >= 300 || r.StatusCode < 200 {
			got = append(got, resp{Status: r.StatusCode})
			continue
		}
		got = append(got, resp{
			Status: r.StatusCode, ContentType: r.Header.Get("Content-Type"),
			ContentLength: r.Header.Get("Content-Length"), Allow: r.Header.Get("Allow"),
			Server: r.Header.Get("Server"), Body: string(body),
		})
	}
	// Is the connection still usable? Ask once more. A server that closed
	// gives EOF, or a reset if our bytes reached it after its close.
	if _, err := io.WriteString(c, "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return got, true
	}
	r, err := http.ReadResponse(br, nil)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("no answer and no close within 10 s")
		}
		return got, true
	}
	r.Body.Close()
	return got, false
}

// TestNetHTTPLimits checks NetHTTP's 413 and 431 (the latter well past
// net/http's slack).
func TestNetHTTPLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		in   string
		want int
	}{
		{"body-over-limit", Config{MaxBodyBytes: 4}, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 413},
		{"chunked-over-limit", Config{MaxBodyBytes: 8}, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 413},
		{"plaintext-body-over-limit", Config{MaxBodyBytes: 4}, "POST /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 413},
		{"head-over-limit", Config{MaxHeaderBytes: 1024}, "GET /plaintext HTTP/1.1\r\nHost: x\r\nX: " + string(make([]byte, 8<<10)) + "\r\n\r\n", 431},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if tc.want == 431 {
				in = "GET /plaintext HTTP/1.1\r\nHost: x\r\nX: " + string(repeatByte('a', 8<<10)) + "\r\n\r\n"
			}
			got, closed := netHTTPAnswers(t, tc.cfg, in, nil, 1)
			if diff := cmp.Diff([]resp{{Status: tc.want}}, got); diff != "" {
				t.Errorf("answers (-want +got):\n%s", diff)
			}
			if !closed {
				t.Errorf("connection not closed after %d", tc.want)
			}
		})
	}
}

func repeatByte(c byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return b
}

// TestNewServerTimeouts checks that NewServer carries the headers and
// keep-alive timeouts over to net/http, and turns them off there too.
func TestNewServerTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name             string
		cfg              Config
		readHeader, idle time.Duration
	}{
		{name: "defaults", cfg: Config{}, readHeader: 30 * time.Second, idle: 130 * time.Second},
		{name: "set", cfg: Config{RequestHeadersTimeout: 3 * time.Second, KeepAliveTimeout: 7 * time.Second}, readHeader: 3 * time.Second, idle: 7 * time.Second},
		{name: "off", cfg: Config{RequestHeadersTimeout: -1, KeepAliveTimeout: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := NewServer(tc.cfg)
			if srv.ReadHeaderTimeout != tc.readHeader || srv.IdleTimeout != tc.idle {
				t.Errorf("ReadHeaderTimeout %v, IdleTimeout %v; want %v, %v", srv.ReadHeaderTimeout, srv.IdleTimeout, tc.readHeader, tc.idle)
			}
		})
	}
}
