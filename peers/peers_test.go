package peers

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// peerNames are the peers built: Go peers (main.go) and C peers (main.c).
// echoPeers serve -app echo, httpPeers -app http (the routes of merlin
// serve -app http), tePeers only TechEmpower's /plaintext and /json of
// them; uringPeers wait on io_uring (the others on epoll);
// floorPeers are floors; cPeers are the C ones, graded with merlin load
// -check; tlsPeers serve over TLS with -tls.
var (
	peerNames  = []string{"netstd", "gnet", "nbio", "fasthttp", "nginx", "cfloor-uring", "cfloor-epoll", "gofloor-epoll", "gofloor-uring", "libuv"}
	echoPeers  = []string{"netstd", "gnet", "nbio", "cfloor-uring", "cfloor-epoll", "gofloor-epoll", "gofloor-uring", "libuv"}
	httpPeers  = []string{"netstd", "fasthttp"}
	tePeers    = []string{"nginx"}
	tlsPeers   = []string{"netstd", "fasthttp"}
	uringPeers = []string{"cfloor-uring", "gofloor-uring"}
	floorPeers = []string{"nginx", "cfloor-uring", "cfloor-epoll"}
	cPeers     = []string{"cfloor-uring", "cfloor-epoll", "libuv"}
	// loopPeers are the single-loop echo servers read against the
	// floors: the C floors, their Go twins and libuv; graded with merlin
	// load -check, and bounded in what they buffer.
	loopPeers = []string{"cfloor-uring", "cfloor-epoll", "gofloor-epoll", "gofloor-uring", "libuv"}
)

var binDir struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir.dir != "" {
		os.RemoveAll(binDir.dir)
	}
	os.Exit(code)
}

// build builds the peers, once for every test, into a temporary directory,
// as merlin bench's BuildPeers does: go build for a Go peer; for a C peer
// $CC (else cc) -O2 -Wall -Werror -o BIN main.c and the flags of its first
// line ("// cflags: -luring").
func build(t *testing.T) string {
	t.Helper()
	binDir.once.Do(func() {
		binDir.dir, binDir.err = os.MkdirTemp("", "merlin-peers-")
		if binDir.err != nil {
			return
		}
		args := []string{"build", "-o", binDir.dir + string(filepath.Separator)}
		for _, n := range peerNames {
			if !slices.Contains(cPeers, n) {
				args = append(args, "./"+n)
			}
		}
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			binDir.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		for _, n := range cPeers {
			if binDir.err = buildC(n, filepath.Join(binDir.dir, n)); binDir.err != nil {
				return
			}
		}
	})
	if binDir.err != nil {
		t.Fatal(binDir.err)
	}
	return binDir.dir
}

// buildC compiles the C peer in dir into bin.
func buildC(dir, bin string) error {
	src, err := os.ReadFile(filepath.Join(dir, "main.c"))
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(string(src), "\n")
	flags, _ := strings.CutPrefix(strings.TrimSpace(first), "// cflags:")
	if flags == strings.TrimSpace(first) {
		flags = ""
	}
	cc := strings.Fields(os.Getenv("CC"))
	if len(cc) == 0 {
		cc = []string{"cc"}
	}
	bin, err = filepath.Abs(bin)
	if err != nil {
		return err
	}
	args := append(append(cc[1:len(cc):len(cc)], "-O2", "-Wall", "-Werror", "-o", bin, "main.c"), strings.Fields(flags)...)
	cmd := exec.Command(cc[0], args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s (in %s): %v (the C peers need gcc, liburing-dev and libuv1-dev)\n%s", strings.Join(cmd.Args, " "), dir, err, out)
	}
	return nil
}

var merlinBin struct {
	once sync.Once
	path string
	err  error
}

// buildMerlin builds merlin from the parent directory, for its outside
// graders (merlin load -check, merlin load -app http).
func buildMerlin(t *testing.T) string {
	t.Helper()
	dir := build(t)
	merlinBin.once.Do(func() {
		merlinBin.path = filepath.Join(dir, "merlin")
		cmd := exec.Command("go", "build", "-ldflags=-checklinkname=0", "-o", merlinBin.path, "./cmd/merlin")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			merlinBin.err = fmt.Errorf("building merlin: %v\n%s", err, out)
		}
	})
	if merlinBin.err != nil {
		t.Fatal(merlinBin.err)
	}
	return merlinBin.path
}

