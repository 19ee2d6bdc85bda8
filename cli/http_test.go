package cli

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/merlin-net/merlin/internal/selfsigned"
	"github.com/merlin-net/merlin/transports"
)

// These tests check `merlin serve -app http` with real clients that share
// no code with it: Go's net/http client, curl, wrk (pipelined) and nginx
// as a reverse proxy with keep-alive upstream connections over TCP and a
// unix socket; and HTTPS (-tls) with Go's client and curl. They run on
// every transport, inline (http1.New on the loop) and behind the net.Conn
// adapter (-netconn: net/http serving http1.NetHTTP).

// required reports whether MERLIN_REQUIRE is set: then a transport it
// lists that this host cannot run, or a missing tool, fails instead of
// skipping.
func required() string { return os.Getenv("MERLIN_REQUIRE") }

// httpTransports returns the registered transports this host runs; a
// transport MERLIN_REQUIRE lists that is not available fails t.
func httpTransports(t *testing.T) []string {
	t.Helper()
	need := strings.Split(required(), ",")
	var names []string
	for _, d := range transports.Drivers() {
		if _, err := d.Probe(); err != nil {
			if slices.Contains(need, d.Name) {
				t.Errorf("transport %s is required here (MERLIN_REQUIRE) but not available: %v", d.Name, err)
			}
			continue
		}
		names = append(names, d.Name)
	}
	if len(names) == 0 {
		t.Fatal("no transport is available")
	}
	return names
}

// tool returns the path of a command the test needs. A missing one skips
// the test, or fails it where MERLIN_REQUIRE is set (CI installs it).
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if required() != "" {
			t.Fatalf("%s is not in PATH (%v), and MERLIN_REQUIRE is set: install it (.ci/run does)", name, err)
		}
		t.Skipf("%s is not in PATH: %v", name, err)
	}
	return p
}

// httpModes are where the http app runs: inline on the transport's loop,
// or behind the net.Conn adapter under net/http.
var httpModes = []struct {
	name string
	args []string
}{
	{"inline", nil},
	{"netconn", []string{"-netconn"}},
}

// Real clients against merlin serve -app http on every transport, in both
// modes.
func TestServeHTTPClients(t *testing.T) {
	for _, tr := range httpTransports(t) {
		for _, mode := range httpModes {
			t.Run("transport="+tr+"/mode="+mode.name, func(t *testing.T) {
				args := append([]string{"-transport", tr, "-app", "http", "-addr", "127.0.0.1:0"}, mode.args...)
				s := startServe(t, nil, args...)
				base := "http://" + s.addr
				t.Run("net-http", func(t *testing.T) { goClientChecks(t, base, nil) })
				t.Run("curl", func(t *testing.T) { curlChecks(t, base, nil) })
				t.Run("wrk", func(t *testing.T) { wrkPipelined(t, base) })
				t.Run("merlin-load", func(t *testing.T) { loadHTTP(t, s.addr) })
				t.Run("nginx", func(t *testing.T) { nginxProxy(t, tr, mode.args) })
				if status := s.stop(t, syscall.SIGTERM); status != 0 {
					t.Fatalf("exit status %d after SIGTERM, want 0\nstderr:\n%s", status, s.stderr)
				}
			})
		}
	}
}

// reply is what a check compares of a response.
type reply struct {
	Status        int
	Proto         string
	ContentType   string
	ContentLength string
	Server        string
	Allow         string
	Body          string
}

// pieces is a reader that returns at most n bytes per Read, so that a
// chunked request has many chunks.
type pieces struct {
	r io.Reader
	n int
}

func (p *pieces) Read(b []byte) (int, error) { return p.r.Read(b[:min(len(b), p.n)]) }

// httpClient returns a keep-alive client that waits for 100 Continue and
// trusts roots (nil: the system's).
func httpClient(t *testing.T, roots *x509.CertPool) *http.Client {
	t.Helper()
	tr := &http.Transport{
		MaxIdleConnsPerHost:   16,
		DisableCompression:    true,
		ExpectContinueTimeout: ioTimeout, // a body waits for the server's 100 Continue
		ResponseHeaderTimeout: ioTimeout,
		TLSClientConfig:       &tls.Config{RootCAs: roots},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: ioTimeout}
}

