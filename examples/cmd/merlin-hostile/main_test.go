package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests build merlin-hostile, a merlin that knows a transport from
// outside merlin's module, and run its bench and paper as a researcher
// would: the hostile transport measured beside uring and gnet.

// build builds the binary under test into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "merlin-hostile")
	out, err := exec.Command("go", "build", "-ldflags=-checklinkname=0", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func run(t *testing.T, bin string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

func TestTransportsListsHostile(t *testing.T) {
	bin := build(t)
	out, errs, status := run(t, bin, "transports")
	if status != 0 || !strings.Contains(out, "hostile") || !strings.Contains(out, "uring") {
		t.Fatalf("merlin-hostile transports: status %d\n%s\n%s", status, out, errs)
	}
}

// bench serves the outside transport with the binary's own serve, beside
// merlin's uring and the gnet peer, and every run succeeds.
func TestBenchBesideUringAndGnet(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	out, errs, status := run(t, bin, "bench", "-servers", "hostile,hostile:inner=uring,uring,gnet", "-peers", "gnet", "-netconn=false",
		"-workloads", "echo", "-conns", "4", "-sizes", "64", "-depths", "1", "-count", "1",
		"-warmup", "100ms", "-duration", "300ms", "-perf", "off", "-out", dir)
	if status != 0 {
		t.Fatalf("merlin-hostile bench: status %d\nstdout:\n%s\nstderr:\n%s", status, out, errs)
	}
	var rep struct {
		Records []struct {
			Server   string
			Requests int64
			Error    string `json:"error"`
		} `json:"records"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range rep.Records {
		if r.Requests == 0 || r.Error != "" {
			t.Errorf("%s: %d requests, error %q", r.Server, r.Requests, r.Error)
		}
		seen[r.Server] = true
	}
	for _, s := range []string{"hostile", "hostile:inner=uring", "uring", "gnet"} {
		if !seen[s] {
			t.Errorf("no record of %s in results.json:\n%s", s, b)
		}
	}
}

// paper runs a tiny paper on the outside transport and regenerates it.
func TestPaper(t *testing.T) {
	bin := build(t)
	dir := filepath.Join(t.TempDir(), "0001-tiny")
	if err := os.CopyFS(dir, os.DirFS("testdata/tiny")); err != nil {
		t.Fatal(err)
	}
	out, errs, status := run(t, bin, "paper", "-png-dpi", "20", dir)
	if status != 0 {
		t.Fatalf("merlin-hostile paper: status %d\nstdout:\n%s\nstderr:\n%s", status, out, errs)
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hostile:inner=uring", "gnet", "The verdict"} {
		if !bytes.Contains(readme, []byte(want)) {
			t.Errorf("the paper's README lacks %q:\n%s", want, readme)
		}
	}
}