// uringProbe holds whether this kernel has what cfloor-uring needs: a ring
// with SINGLE_ISSUER and DEFER_TASKRUN (Linux 6.1, which has multishot
// recv and buffer rings too), and io_uring not disabled.
var uringProbe struct {
	once sync.Once
	err  error
}

// needUring skips a test of peer n, if it is an io_uring peer, where the
// kernel lacks io_uring 6.1; where MERLIN_REQUIRE is set (CI) it fails
// instead.
func needUring(t *testing.T, n string) {
	t.Helper()
	if !slices.Contains(uringPeers, n) {
		return
	}
	uringProbe.once.Do(func() {
		const singleIssuer, deferTaskrun = 1 << 12, 1 << 13
		var params [30]uint32 // struct io_uring_params: 120 bytes; flags at 8
		params[2] = singleIssuer | deferTaskrun
		fd, _, errno := syscall.Syscall(unix.SYS_IO_URING_SETUP, 4, uintptr(unsafe.Pointer(&params)), 0)
		if errno != 0 {
			uringProbe.err = fmt.Errorf("io_uring_setup with SINGLE_ISSUER and DEFER_TASKRUN (Linux 6.1): %w", errno)
			return
		}
		syscall.Close(int(fd))
	})
	if uringProbe.err != nil {
		if os.Getenv("MERLIN_REQUIRE") != "" {
			t.Fatalf("%v, and MERLIN_REQUIRE is set", uringProbe.err)
		}
		t.Skip(uringProbe.err)
	}
}

// stop sends SIGTERM and requires exit status 0 within 30 s.
func stop(t *testing.T, cmd *exec.Cmd, stderr *bytes.Buffer) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\nstderr:\n%s", err, stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit within 30 s of SIGTERM")
	}
}

// dial connects to the peer at addr; the connection is closed when the
// test ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var listeningRE = regexp.MustCompile(`^listening on (\S+) \(peer (\S+)\)$`)

// start runs a peer and returns its address once it listens.
func start(t *testing.T, bin string, args ...string) (*exec.Cmd, string, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		io.Copy(io.Discard, out)
	}()
	select {
	case l, ok := <-line:
		m := listeningRE.FindStringSubmatch(l)
		if !ok || m == nil {
			cmd.Wait()
			t.Fatalf("%s: first line %q, want \"listening on ADDR (peer NAME)\"\nstderr:\n%s", bin, l, &stderr)
		}
		return cmd, m[1], &stderr
	case <-time.After(30 * time.Second):
		t.Fatalf("%s printed no line within 30 s", bin)
	}
	return nil, "", nil
}

// Every echo peer prints the listening line with a real port, echoes every
// byte, and exits 0 on SIGTERM.
func TestPeers(t *testing.T) {
	dir := build(t)
	for _, n := range echoPeers {
		t.Run(n, func(t *testing.T) {
			needUring(t, n)
			cmd, addr, stderr := start(t, filepath.Join(dir, n), "-addr", "127.0.0.1:0")
			if strings.HasSuffix(addr, ":0") {
				t.Fatalf("listening on %s: want the real port", addr)
			}
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			payload := make([]byte, 256<<10)
			for i := range payload {
				payload[i] = byte(i * 7 / 3)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			werr := make(chan error, 1)
			go func() {
				_, err := c.Write(payload)
				werr <- err
			}()
			got := make([]byte, len(payload))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("read the echo: %v", err)
			}
			if err := <-werr; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(payload, got) {
				t.Fatal("echo differs")
			}
			c.Close()
			stop(t, cmd, stderr)
		})
	}
}

// Every peer says what it is with -describe, as merlin bench asks: the
// apps the tests above run it with, its mechanism and whether it is a
// floor; and lists its apps with -apps.
func TestPeersDescribe(t *testing.T) {
	dir := build(t)
	for _, n := range peerNames {
		var apps []string
		if slices.Contains(echoPeers, n) {
			apps = append(apps, "echo")
		}
		if slices.Contains(httpPeers, n) || slices.Contains(tePeers, n) {
			apps = append(apps, "http")
		}
		mech, floor := "epoll", slices.Contains(floorPeers, n)
		if slices.Contains(uringPeers, n) {
			mech = "io_uring"
		}
		want := fmt.Sprintf("apps=%s mechanism=%s floor=%t", strings.Join(apps, ","), mech, floor)
		if slices.Contains(tlsPeers, n) {
			want += " tls=true"
		}
		out, err := exec.Command(filepath.Join(dir, n), "-describe").Output()
		if err != nil {
			t.Fatalf("%s -describe: %v", n, err)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("%s -describe = %q, want %q", n, got, want)
		}
		out, err = exec.Command(filepath.Join(dir, n), "-apps").Output()
		if err != nil {
			t.Fatalf("%s -apps: %v", n, err)
		}
		if got := strings.TrimSpace(string(out)); got != strings.Join(apps, ",") {
			t.Errorf("%s -apps = %q, want %q", n, got, strings.Join(apps, ","))
		}
	}
}

