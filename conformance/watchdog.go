package conformance

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// envCaseTimeout overrides defaultCaseTimeout: a Go duration ("30s").
const envCaseTimeout = "MERLIN_CASE_TIMEOUT"

// defaultCaseTimeout is how long a case, its cleanups included, may run
// before its watchdog fails it: far more than any case takes on a loaded
// machine, and far less than the test binary's -timeout.
const defaultCaseTimeout = 3 * time.Minute

// caseTimeout returns the watchdog's limit: defaultCaseTimeout, or the
// value of envCaseTimeout.
func caseTimeout() (time.Duration, error) {
	v := os.Getenv(envCaseTimeout)
	if v == "" {
		return defaultCaseTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err == nil && d <= 0 {
		err = fmt.Errorf("not positive")
	}
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %v", envCaseTimeout, v, err)
	}
	return d, nil
}

// A watchdog fails a case that has not finished within its limit, as
// nettest's timeoutWrapper does, rather than let it hang until the test
// binary's timeout: it reports every goroutine's stack as an error of the
// case, then closes the transports the case opened, so that a case waiting
// for them (an OnClose, a blocked client) ends and the suite goes on. A
// case still running a grace period later (its limit, within 5 to 30 s)
// ends the test binary with a panic naming it, as -timeout would.
type watchdog struct {
	t     *testing.T
	limit time.Duration
	timer *time.Timer
	fired chan struct{} // closed once fire has reported the failure
	done  chan struct{} // closed by stop

	mu  sync.Mutex
	trs []transports.Transport // opened by the case; guarded by mu
}

// watch starts a watchdog on the case running on t; the caller stops it.
func watch(t *testing.T, limit time.Duration) *watchdog {
	w := &watchdog{t: t, limit: limit, fired: make(chan struct{}), done: make(chan struct{})}
	w.timer = time.AfterFunc(limit, w.fire)
	return w
}

// track adds a transport for fire to close.
func (w *watchdog) track(tr transports.Transport) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.trs = append(w.trs, tr)
}

// stop ends the watch. If the watchdog has fired, it waits for its report,
// which must reach t before t completes.
func (w *watchdog) stop() {
	if !w.timer.Stop() {
		<-w.fired
	}
	close(w.done)
}

func (w *watchdog) fire() {
	w.t.Errorf("the case did not finish within %v (%s sets the limit); every goroutine's stack:\n%s", w.limit, envCaseTimeout, stacks())
	close(w.fired)
	w.mu.Lock()
	trs := w.trs
	w.mu.Unlock()
	for _, tr := range trs {
		go tr.Close() // it may hang too; the case's cleanup reports its error
	}
	grace := min(max(w.limit, 5*time.Second), 30*time.Second)
	select {
	case <-w.done:
	case <-time.After(grace):
		debug.SetTraceback("all")
		panic(fmt.Sprintf("conformance: %s still running %v after its watchdog fired at %v", w.t.Name(), grace, w.limit))
	}
}

// stacks returns every goroutine's stack.
func stacks() []byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}
