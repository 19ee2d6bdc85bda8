package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// BuildPeers builds the named peers of peersDir with the go command into
// cacheDir and returns them as Servers. A peer is a directory of peersDir
// with a main package.
func BuildPeers(goCmd, peersDir, cacheDir string, names []string) ([]Server, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	var out []Server
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, `/\.`) {
			return nil, fmt.Errorf("bad peer name %q", n)
		}
		if _, err := os.Stat(filepath.Join(peersDir, n, "main.go")); err != nil {
			return nil, fmt.Errorf("no peer %q in %s (have: %s)", n, peersDir, strings.Join(listPeers(peersDir), ", "))
		}
		bin := filepath.Join(cacheDir, "peer-"+n)
		cmd := exec.Command(goCmd, "build", "-o", bin, "./"+n)
		cmd.Dir = peersDir
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building peer %s (go build in %s): %v\n%s", n, peersDir, err, b)
		}
		apps, err := exec.Command(bin, "-apps").Output()
		if err != nil {
			return nil, fmt.Errorf("peer %s: %s -apps: %v", n, bin, err)
		}
		out = append(out, Server{Name: n, Kind: KindPeer, Argv: []string{bin}, Apps: strings.Split(strings.TrimSpace(string(apps)), ",")})
	}
	return out, nil
}

// listPeers names the peers in peersDir.
func listPeers(peersDir string) []string {
	var names []string
	es, _ := os.ReadDir(peersDir)
	for _, e := range es {
		if _, err := os.Stat(filepath.Join(peersDir, e.Name(), "main.go")); e.IsDir() && err == nil {
			names = append(names, e.Name())
		}
	}
	return names
}