// A peer that binds with SO_REUSEPORT does not silently share a port
// another server holds: it refuses to start.
func TestPortInUse(t *testing.T) {
	dir := build(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, args := range [][]string{{"gnet", "-reuseport"}, {"gnet"}, {"nbio"}} {
		n := args[0]
		out, err := exec.Command(filepath.Join(dir, n), append(args[1:], "-addr", ln.Addr().String())...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "not free") {
			t.Errorf("%s on a port in use: %v, output %q; want it to refuse, saying the address is not free", n, err, out)
		}
	}
}

// Every TLS peer serves its apps over TLS with -tls and the certificate
// given (a client that trusts only it verifies it): HTTPS on keep-alive
// connections, and netstd's echo; a request in the clear gets no answer.
// The peers that cannot refuse -tls, and -tls needs its files.
func TestPeersTLS(t *testing.T) {
	dir := build(t)
	certPEM, keyPEM := testCert(t)
	certFile, keyFile := filepath.Join(t.TempDir(), "cert.pem"), filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	tlsArgs := []string{"-addr", "127.0.0.1:0", "-tls", "-tls-cert", certFile, "-tls-key", keyFile}
	for _, n := range tlsPeers {
		t.Run(n, func(t *testing.T) {
			cmd, addr, stderr := start(t, filepath.Join(dir, n), append(tlsArgs, "-app", "http")...)
			tr := &http.Transport{MaxIdleConnsPerHost: 1, TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}}
			defer tr.CloseIdleConnections()
			c := http.Client{Timeout: 10 * time.Second, Transport: tr}
			for range 3 {
				resp, err := c.Get("https://" + addr + "/plaintext")
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || string(body) != "Hello, World!" || resp.TLS == nil || resp.Proto != "HTTP/1.1" {
					t.Fatalf("GET /plaintext over TLS: %v, status %d, %s, body %q, TLS %t; want 200 HTTP/1.1 Hello, World!", err, resp.StatusCode, resp.Proto, body, resp.TLS != nil)
				}
			}
			clear := http.Client{Timeout: 10 * time.Second}
			if resp, err := clear.Get("http://" + addr + "/plaintext"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					t.Errorf("GET /plaintext in the clear: 200, want no answer or an error status")
				}
			}
			tr.CloseIdleConnections()
			stop(t, cmd, stderr)
		})
	}
	t.Run("netstd-echo", func(t *testing.T) {
		cmd, addr, stderr := start(t, filepath.Join(dir, "netstd"), tlsArgs...)
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		msg := []byte("over TLS")
		got := make([]byte, len(msg))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo over TLS: %q, %v; want %q", got, err, msg)
		}
		c.Close()
		stop(t, cmd, stderr)
	})
	for _, tc := range []struct {
		name, peer string
		args       []string
		want       string
	}{
		{name: "gnet", peer: "gnet", args: tlsArgs, want: "does not serve TLS"},
		{name: "nginx", peer: "nginx", args: append(tlsArgs, "-app", "http"), want: "does not serve TLS"},
		{name: "no-files", peer: "netstd", args: []string{"-addr", "127.0.0.1:0", "-tls"}, want: "-tls needs -tls-cert and -tls-key"},
		{name: "files-without-tls", peer: "netstd", args: []string{"-addr", "127.0.0.1:0", "-tls-cert", certFile, "-tls-key", keyFile}, want: "need -tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(filepath.Join(dir, tc.peer), tc.args...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Errorf("%s %s: %v, output %q; want exit status 2 saying %q", tc.peer, strings.Join(tc.args, " "), err, out, tc.want)
			}
		})
	}
}

