package main

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

var benchRE = regexp.MustCompile(`(?m)^BenchmarkLoad/app=echo/conns=8/size=4096/depth=4 (\d+) [0-9.]+ ns/op [0-9.]+ req/s [0-9.]+ MB/s 0 errors$`)

// merlin load against merlin serve prints its result and a Go benchmark
// line, and exits 0.
func TestLoad(t *testing.T) {
	s := startServe(t, nil, "-transport", "sockets", "-addr", "127.0.0.1:0")
	r := merlin(t, "load", "-addr", s.addr, "-conns", "8", "-size", "4k", "-depth", "4", "-duration", "1s")
	if r.status != 0 {
		t.Fatalf("merlin load: exit status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	m := benchRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no benchmark line in merlin load's output:\n%s", r.stdout)
	}
	if n, _ := strconv.Atoi(m[1]); n < 8*4 {
		t.Errorf("N = %d requests, want at least one batch per connection (32)", n)
	}
	for _, want := range []string{"requests: ", "req/s", "MB/s", "errors: 0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	t.Logf("(%v)\n%s", r.elapsed, r.stdout)
	if status := s.stop(t, syscall.SIGTERM); status != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0\nstderr:\n%s", status, s.stderr)
	}
}

// corruptingServer listens on loopback and echoes every connection's
// stream with the byte at offset at flipped. It is stopped by t.Cleanup.
func corruptingServer(t *testing.T, at int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		cs []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			cs = append(cs, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				buf := make([]byte, 32<<10)
				for total := 0; ; {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if total <= at && at < total+n {
						buf[at-total] ^= 1
					}
					total += n
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range cs {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// Both load generators catch a server that corrupts one byte: they exit
// non-zero and say where.
func TestLoadDetectsCorruption(t *testing.T) {
	addr := corruptingServer(t, 1000)
	r := merlin(t, "load", "-addr", addr, "-conns", "2", "-size", "100", "-depth", "4", "-duration", "2s")
	if r.status != 1 || !strings.Contains(r.stdout, "echo differs at byte 200") || !strings.Contains(r.stdout, " 2 errors") {
		t.Errorf("merlin load against a corrupting server: exit status %d, want 1 and the difference at byte 200 of batch 2 on both connections\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	r = echoClient(t, "load", "--addr", addr, "--conns", "2", "--size", "100", "--depth", "4", "--seconds", "2")
	if r.status != 1 || !strings.Contains(r.stderr, "mismatch") || !strings.Contains(r.stderr, "differs at byte 200 ") {
		t.Errorf("echoclient load against a corrupting server: exit status %d, want 1 and the mismatch at byte 200\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
}