// do makes one request (chunked: a body of unknown length, sent in chunks
// of 1000 bytes; header: name, value pairs) and returns the reply, with
// the body whole.
func do(c *http.Client, method, url string, body []byte, chunked bool, header ...string) (reply, *http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
		if chunked {
			rd = &pieces{rd, 1000}
		}
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return reply{}, nil, err
	}
	if chunked {
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, nil, fmt.Errorf("%s %s: reading the body: %w", method, url, err)
	}
	h := resp.Header
	return reply{
		Status: resp.StatusCode, Proto: resp.Proto, ContentType: h.Get("Content-Type"),
		ContentLength: h.Get("Content-Length"), Server: h.Get("Server"), Allow: h.Get("Allow"), Body: string(b),
	}, resp, nil
}

// The replies the http app gives.
var (
	plaintextReply = reply{Status: 200, Proto: "HTTP/1.1", ContentType: "text/plain", ContentLength: "13", Server: "merlin", Body: "Hello, World!"}
	jsonReply      = reply{Status: 200, Proto: "HTTP/1.1", ContentType: "application/json", ContentLength: "27", Server: "merlin", Body: `{"message":"Hello, World!"}`}
)

func echoReply(body []byte) reply {
	return reply{Status: 200, Proto: "HTTP/1.1", ContentType: "application/octet-stream", ContentLength: strconv.Itoa(len(body)), Server: "merlin", Body: string(body)}
}

// mixedRequest sends request i of a sequence that takes the routes under
// prefix in turn: GET /plaintext, GET /json, POST /echo of body (chunked
// if asked). It returns the reply expected and the reply got.
func mixedRequest(c *http.Client, prefix string, i int, body []byte, chunked bool) (want, got reply, err error) {
	switch i % 3 {
	case 0:
		want = plaintextReply
		got, _, err = do(c, "GET", prefix+"/plaintext", nil, false)
	case 1:
		want = jsonReply
		got, _, err = do(c, "GET", prefix+"/json", nil, false)
	default:
		want = echoReply(body)
		got, _, err = do(c, "POST", prefix+"/echo", body, chunked)
	}
	return want, got, err
}

// replyError says what is wrong with a reply: err, or how got differs
// from want; "" if nothing.
func replyError(want, got reply, err error) string {
	if err != nil {
		return err.Error()
	}
	return diffReply(want, got)
}

// diffReply returns "" if got is want, else what differs; a long body is
// reported by the offset of its first difference.
func diffReply(want, got reply) string {
	if len(want.Body) > 64 || len(got.Body) > 64 {
		wb, gb := want.Body, got.Body
		want.Body, got.Body = "", ""
		if d := cmp.Diff(want, got); d != "" {
			return d
		}
		if wb != gb {
			if len(wb) != len(gb) {
				return fmt.Sprintf("body of %d bytes, want %d", len(gb), len(wb))
			}
			i := firstDiff([]byte(wb), []byte(gb))
			return fmt.Sprintf("body differs at byte %d: want %#02x, got %#02x", i, wb[i], gb[i])
		}
		return ""
	}
	return cmp.Diff(want, got)
}