// testCert returns a self-signed certificate for localhost and its key,
// in PEM.
func testCert(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:              []string{"localhost"},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// Every http peer serves the routes of merlin serve -app http: GET
// /plaintext and /json (TechEmpower), POST /echo (Content-Length and
// chunked, and 413 past 1 MiB), 404 elsewhere, on keep-alive connections;
// and exits 0 on SIGTERM.
func TestPeersHTTP(t *testing.T) {
	dir := build(t)
	for _, n := range httpPeers {
		t.Run(n, func(t *testing.T) {
			cmd, addr, stderr := start(t, filepath.Join(dir, n), "-addr", "127.0.0.1:0", "-app", "http")
			// ExpectContinueTimeout: a request with Expect: 100-continue
			// sends its body only after the server's 100.
			tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true, ExpectContinueTimeout: 10 * time.Second}
			defer tr.CloseIdleConnections()
			c := http.Client{Timeout: 10 * time.Second, Transport: tr}
			base := "http://" + addr
			type reply struct {
				Status      int
				ContentType string
				Body        string
			}
			// send makes one request; do fails the test on an error.
			send := func(method, path string, body io.Reader, chunked bool, header ...string) (reply, error) {
				t.Helper()
				req, err := http.NewRequest(method, base+path, body)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i+1 < len(header); i += 2 {
					req.Header.Set(header[i], header[i+1])
				}
				if chunked {
					req.ContentLength = -1
					req.TransferEncoding = []string{"chunked"}
				}
				resp, err := c.Do(req)
				if err != nil {
					return reply{}, fmt.Errorf("%s %s: %w", method, path, err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					return reply{}, fmt.Errorf("%s %s: reading the body: %w", method, path, err)
				}
				return reply{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}, nil
			}
			do := func(method, path string, body io.Reader, chunked bool, header ...string) reply {
				t.Helper()
				r, err := send(method, path, body, chunked, header...)
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			check := func(name string, want, got reply) {
				t.Helper()
				if want.Status != 200 {
					got.Body, got.ContentType = "", "" // error pages are the server's own
				}
				if len(want.Body) > 100 && got.Body == want.Body {
					got.Body, want.Body = "(same)", "(same)"
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", name, diff)
				}
			}
			for range 3 { // on one keep-alive connection
				check("GET /plaintext", reply{200, "text/plain", "Hello, World!"}, do("GET", "/plaintext", nil, false))
				check("GET /json", reply{200, "application/json", `{"message":"Hello, World!"}`}, do("GET", "/json", nil, false))
			}
			big := strings.Repeat("0123456789abcdef", 64<<10/16)
			check("POST /echo", reply{200, "application/octet-stream", big}, do("POST", "/echo", strings.NewReader(big), false))
			check("POST /echo chunked", reply{200, "application/octet-stream", big}, do("POST", "/echo", strings.NewReader(big), true))
			check("POST /echo empty", reply{200, "application/octet-stream", ""}, do("POST", "/echo", http.NoBody, false))
			check("PUT /echo", reply{200, "application/octet-stream", "put"}, do("PUT", "/echo", strings.NewReader("put"), false))
			check("GET /nope", reply{Status: 404}, do("GET", "/nope", nil, false))
			// With Expect: 100-continue, a server that refuses the body at
			// once (fasthttp, from Content-Length) does not race the
			// client's write of it.
			// A server that answers 100 Continue, reads up to its limit,
			// answers 413 and closes (fasthttp, 1 run in 30) may reset
			// the connection under the client's write of the rest, or
			// have shut it before the write (EPIPE): that is a refusal
			// too, only without its status.
			got, err := send("POST", "/echo", bytes.NewReader(make([]byte, 1<<20+1)), false, "Expect", "100-continue")
			switch {
			case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
				t.Logf("POST /echo of 1 MiB + 1: %v (the server refused the body by closing)", err)
			case err != nil:
				t.Fatal(err)
			default:
				check("POST /echo of 1 MiB + 1", reply{Status: 413}, reply{Status: got.Status})
			}

			tr.CloseIdleConnections()
			cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Errorf("exit after SIGTERM: %v\nstderr:\n%s", err, stderr)
			}
		})
	}
}

// The single loops (the C floors, their Go twins and libuv) pass merlin's
// outside grader, merlin load -check: pipelining, 16 MiB messages,
// half-close, FIN, resets, a slow reader beside a normal client, 256
// connections, and alive after all that.
func TestFloorsCheck(t *testing.T) {
	merlin := buildMerlin(t)
	dir := build(t)
	for _, n := range loopPeers {
		t.Run(n, func(t *testing.T) {
			needUring(t, n)
			cmd, addr, stderr := start(t, filepath.Join(dir, n), "-addr", "127.0.0.1:0")
			out, err := exec.Command(merlin, "load", "-check", addr, "-timeout", "30s").CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("all 8 checks passed")) {
				t.Errorf("merlin load -check %s: %v\n%s\nserver stderr:\n%s", addr, err, out, stderr)
			}
			stop(t, cmd, stderr)
		})
	}
}

