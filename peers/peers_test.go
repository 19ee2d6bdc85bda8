package peers

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// peerNames are the peers built; echoPeers serve -app echo, httpPeers
// -app http; uringPeers wait on io_uring (the others on epoll); floorPeers
// are floors.
var (
	peerNames  = []string{"netstd", "gnet", "nbio", "fasthttp"}
	echoPeers  = []string{"netstd", "gnet", "nbio"}
	httpPeers  = []string{"netstd", "fasthttp"}
	uringPeers = []string{}
	floorPeers = []string{}
)

// build builds the peers into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, n := range peerNames {
		args = append(args, "./"+n)
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
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
		if slices.Contains(httpPeers, n) {
			apps = append(apps, "http")
		}
		mech, floor := "epoll", slices.Contains(floorPeers, n)
		if slices.Contains(uringPeers, n) {
			mech = "io_uring"
		}
		want := fmt.Sprintf("apps=%s mechanism=%s floor=%t", strings.Join(apps, ","), mech, floor)
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
			do := func(method, path string, body io.Reader, chunked bool, header ...string) reply {
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
					t.Fatalf("%s %s: %v", method, path, err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatalf("%s %s: reading the body: %v", method, path, err)
				}
				return reply{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
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
			got := do("POST", "/echo", bytes.NewReader(make([]byte, 1<<20+1)), false, "Expect", "100-continue")
			check("POST /echo of 1 MiB + 1", reply{Status: 413}, reply{Status: got.Status})

			tr.CloseIdleConnections()
			cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Errorf("exit after SIGTERM: %v\nstderr:\n%s", err, stderr)
			}
		})
	}
}
