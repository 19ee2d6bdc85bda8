package peers

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var peerNames = []string{"netstd", "gnet", "nbio"}

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

// Every peer prints the listening line with a real port, echoes every
// byte, and exits 0 on SIGTERM.
func TestPeers(t *testing.T) {
	dir := build(t)
	for _, n := range peerNames {
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

// netstd -app http is net/http answering TechEmpower's plaintext test.
func TestNetstdHTTP(t *testing.T) {
	dir := build(t)
	cmd, addr, stderr := start(t, filepath.Join(dir, "netstd"), "-addr", "127.0.0.1:0", "-app", "http")
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/plaintext")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(body) != "Hello, World!" {
		t.Errorf("GET /plaintext: %d %q %v", resp.StatusCode, body, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v\nstderr:\n%s", err, stderr)
	}
}