// The single loops turn Nagle off, as merlin's transports and Go's net
// do: the listener and the connections it accepts have TCP_NODELAY set.
// The test takes the peer's sockets with pidfd_getfd (root, or ptrace
// rights over the peer) and asks them.
func TestFloorsNoDelay(t *testing.T) {
	dir := build(t)
	for _, n := range loopPeers {
		t.Run(n, func(t *testing.T) {
			needUring(t, n)
			cmd, addr, stderr := start(t, filepath.Join(dir, n), "-addr", "127.0.0.1:0")
			c := dial(t, addr)
			c.SetDeadline(time.Now().Add(30 * time.Second))
			// One echo: the server has accepted the connection.
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			pidfd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
			if err != nil {
				t.Skipf("pidfd_open: %v", err)
			}
			defer unix.Close(pidfd)
			ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid))
			if err != nil {
				t.Fatal(err)
			}
			tcp := 0
			for _, e := range ents {
				target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", cmd.Process.Pid, e.Name()))
				if !strings.HasPrefix(target, "socket:") {
					continue
				}
				fd, _ := strconv.Atoi(e.Name())
				mine, err := unix.PidfdGetfd(pidfd, fd, 0)
				if errors.Is(err, unix.EPERM) {
					t.Skipf("pidfd_getfd: %v", err)
				}
				if err != nil {
					t.Fatalf("pidfd_getfd %d: %v", fd, err)
				}
				proto, err := unix.GetsockoptInt(mine, unix.SOL_SOCKET, unix.SO_PROTOCOL)
				if err == nil && proto == unix.IPPROTO_TCP {
					tcp++
					if v, err := unix.GetsockoptInt(mine, unix.IPPROTO_TCP, unix.TCP_NODELAY); err != nil || v == 0 {
						t.Errorf("descriptor %d: TCP_NODELAY = %d, %v; want on", fd, v, err)
					}
				}
				unix.Close(mine)
			}
			if tcp < 2 {
				t.Errorf("found %d TCP sockets in the peer, want the listener and the connection", tcp)
			}
			stop(t, cmd, stderr)
		})
	}
}

// pattern is the byte at offset i of the bounded-output test's stream.
func pattern(i int64) byte { return byte(i*7/3 + i>>16) }

// A client that writes without reading does not make a minimal loop buffer
// without bound: it stops reading the connection once the output holds
// about 1 MiB, so the client's write stalls well short of 128 MiB and the
// server stays small; once the client reads, every byte comes back.
func TestFloorsBoundedOutput(t *testing.T) {
	dir := build(t)
	for _, n := range loopPeers {
		t.Run(n, func(t *testing.T) {
			needUring(t, n)
			cmd, addr, stderr := start(t, filepath.Join(dir, n), "-addr", "127.0.0.1:0")
			c := dial(t, addr)
			// Small client buffers: what piles up is the server's.
			c.(*net.TCPConn).SetReadBuffer(64 << 10)
			c.(*net.TCPConn).SetWriteBuffer(64 << 10)

			const total, chunk = 128 << 20, 256 << 10
			buf := make([]byte, chunk)
			var written int64
			for written < total {
				for i := range buf {
					buf[i] = pattern(written + int64(i))
				}
				// A write that makes no progress for 2 s: the server has
				// stopped reading (on a loaded machine it may stop sooner
				// than it has to, which the bounds below allow).
				c.SetWriteDeadline(time.Now().Add(2 * time.Second))
				n, err := c.Write(buf)
				written += int64(n)
				if err != nil {
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatalf("write after %d bytes: %v", written, err)
					}
					break
				}
			}
			rss := vmRSS(t, cmd.Process.Pid)
			t.Logf("the write stalled after %d MiB; server RSS %d MiB", written>>20, rss>>20)
			if written >= 64<<20 {
				t.Errorf("the server took %d MiB from a client that reads nothing; want it to stop reading (socket buffers plus 1 MiB)", written>>20)
			}
			if rss >= 32<<20 {
				t.Errorf("server RSS %d MiB while one client reads nothing; want < 32 MiB", rss>>20)
			}

			c.SetDeadline(time.Now().Add(60 * time.Second))
			got := make([]byte, chunk)
			for off := int64(0); off < written; {
				n, err := c.Read(got[:min(int64(len(got)), written-off)])
				for i := range n {
					if got[i] != pattern(off+int64(i)) {
						t.Fatalf("echo differs at byte %d", off+int64(i))
					}
				}
				off += int64(n)
				if err != nil {
					t.Fatalf("read %d of %d bytes echoed: %v", off, written, err)
				}
			}
			c.Close()
			stop(t, cmd, stderr)
		})
	}
}