// goClientChecks runs Go's net/http client against base: routes, headers
// and bodies exact, keep-alive, concurrency, Content-Length and chunked
// POST bodies, 100-continue, the error statuses.
func goClientChecks(t *testing.T, base string, roots *x509.CertPool) {
	c := httpClient(t, roots)
	check := func(name string, want reply, method, path string, body []byte, chunked bool, header ...string) {
		t.Helper()
		got, _, err := do(c, method, base+path, body, chunked, header...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := diffReply(want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", name, d)
		}
	}

	// Sequential requests share one keep-alive connection.
	var dials atomic.Int32
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			dials.Add(1)
		}
	}}
	for i := range 100 {
		path, want := "/plaintext", plaintextReply
		if i%2 == 1 {
			path, want = "/json", jsonReply
		}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", base+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("request %d: GET %s: %v", i, path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("request %d: GET %s: reading the body: %v", i, path, err)
		}
		if resp.StatusCode != 200 || string(b) != want.Body {
			t.Fatalf("request %d: GET %s: %d %q, want 200 %q", i, path, resp.StatusCode, b, want.Body)
		}
		if d := resp.Header.Get("Date"); d == "" {
			t.Fatalf("request %d: no Date header", i)
		} else if _, err := http.ParseTime(d); err != nil {
			t.Fatalf("request %d: Date %q: %v", i, d, err)
		}
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("100 sequential requests made %d connections, want 1 (keep-alive)", n)
	}

	check("GET /plaintext", plaintextReply, "GET", "/plaintext", nil, false)
	check("GET /json", jsonReply, "GET", "/json", nil, false)
	head := plaintextReply
	head.Body = ""
	check("HEAD /plaintext", head, "HEAD", "/plaintext", nil, false)
	for _, n := range []int{0, 1, 1000, 64 << 10, 1 << 20} {
		body := payload(n)
		check(fmt.Sprintf("POST /echo of %d bytes", n), echoReply(body), "POST", "/echo", body, false)
	}
	for _, n := range []int{1, 1000, 100 << 10, 1 << 20} {
		body := payload(n)
		check(fmt.Sprintf("POST /echo of %d bytes, chunked", n), echoReply(body), "POST", "/echo", body, true)
	}
	big := payload(300 << 10)
	check("PUT /echo with Expect: 100-continue", echoReply(big), "PUT", "/echo", big, false, "Expect", "100-continue")

	// Errors: the body texts are the server's own.
	status := func(name string, want reply, method, path string, body []byte, header ...string) {
		t.Helper()
		got, _, err := do(c, method, base+path, body, false, header...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got.Body, got.ContentType, got.ContentLength, got.Proto, got.Server = "", "", "", "", ""
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", name, d)
		}
	}
	status("GET /nope", reply{Status: 404}, "GET", "/nope", nil)
	status("GET /echo", reply{Status: 405, Allow: "POST, PUT"}, "GET", "/echo", nil)
	status("POST /plaintext", reply{Status: 405, Allow: "GET, HEAD"}, "POST", "/plaintext", []byte("x"))
	// With Expect: 100-continue the refused body is never sent, so the
	// 413 does not race the client's write of it.
	status("POST /echo of 1 MiB + 1", reply{Status: 413}, "POST", "/echo", payload(1<<20+1), "Expect", "100-continue")
	status("GET with a head over 8 KiB", reply{Status: 431}, "GET", "/plaintext", nil, "X-Big", strings.Repeat("x", 16<<10))

	// Concurrent clients, each on its own keep-alive connection.
	const workers, each = 8, 25
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []string
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				body := []byte(fmt.Sprintf("worker %d request %d %s", w, i, strings.Repeat("z", w*100+i)))
				want, got, err := mixedRequest(c, base, i, body, i%2 == 0)
				if d := replyError(want, got, err); d != "" {
					mu.Lock()
					errs = append(errs, fmt.Sprintf("worker %d request %d: %s", w, i, d))
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	for _, e := range errs {
		t.Error(e)
	}
}

// curl runs curl with args within a deadline.
func curl(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, 30*time.Second, append([]string{tool(t, "curl"), "-sS", "--max-time", "20"}, args...)...)
}

