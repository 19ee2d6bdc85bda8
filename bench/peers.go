package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// PeersModule is the module path of peers/.
const PeersModule = "github.com/merlin-net/merlin/peers"

// FindPeers returns the peers/ directory of the merlin source tree that
// holds dir (or its parents).
func FindPeers(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "peers")
		if b, err := os.ReadFile(filepath.Join(p, "go.mod")); err == nil && bytes.Contains(b, []byte("module "+PeersModule+"\n")) {
			return p, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no peers/ directory (module %s) in %s or its parents: run from the merlin source tree, or give -peers-dir", PeersModule, dir)
		}
	}
}

// BuildPeers builds the named peers of peersDir into cacheDir, asks each
// what it is (-describe), and returns them as Servers.
//
// A peer is a directory of peersDir holding either a Go main package
// (main.go), built with goCmd, or one C file (main.c), built with the
// system C compiler ($CC, else cc) as "cc -O2 -Wall -Werror -o BIN main.c
// FLAGS", where FLAGS are what the file's first line names after
// "// cflags:" (for example "// cflags: -luring"; none without that line).
//
// Asked -describe, a peer prints one line "apps=echo,http
// mechanism=epoll floor=false": the apps it serves, how it waits for the
// kernel (MechEpoll or MechUring), and whether it is a floor; then
// "tls=true" if it serves them over TLS with -tls (none: it does not).
func BuildPeers(goCmd, peersDir, cacheDir string, names []string) ([]Server, error) {
	cacheDir, err := filepath.Abs(cacheDir) // the compilers run in the peers' directories
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	var out []Server
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, `/\.`) {
			return nil, fmt.Errorf("bad peer name %q", n)
		}
		lang, err := peerLang(filepath.Join(peersDir, n))
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", n, err)
		}
		bin := filepath.Join(cacheDir, "peer-"+n)
		switch lang {
		case "go":
			cmd := exec.Command(goCmd, "build", "-o", bin, "./"+n)
			cmd.Dir = peersDir
			if b, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("building peer %s (go build in %s): %v\n%s", n, peersDir, err, b)
			}
		case "c":
			if err := buildC(filepath.Join(peersDir, n), bin); err != nil {
				return nil, fmt.Errorf("building peer %s: %w", n, err)
			}
		default:
			return nil, fmt.Errorf("no peer %q in %s (have: %s)", n, peersDir, strings.Join(listPeers(peersDir), ", "))
		}
		desc, err := exec.Command(bin, "-describe").Output()
		if err != nil {
			return nil, fmt.Errorf("peer %s: %s -describe: %v", n, bin, err)
		}
		srv, err := parseDescribe(string(desc))
		if err != nil {
			return nil, fmt.Errorf("peer %s: %s -describe: %w", n, bin, err)
		}
		srv.Name, srv.Kind, srv.Argv = n, KindPeer, []string{bin}
		out = append(out, srv)
	}
	return out, nil
}

// peerLang says what dir holds: "go" (main.go), "c" (main.c) or "" (no
// peer).
func peerLang(dir string) (string, error) {
	_, goErr := os.Stat(filepath.Join(dir, "main.go"))
	_, cErr := os.Stat(filepath.Join(dir, "main.c"))
	switch {
	case goErr == nil && cErr == nil:
		return "", fmt.Errorf("%s holds both main.go and main.c: a peer is one or the other", dir)
	case goErr == nil:
		return "go", nil
	case cErr == nil:
		return "c", nil
	}
	return "", nil
}

// buildC compiles dir/main.c into bin with $CC (else cc).
func buildC(dir, bin string) error {
	cc := strings.Fields(os.Getenv("CC"))
	if len(cc) == 0 {
		cc = []string{"cc"}
	}
	if _, err := exec.LookPath(cc[0]); err != nil {
		return fmt.Errorf("no C compiler (%v): install gcc (Debian: apt-get install gcc), or name one in $CC", err)
	}
	flags, err := cflags(filepath.Join(dir, "main.c"))
	if err != nil {
		return err
	}
	args := append(append(cc[1:len(cc):len(cc)], "-O2", "-Wall", "-Werror", "-o", bin, "main.c"), flags...)
	cmd := exec.Command(cc[0], args...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s in %s: %v%s\n%s", strings.Join(cmd.Args, " "), dir, err, missingPackage(b), b)
	}
	return nil
}

// cflags returns the compiler arguments the first line of a C peer names:
// "// cflags: -luring".
func cflags(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "// cflags:")
	if !ok {
		return nil, nil
	}
	return strings.Fields(rest), nil
}

// devPackages are the Debian packages that hold the headers and libraries
// the C peers use.
var devPackages = map[string]string{
	"liburing.h": "liburing-dev",
	"-luring":    "liburing-dev",
	"uv.h":       "libuv1-dev",
	"-luv":       "libuv1-dev",
}

var missingRE = regexp.MustCompile(`(?:fatal error: (\S+\.h): No such file|cannot find (-l[^\s:]+))`)

// missingPackage names the Debian package to install when a compiler's
// output says a header or library is missing.
func missingPackage(out []byte) string {
	m := missingRE.FindSubmatch(out)
	if m == nil {
		return ""
	}
	what := string(m[1]) + string(m[2])
	if pkg, ok := devPackages[what]; ok {
		return fmt.Sprintf(" (%s is missing: install %s; Debian: apt-get install %s)", what, pkg, pkg)
	}
	return fmt.Sprintf(" (%s is missing: install its development package)", what)
}

// parseDescribe reads a peer's -describe line into a Server's Apps,
// Mechanism, Floor and TLS.
func parseDescribe(line string) (Server, error) {
	var srv Server
	seen := map[string]bool{}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return Server{}, fmt.Errorf("%q: want key=value fields", line)
		}
		seen[k] = true
		switch k {
		case "apps":
			srv.Apps = strings.Split(v, ",")
		case "mechanism":
			if v != MechEpoll && v != MechUring {
				return Server{}, fmt.Errorf("%q: mechanism %q is neither %s nor %s", line, v, MechEpoll, MechUring)
			}
			srv.Mechanism = v
		case "floor":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Server{}, fmt.Errorf("%q: floor: %w", line, err)
			}
			srv.Floor = b
		case "tls":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Server{}, fmt.Errorf("%q: tls: %w", line, err)
			}
			srv.TLS = b
		}
	}
	if !seen["apps"] || !seen["mechanism"] {
		return Server{}, fmt.Errorf("%q: want apps=LIST and mechanism=NAME", line)
	}
	return srv, nil
}

// listPeers names the peers in peersDir, Go and C.
func listPeers(peersDir string) []string {
	var names []string
	es, _ := os.ReadDir(peersDir)
	for _, e := range es {
		if lang, _ := peerLang(filepath.Join(peersDir, e.Name())); e.IsDir() && lang != "" {
			names = append(names, e.Name())
		}
	}
	return names
}