// vmRSS returns the resident memory of process pid.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// Out of descriptors (EMFILE on accept), a C floor backs off and accepts
// the waiting connections once others close: with room for about 20
// connections, 60 clients at once are all answered. (libuv is not held
// to it: out of descriptors it accepts the waiting connections and
// closes them at once, with a descriptor it keeps spare for that.)
func TestFloorsEMFILE(t *testing.T) {
	dir := build(t)
	for _, n := range cPeers {
		if !slices.Contains(floorPeers, n) {
			continue
		}
		t.Run(n, func(t *testing.T) {
			needUring(t, n)
			// The shell lowers the limit and becomes the peer (exec): the
			// PID is the peer's.
			cmd, addr, stderr := start(t, "/bin/sh", "-c", `ulimit -n 26 && exec "$0" "$@"`, filepath.Join(dir, n), "-addr", "127.0.0.1:0")
			const clients = 60
			conns := make([]net.Conn, clients)
			for i := range conns {
				c, err := net.DialTimeout("tcp", addr, 10*time.Second) // the backlog takes them all
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				conns[i] = c
			}
			errs := make(chan error, clients)
			for i, c := range conns {
				go func() {
					defer c.Close() // frees a descriptor for the next
					c.SetDeadline(time.Now().Add(60 * time.Second))
					msg := []byte(fmt.Sprintf("client %d", i))
					if _, err := c.Write(msg); err != nil {
						errs <- err
						return
					}
					got := make([]byte, len(msg))
					if _, err := io.ReadFull(c, got); err != nil {
						errs <- fmt.Errorf("client %d: %w", i, err)
						return
					}
					if !bytes.Equal(got, msg) {
						errs <- fmt.Errorf("client %d: echo %q", i, got)
						return
					}
					errs <- nil
				}()
			}
			for range clients {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
			stop(t, cmd, stderr)
		})
	}
}

// The C peers take the Go peers' flags and refuse what they cannot serve.
func TestCPeerFlags(t *testing.T) {
	dir := build(t)
	for _, n := range cPeers {
		for _, tc := range []struct {
			name   string
			args   []string
			status int
			stderr string
		}{
			{name: "http", args: []string{"-addr", "127.0.0.1:0", "-app", "http"}, status: 1, stderr: `unknown app "http"`},
			{name: "bad-network", args: []string{"-addr", "127.0.0.1:0", "-network", "udp"}, status: 2, stderr: `unknown network "udp"`},
			{name: "v4-on-tcp6", args: []string{"-addr", "127.0.0.1:0", "-network", "tcp6"}, status: 1, stderr: "not an IPv6 address"},
			{name: "v6-on-tcp4", args: []string{"-addr", "[::1]:0", "-network", "tcp4"}, status: 1, stderr: "not an IPv4 address"},
			{name: "no-port", args: []string{"-addr", "127.0.0.1"}, status: 1, stderr: "missing port"},
			{name: "unknown-flag", args: []string{"-nope"}, status: 2, stderr: "-nope"},
			{name: "argument", args: []string{"-addr", "127.0.0.1:0", "extra"}, status: 2, stderr: `unexpected argument "extra"`},
		} {
			t.Run(n+"/"+tc.name, func(t *testing.T) {
				cmd := exec.Command(filepath.Join(dir, n), tc.args...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				err := cmd.Run()
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != tc.status || !strings.Contains(stderr.String(), tc.stderr) {
					t.Errorf("%s %s: %v, stderr %q; want status %d saying %q", n, strings.Join(tc.args, " "), err, &stderr, tc.status, tc.stderr)
				}
			})
		}
		// -cpuprofile (merlin bench -profile) is accepted with a note; an
		// IPv6 literal is served.
		t.Run(n+"/cpuprofile-ipv6", func(t *testing.T) {
			needUring(t, n)
			if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
				t.Skipf("no IPv6 loopback: %v", err)
			} else {
				ln.Close()
			}
			cmd, addr, stderr := start(t, filepath.Join(dir, n), "-addr", "[::1]:0", "-network", "tcp6", "-cpuprofile", filepath.Join(t.TempDir(), "cpu.pprof"))
			if !strings.HasPrefix(addr, "[::1]:") {
				t.Errorf("listening on %s, want [::1]:PORT", addr)
			}
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			got := make([]byte, 5)
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, got); err != nil || string(got) != "hello" {
				t.Fatalf("echo %q, %v", got, err)
			}
			c.Close()
			stop(t, cmd, stderr)
			if !strings.Contains(stderr.String(), "-cpuprofile") {
				t.Errorf("no note on stderr that -cpuprofile is ignored: %q", stderr)
			}
		})
	}
}