// curlChecks runs curl against base: two GETs on one connection, HTTP/1.0,
// POST bodies over 1 KiB with Expect: 100-continue (Content-Length and
// chunked), 404. cacert, if set, is the certificate to trust.
func curlChecks(t *testing.T, base string, cacert []string) {
	tool(t, "curl")
	with := func(a ...string) []string { return slices.Concat(cacert, a) }
	// Two URLs in one run share the connection: num_connects is 0 for
	// the second.
	w := []string{"-w", "\n%{http_code} %{http_version} %{num_connects}\n"}
	r := curl(t, with(append(w, base+"/plaintext", base+"/json")...)...)
	want := "Hello, World!\n200 1.1 1\n" + `{"message":"Hello, World!"}` + "\n200 1.1 0\n"
	if r.status != 0 || r.stdout != want {
		t.Errorf("curl GET /plaintext /json: exit status %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", r.status, r.stdout, want, r.stderr)
	}

	r = curl(t, with("--http1.0", "-w", "\n%{http_code}\n", base+"/json")...)
	if want := `{"message":"Hello, World!"}` + "\n200\n"; r.status != 0 || r.stdout != want {
		t.Errorf("curl --http1.0 GET /json: exit status %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", r.status, r.stdout, want, r.stderr)
	}

	body := payload(3000)
	file := filepath.Join(t.TempDir(), "body")
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, te := range []string{"", "chunked"} {
		// curl sends a body only after the server's 100 Continue, or
		// after --expect100-timeout: waiting longer than the test
		// would, it fails on a server that never sends it.
		args := with("-v", "--expect100-timeout", "30", "-H", "Expect: 100-continue",
			"-H", "Content-Type: application/octet-stream", "--data-binary", "@"+file, base+"/echo")
		if te != "" {
			args = append(args, "-H", "Transfer-Encoding: "+te)
		}
		r := curl(t, args...)
		if r.status != 0 || r.stdout != string(body) {
			t.Errorf("curl POST /echo of %d bytes %s: exit status %d, %d bytes back\nstderr:\n%s", len(body), te, r.status, len(r.stdout), r.stderr)
		}
		if !strings.Contains(r.stderr, "< HTTP/1.1 100 Continue") {
			t.Errorf("curl POST /echo %s with Expect: 100-continue: no 100 Continue\nstderr:\n%s", te, r.stderr)
		}
	}

	r = curl(t, with("-o", "/dev/null", "-w", "%{http_code}", base+"/nope")...)
	if r.status != 0 || r.stdout != "404" {
		t.Errorf("curl GET /nope: exit status %d, stdout %q, want 404\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
}

// wrkPipelined runs wrk with testdata/pipeline.lua: 16 requests per write
// on 4 connections for a second; every response must be 2xx and no socket
// error may occur.
func wrkPipelined(t *testing.T, base string) {
	wrk := tool(t, "wrk")
	script, err := filepath.Abs(filepath.Join("testdata", "pipeline.lua"))
	if err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, time.Minute, wrk, "-t1", "-c4", "-d1s", "--timeout", "10s", "-s", script, base, "--", "16")
	if r.status != 0 {
		t.Fatalf("wrk: exit status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	m := regexp.MustCompile(`(\d+) requests in `).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no \"N requests in\" line in wrk's output:\n%s", r.stdout)
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Errorf("wrk completed no request:\n%s", r.stdout)
	}
	for _, bad := range []string{"Socket errors", "Non-2xx"} {
		if strings.Contains(r.stdout, bad) {
			t.Errorf("wrk reports %s:\n%s", bad, r.stdout)
		}
	}
	t.Logf("wrk: %s requests in 1 s, 16 per write on 4 connections", m[1])
}

// loadHTTP runs merlin load -app http against addr: pipelined GETs of
// /plaintext and /json, and POSTs of 100 KiB to /echo, every response
// checked.
func loadHTTP(t *testing.T, addr string) {
	for _, args := range [][]string{
		{"-path", "/plaintext", "-conns", "4", "-depth", "16"},
		{"-path", "/json", "-conns", "4", "-depth", "16"},
		{"-path", "/echo", "-conns", "2", "-depth", "4", "-size", "100k"},
	} {
		r := merlin(t, append([]string{"load", "-app", "http", "-addr", addr, "-duration", "300ms"}, args...)...)
		if r.status != 0 || !strings.Contains(r.stdout, "errors: 0") {
			t.Errorf("merlin load %v: exit status %d\nstdout:\n%s\nstderr:\n%s", args, r.status, r.stdout, r.stderr)
		}
	}
}

// nginx is a running nginx.
type nginx struct {
	cmd    *exec.Cmd
	dir    string
	addr   string // 127.0.0.1:port
	stderr *syncBuffer
	done   chan struct{}
}

const nginxConf = `worker_processes 1;
error_log {{DIR}}/error.log info;
error_log stderr notice;
{{USER}}
events { worker_connections 1024; }
http {
	access_log {{DIR}}/access.log;
	client_body_temp_path {{DIR}}/body;
	proxy_temp_path {{DIR}}/proxy;
	fastcgi_temp_path {{DIR}}/fastcgi;
	uwsgi_temp_path {{DIR}}/uwsgi;
	scgi_temp_path {{DIR}}/scgi;
	upstream merlin_tcp {
		server {{TCP}};
		keepalive 16;
	}
	upstream merlin_unix {
		server unix:{{UNIX}};
		keepalive 16;
	}
	server {
		listen {{ADDR}};
		location /tcp/ {
			proxy_pass http://merlin_tcp/;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
		location /unix/ {
			proxy_pass http://merlin_unix/;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
`

// startNginx starts nginx as a reverse proxy to merlin at tcpAddr
// (/tcp/...) and at the unix socket unixPath (/unix/...), with keep-alive
// upstream connections, on a free port of 127.0.0.1. It is stopped
// (SIGQUIT, then waited for) at cleanup, or earlier by stop.
func startNginx(t *testing.T, tcpAddr, unixPath string) *nginx {
	t.Helper()
	bin := tool(t, "nginx")
	dir := t.TempDir()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // the workers reach the unix socket in a 0700 directory
	}
	for attempt := 0; ; attempt++ {
		// A free port: bind :0 and close. Another process may take it
		// before nginx binds it; then try another.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		conf := strings.NewReplacer("{{DIR}}", dir, "{{USER}}", user, "{{TCP}}", tcpAddr, "{{UNIX}}", unixPath, "{{ADDR}}", addr).Replace(nginxConf)
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		n := &nginx{dir: dir, addr: addr, stderr: &syncBuffer{}, done: make(chan struct{})}
		n.cmd = exec.Command(bin, "-e", "stderr", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"),
			"-g", "daemon off; master_process on; pid "+filepath.Join(dir, "nginx.pid")+";")
		n.cmd.Stdout, n.cmd.Stderr = n.stderr, n.stderr
		// Its own process group, so that a kill reaches the workers too
		// (an orphaned worker would hold the stderr pipe open).
		n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := n.cmd.Start(); err != nil {
			t.Fatalf("starting nginx: %v", err)
		}
		go func() {
			n.cmd.Wait()
			close(n.done)
		}()
		t.Cleanup(func() { n.stop(t) })
		// "start worker process" is logged once the listening socket
		// is bound and the worker forked.
		switch waitForAny(n.stderr, []string{"start worker process", "Address already in use"}, n.done, startTimeout) {
		case 0:
			return n
		case 1:
			n.stop(t)
			if attempt < 5 {
				continue
			}
		}
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.done
		t.Fatalf("nginx did not start\nconfig:\n%s\nstderr:\n%s", conf, n.stderr)
	}
}

