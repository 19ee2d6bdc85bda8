package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writePeer writes a peer directory under peersDir holding file.
func writePeer(t *testing.T, peersDir, name, file, src string) {
	t.Helper()
	dir := filepath.Join(peersDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// describeC is a C peer that answers -describe; its first line asks for
// libm, so that the cflags line is used (sqrt of an argument is not folded
// away).
const describeC = `// cflags: -lm
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "-describe") == 0) {
		printf("apps=echo mechanism=io_uring floor=true\n");
		return 0;
	}
	printf("%f\n", sqrt((double)argc));
	return 1;
}
`

func needCC(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("cc"); err != nil && os.Getenv("CC") == "" {
		t.Fatalf("no C compiler: the C peers need gcc (Debian: apt-get install gcc): %v", err)
	}
}

// A C peer (main.c) is built with the C compiler and the flags of its
// first line, and described by its -describe answer.
func TestBuildPeersC(t *testing.T) {
	needCC(t)
	peersDir, cache := t.TempDir(), t.TempDir()
	writePeer(t, peersDir, "cpeer", "main.c", describeC)
	got, err := BuildPeers("go", peersDir, cache, []string{"cpeer"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Server{{Name: "cpeer", Kind: KindPeer, Argv: []string{filepath.Join(cache, "peer-cpeer")}, Apps: []string{"echo"}, Mechanism: MechUring, Floor: true}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("servers (-want +got):\n%s", d)
	}
}

// Without a C compiler, or without a header a C peer includes, the error
// names the Debian package to install.
func TestBuildPeersCErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cc   string // $CC
		src  string
		want []string
	}{
		{name: "no-compiler", cc: "/nonexistent/cc", src: describeC, want: []string{"no C compiler", "gcc", "$CC"}},
		{name: "no-header", src: "#include <merlin-no-such-header.h>\nint main(void) { return 0; }\n", want: []string{"merlin-no-such-header.h is missing"}},
		{name: "error", src: "int main(void) { int unused; return 0; }\n", want: []string{"-Werror", "unused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cc != "" {
				t.Setenv("CC", tc.cc)
			} else {
				needCC(t)
			}
			peersDir := t.TempDir()
			writePeer(t, peersDir, "cpeer", "main.c", tc.src)
			_, err := BuildPeers("go", peersDir, t.TempDir(), []string{"cpeer"})
			if err == nil {
				t.Fatal("built")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// A missing liburing or libuv, header or library, is named by its Debian
// package.
func TestMissingPackage(t *testing.T) {
	for _, tc := range []struct {
		out, want string
	}{
		{"main.c:35:10: fatal error: liburing.h: No such file or directory\n", "install liburing-dev"},
		{"/usr/bin/ld: cannot find -luring: No such file or directory\n", "install liburing-dev"},
		{"main.c:24:10: fatal error: uv.h: No such file or directory\n", "install libuv1-dev"},
		{"/usr/bin/ld: cannot find -luv: No such file or directory\n", "install libuv1-dev"},
		{"main.c:1:10: fatal error: foo.h: No such file or directory\n", "foo.h is missing"},
		{"main.c:3:5: error: unused variable\n", ""},
	} {
		got := missingPackage([]byte(tc.out))
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("missingPackage(%q) = %q, want it to say %q", tc.out, got, tc.want)
		}
	}
}

// The "no peer" error lists Go and C peers alike.
func TestBuildPeersNoPeer(t *testing.T) {
	peersDir := t.TempDir()
	writePeer(t, peersDir, "gopeer", "main.go", "package main\n\nfunc main() {}\n")
	writePeer(t, peersDir, "cpeer", "main.c", describeC)
	writePeer(t, peersDir, "internal", "peer.h", "")
	_, err := BuildPeers("go", peersDir, t.TempDir(), []string{"nope"})
	if err == nil || !strings.Contains(err.Error(), "(have: cpeer, gopeer)") {
		t.Errorf("error %v; want it to list cpeer and gopeer, and no more", err)
	}
}

func TestParseDescribe(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       Server
		err        bool
	}{
		{name: "go", line: "apps=echo,http mechanism=epoll floor=false\n", want: Server{Apps: []string{"echo", "http"}, Mechanism: MechEpoll}},
		{name: "floor", line: "apps=echo mechanism=io_uring floor=true", want: Server{Apps: []string{"echo"}, Mechanism: MechUring, Floor: true}},
		{name: "no-floor", line: "apps=http mechanism=epoll", want: Server{Apps: []string{"http"}, Mechanism: MechEpoll}},
		{name: "tls", line: "apps=echo,http mechanism=epoll floor=false tls=true", want: Server{Apps: []string{"echo", "http"}, Mechanism: MechEpoll, TLS: true}},
		{name: "bad-tls", line: "apps=http mechanism=epoll tls=maybe", err: true},
		{name: "unknown-key", line: "apps=echo mechanism=epoll floor=false threads=1", want: Server{Apps: []string{"echo"}, Mechanism: MechEpoll}},
		{name: "apps-answer", line: "echo,http", err: true},
		{name: "no-mechanism", line: "apps=echo floor=true", err: true},
		{name: "bad-mechanism", line: "apps=echo mechanism=kqueue", err: true},
		{name: "bad-floor", line: "apps=echo mechanism=epoll floor=yes", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDescribe(tc.line)
			if (err != nil) != tc.err {
				t.Fatalf("parseDescribe(%q): error %v, want error %v", tc.line, err, tc.err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