// The nginx peer becomes nginx (the PID bench measures is nginx's), serves
// TechEmpower's /plaintext and /json on keep-alive connections, passes
// merlin load's body and framing checks, and exits 0 on SIGTERM.
func TestNginx(t *testing.T) {
	dir := build(t)
	merlin := buildMerlin(t)
	addrs := []string{"127.0.0.1:0"}
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		ln.Close()
		addrs = append(addrs, "[::1]:0")
	}
	for _, a := range addrs {
		t.Run(a, func(t *testing.T) {
			cmd, addr, stderr := start(t, filepath.Join(dir, "nginx"), "-addr", a, "-app", "http")
			if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)); err != nil || strings.TrimSpace(string(comm)) != "nginx" {
				t.Errorf("process %d is %q (%v), want nginx itself", cmd.Process.Pid, comm, err)
			}
			tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
			defer tr.CloseIdleConnections()
			c := http.Client{Timeout: 10 * time.Second, Transport: tr}
			type reply struct {
				Status            int
				ContentType, Body string
			}
			get := func(path string) reply {
				t.Helper()
				resp, err := c.Get("http://" + addr + path)
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				return reply{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
			}
			for range 3 { // on one keep-alive connection
				if d := cmp.Diff(reply{200, "text/plain", "Hello, World!"}, get("/plaintext")); d != "" {
					t.Errorf("GET /plaintext (-want +got):\n%s", d)
				}
				if d := cmp.Diff(reply{200, "application/json", `{"message":"Hello, World!"}`}, get("/json")); d != "" {
					t.Errorf("GET /json (-want +got):\n%s", d)
				}
			}
			if got := get("/nope"); got.Status != 404 {
				t.Errorf("GET /nope: status %d, want 404", got.Status)
			}
			tr.CloseIdleConnections()
			for _, path := range []string{"/plaintext", "/json"} {
				out, err := exec.Command(merlin, "load", "-app", "http", "-addr", addr, "-path", path, "-conns", "8", "-depth", "16", "-duration", "500ms", "-timeout", "30s").CombinedOutput()
				if err != nil || !bytes.Contains(out, []byte("errors: 0")) {
					t.Errorf("merlin load -app http -path %s: %v\n%s", path, err, out)
				}
			}
			stop(t, cmd, stderr)
			for _, level := range []string{"[emerg]", "[alert]", "[crit]", "[error]"} {
				if strings.Contains(stderr.String(), level) {
					t.Errorf("nginx logged %s:\n%s", level, stderr)
				}
			}
		})
	}
}

// Without nginx, the peer exits 1 naming the Debian package.
func TestNginxMissing(t *testing.T) {
	dir := build(t)
	out, err := exec.Command(filepath.Join(dir, "nginx"), "-addr", "127.0.0.1:0", "-app", "http", "-nginx", "/nonexistent/nginx").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !bytes.Contains(out, []byte("apt-get install nginx-light")) {
		t.Errorf("%v, output %q; want status 1 naming nginx-light", err, out)
	}
}