// stop stops nginx gracefully (SIGQUIT) and waits for it to exit.
func (n *nginx) stop(t *testing.T) {
	select {
	case <-n.done:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-n.done:
	case <-time.After(exitTimeout):
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.done
		log, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
		t.Errorf("nginx did not exit within %v of SIGQUIT; its error log:\n%s", exitTimeout, log)
	}
}

// errorLog returns the lines of nginx's error log at level error or worse.
func (n *nginx) errorLog(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.dir, "error.log"))
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for _, l := range strings.Split(string(b), "\n") {
		for _, lvl := range []string{"[error]", "[crit]", "[alert]", "[emerg]"} {
			if strings.Contains(l, lvl) {
				bad = append(bad, l)
			}
		}
	}
	return bad
}

// nginxProxy puts nginx in front of two merlin servers of transport tr
// (extra: the mode's flags), one on TCP and one on a unix socket, and
// sends requests through it with some concurrency: every response must be
// right, none a 502, nginx must log no error, and the upstream
// connections must be kept alive (a few, not one per request).
func nginxProxy(t *testing.T, tr string, extra []string) {
	tool(t, "nginx")
	dir, err := os.MkdirTemp("", "merlin") // short: socket paths have 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s")
	common := append([]string{"-transport", tr, "-app", "http", "-stats"}, extra...)
	st := startServe(t, nil, append(common, "-addr", "127.0.0.1:0")...)
	su := startServe(t, nil, append(common, "-network", "unix", "-addr", path)...)
	n := startNginx(t, st.addr, path)
	base := "http://" + n.addr

	const workers, each = 8, 125 // 1000 requests per upstream, 2000 in all
	c := httpClient(t, nil)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []string
		status = map[int]int{}
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				up := []string{"/tcp", "/unix"}[(w+i)%2]
				body := []byte(fmt.Sprintf("worker %d request %d via %s %s", w, i, up, strings.Repeat("n", 50*i)))
				want, got, err := mixedRequest(c, base+up, i, body, false)
				// nginx's own headers replace these.
				want.Server, got.Server = "", ""
				mu.Lock()
				status[got.Status]++
				mu.Unlock()
				if d := replyError(want, got, err); d != "" {
					mu.Lock()
					errs = append(errs, fmt.Sprintf("worker %d request %d via %s: %s", w, i, up, d))
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	for _, e := range errs {
		t.Error(e)
	}
	if status[502] > 0 || status[200] != workers*each {
		t.Errorf("statuses through nginx: %v, want %d x 200 and no 502", status, workers*each)
	}
	// A graceful nginx waits for its client connections that never
	// carried a request (the client may have dialed one more than it
	// used) until client_header_timeout: close them first.
	c.CloseIdleConnections()
	n.stop(t)
	if bad := n.errorLog(t); len(bad) > 0 {
		t.Errorf("nginx's error log has errors:\n%s", strings.Join(bad, "\n"))
	}
	for _, s := range []*server{st, su} {
		if status := s.stop(t, syscall.SIGTERM); status != 0 {
			t.Fatalf("merlin serve on %s: exit status %d after SIGTERM, want 0\nstderr:\n%s", s.network, status, s.stderr)
		}
		// nginx keeps at most 16 idle upstream connections and opens
		// more only for concurrent requests (8 here).
		if a := statsOf(t, s.stdout.String())["accepted"]; a == 0 || a > 64 {
			t.Errorf("merlin serve on %s accepted %d connections for %d requests: want a few (nginx's keep-alive upstream connections)", s.network, a, workers*each/2)
		}
	}
}

// HTTPS: merlin serve -app http -tls, with the certificate it generates,
// on every transport, checked with Go's client (trusting the printed
// certificate) and curl --cacert.
func TestServeHTTPS(t *testing.T) {
	for _, tr := range httpTransports(t) {
		t.Run("transport="+tr, func(t *testing.T) {
			s := startServe(t, nil, "-transport", tr, "-app", "http", "-tls", "-addr", "127.0.0.1:0")
			certPath, fp := tlsLine(t, s)
			pemBytes, err := os.ReadFile(certPath)
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pemBytes) {
				t.Fatalf("%s holds no PEM certificate:\n%s", certPath, pemBytes)
			}
			base := "https://" + s.addr

			// The certificate served is the one printed.
			c := httpClient(t, roots)
			got, resp, err := do(c, "GET", base+"/plaintext", nil, false)
			if err != nil {
				t.Fatal(err)
			}
			if d := diffReply(plaintextReply, got); d != "" {
				t.Errorf("GET /plaintext over TLS (-want +got):\n%s", d)
			}
			if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
				t.Fatal("the response came without TLS")
			}
			if sum := fingerprint(resp.TLS.PeerCertificates[0].Raw); sum != fp {
				t.Errorf("the server's certificate has SHA-256 %s; the printed one %s", sum, fp)
			}
			if p := resp.TLS.NegotiatedProtocol; p != "" && p != "http/1.1" {
				t.Errorf("ALPN negotiated %q, want http/1.1", p)
			}

			t.Run("net-http", func(t *testing.T) { goClientChecks(t, base, roots) })
			t.Run("curl", func(t *testing.T) { curlChecks(t, base, []string{"--cacert", certPath}) })
			// The names of the certificate, and a client that does not
			// trust it.
			t.Run("curl-localhost", func(t *testing.T) {
				port := s.addr[strings.LastIndexByte(s.addr, ':')+1:]
				r := curl(t, "--cacert", certPath, "--resolve", "localhost:"+port+":127.0.0.1", "https://localhost:"+port+"/json")
				if r.status != 0 || r.stdout != `{"message":"Hello, World!"}` {
					t.Errorf("curl https://localhost: exit status %d, stdout %q\nstderr:\n%s", r.status, r.stdout, r.stderr)
				}
				r = curl(t, base+"/plaintext")
				if r.status != 60 { // CURLE_PEER_FAILED_VERIFICATION
					t.Errorf("curl without --cacert: exit status %d, want 60 (certificate not trusted)\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
				}
			})

			if status := s.stop(t, syscall.SIGTERM); status != 0 {
				t.Fatalf("exit status %d after SIGTERM, want 0\nstderr:\n%s", status, s.stderr)
			}
			if _, err := os.Stat(certPath); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("generated certificate after exit: %v, want it removed", err)
			}
		})
	}
}

