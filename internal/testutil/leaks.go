package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Baseline is a snapshot of the goroutines and descriptors that exist
// before a test, so that a later Check finds only what the test left.
type Baseline struct {
	ignore goleak.Option
	fds    map[string]string
}

// TakeBaseline snapshots the current goroutines and open descriptors.
// It starts the runtime's poller first (a pipe is registered with it), so
// that the poller's epoll fd and eventfd, which the runtime opens on first
// use and never closes, are in the baseline even for a test run alone;
// take it after a warm-up for any other lazily started state.
func TakeBaseline() *Baseline {
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	return &Baseline{ignore: goleak.IgnoreCurrent(), fds: openFDs()}
}

// Check fails t if goroutines or descriptors not in b remain after polling
// for up to within (teardown of rings and loops is asynchronous).
func (b *Baseline) Check(t testing.TB, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		gerr := goleak.Find(b.ignore)
		extra := b.newFDs()
		if gerr == nil && len(extra) == 0 {
			return
		}
		if time.Now().After(deadline) {
			if gerr != nil {
				t.Errorf("goroutines leaked: %v", gerr)
			}
			if len(extra) > 0 {
				t.Errorf("descriptors leaked: %s", strings.Join(extra, ", "))
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newFDs lists descriptors open now that were not open, with the same
// target, in the baseline.
func (b *Baseline) newFDs() []string {
	var extra []string
	for fd, target := range openFDs() {
		if old, ok := b.fds[fd]; !ok || old != target {
			extra = append(extra, fmt.Sprintf("%s -> %s", fd, target))
		}
	}
	sort.Strings(extra)
	return extra
}

// openFDs maps each descriptor of this process to what it refers to.
func openFDs() map[string]string {
	const dir = "/proc/self/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil // no procfs (not Linux): descriptors are not checked
	}
	m := make(map[string]string, len(ents))
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // the descriptor of ReadDir itself, closed already
		}
		m[e.Name()] = target
	}
	return m
}

// FDCount returns the number of open descriptors of this process, or -1
// where /proc/self/fd is missing.
func FDCount() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents) - 1 // the directory's own descriptor
}