var tlsLineRE = regexp.MustCompile(`\ntls certificate (\S+) sha256 ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})\n`)

// tlsLine returns the certificate file and fingerprint serve -tls prints
// after its listening line.
func tlsLine(t *testing.T, s *server) (path, fingerprint string) {
	t.Helper()
	if !s.stdout.waitFor("\ntls certificate ", ioTimeout) {
		t.Fatalf("no \"tls certificate\" line:\n%s", s.stdout)
	}
	m := tlsLineRE.FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("the tls line is not \"tls certificate PATH sha256 FINGERPRINT\":\n%s", s.stdout)
	}
	return m[1], m[2]
}

// fingerprint formats the SHA-256 of der as serve prints it.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// -tls flags: -tls-cert and -tls-key need -tls and each other; files that
// do not load fail; given files are served (and kept at exit); echo runs
// over TLS too.
func TestServeTLSFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		want   string
	}{
		{"cert-without-tls", []string{"-tls-cert", "c.pem", "-tls-key", "k.pem"}, 2, "need -tls"},
		{"cert-without-key", []string{"-tls", "-tls-cert", "c.pem"}, 2, "go together"},
		{"missing-files", []string{"-tls", "-tls-cert", filepath.Join(dir, "none.pem"), "-tls-key", filepath.Join(dir, "none.key")}, 1, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := merlin(t, append([]string{"serve", "-transport", "sockets", "-addr", "127.0.0.1:0"}, tc.args...)...)
			if r.status != tc.status || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit status %d, want %d with %q\nstderr:\n%s", r.status, tc.status, tc.want, r.stderr)
			}
		})
	}

	t.Run("given-cert-echo", func(t *testing.T) {
		certPEM, keyPEM, err := selfsigned.New(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if err := os.WriteFile(cert, certPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		s := startServe(t, nil, "-transport", "sockets", "-app", "echo", "-tls", "-tls-cert", cert, "-tls-key", key, "-addr", "127.0.0.1:0")
		path, _ := tlsLine(t, s)
		if path != cert {
			t.Errorf("tls line names %s, want the given %s", path, cert)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(certPEM)
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: ioTimeout}, Config: &tls.Config{RootCAs: roots, ServerName: "localhost"}}
		c, err := d.DialContext(t.Context(), "tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		msg := payload(100 << 10)
		c.SetDeadline(time.Now().Add(ioTimeout))
		werr := make(chan error, 1)
		go func() {
			_, err := c.Write(msg)
			werr <- err
		}()
		got := make([]byte, len(msg))
		if n, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("read of the echo over TLS: %d of %d bytes, then %v", n, len(msg), err)
		}
		if err := <-werr; err != nil {
			t.Fatal(err)
		}
		if i := firstDiff(msg, got); i >= 0 {
			t.Fatalf("echo over TLS differs at byte %d", i)
		}
		c.Close()
		if status := s.stop(t, syscall.SIGTERM); status != 0 {
			t.Fatalf("exit status %d after SIGTERM, want 0\nstderr:\n%s", status, s.stderr)
		}
		if _, err := os.Stat(cert); err != nil {
			t.Errorf("the given certificate after exit: %v, want it kept", err)
		}
	})
}
