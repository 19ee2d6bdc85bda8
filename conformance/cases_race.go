package conformance

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// raceCases call every Conn method that may come from any goroutine, from
// many goroutines at once, while OnData runs: the bug class of transports
// that own their buffers (cloudwego/netpoll #140, #143, #207, #330, #408;
// gnet #616, #649). Run them under -race.
var raceCases = []testCase{
	{name: "methods-race-ondata", run: raceMethods},
}

const (
	raceConns       = 1000 // connections, over TCP and unix sockets alike
	raceControllers = 8    // goroutines calling the Conn methods
	raceRounds      = 3    // visits of each controller to each connection before the last, which closes
	raceChunk       = 8    // bytes of a client chunk: kind, generation (4), "..\n"
	raceEndWait     = time.Minute
)

// The kinds of client chunk (its first byte): what the client knew of the
// server's Conn when it wrote it. racePaused chunks carry the generation
// of the pause in force.
const (
	raceAny    = 'n'
	racePaused = 'p' // written after a PauseRead returned, before any ResumeRead was called
	raceClosed = 'c' // written after a Close or Abort returned
)

// raceConn is what the case knows of one server Conn and its client.
type raceConn struct {
	id     int
	c      transports.Conn
	client net.Conn // set before the controllers start

	// ctl orders, on this Conn, the controllers' PauseRead and ResumeRead,
	// the quiet Close and Abort, and everything the client sends, with
	// what gen and the fields below say.
	ctl sync.Mutex
	// gen counts PauseRead calls that have returned and ResumeRead calls
	// about to be made: odd while paused. Written under ctl.
	gen atomic.Uint32
	// stopped is set once a Close or Abort has returned.
	stopped atomic.Bool
	// Set before the call.
	aborted    atomic.Bool
	closeWrote atomic.Bool

	// What is due to the Conn, for quiet. sent and finSent are written
	// under ctl; seen and consumed by OnData, before it returns; offerDue
	// is set under ctl before ResumeRead, and cleared as OnData enters.
	sent     atomic.Int64 // bytes the client wrote, counted before the write
	seen     atomic.Int64 // stream offset up to which OnData has been offered bytes
	consumed atomic.Int64 // bytes OnData consumed
	offerDue atomic.Bool  // kept bytes are to be offered after a ResumeRead
	finSent  atomic.Bool  // the client has sent, or is sending, its FIN
	// quietGen is the generation of the last quiet pause; quietStop is
	// set once a quiet Close or Abort has returned.
	quietGen  atomic.Uint32
	quietStop atomic.Bool

	inCallback atomic.Bool
	closes     atomic.Int32
	keepNext   bool // owned by the callbacks: keep one chunk in the next OnData
	lateData   int  // owned by the callbacks: OnData after a pause or close neither quiet nor proved by the input
}

// quiet reports whether nothing is due to the Conn: no OnData runs, every
// byte the client sent has been offered, no kept bytes are to be offered
// after a ResumeRead, and no FIN is on its way. The caller holds rc.ctl,
// so that the client sends nothing meanwhile.
func (rc *raceConn) quiet() bool {
	seen := rc.seen.Load()
	return !rc.inCallback.Load() && rc.sent.Load() == seen && !rc.finSent.Load() &&
		(!rc.offerDue.Load() || seen == rc.consumed.Load())
}

// raceRun is one run of raceMethods: its faults and counts.
type raceRun struct {
	faults      raceFaults
	datas       atomic.Int64
	quietPauses atomic.Int64
	quietStops  atomic.Int64
	fins        atomic.Int64 // client FINs sent after a quiet pause, Close or Abort
}

// raceMethods: 1,000 connections, their clients sending small chunks; 8
// goroutines visit every connection, each in its own random order, three
// times: each visit a Write, a PauseRead or ResumeRead, and rarely a
// CloseWrite, Close or Abort, among client chunks; then each closes or
// aborts every connection, all at once.
//
// "Once PauseRead, Close or Abort has returned, no new OnData starts" is
// checked two ways, each sure of what it reports. (An OnData that merely
// enters after the call returned proves nothing: the transport may have
// chosen to call it just before, under its lock, and been slow to get
// there; such entries are counted in the log.) By the input: an OnData
// that receives a raceClosed chunk, or a racePaused one while its pause
// still holds, was called with bytes that did not exist when the call
// returned. By quiet: where a controller pauses, closes or aborts with
// nothing due to the Conn (see quiet), then sometimes sends the client's
// FIN, any OnData after the call returned was chosen after it: input and
// FIN alike must wait for ResumeRead, or be discarded.
//
// Besides: no panic; callbacks of a Conn never at once; exactly one
// OnClose per OnOpen, with an error the contract allows, and nothing
// after it; every method's error one the contract allows; every
// connection ends; nothing leaked.
func raceMethods(t *testing.T, s *Suite) {
	seed := caseSeed(t)
	var (
		run    raceRun
		opened = make(chan *raceConn, raceConns)
		opens  atomic.Int32
		closes atomic.Int32
		ended  = make(chan struct{}) // closed at the raceConns-th OnClose
	)
	h := handler(hooks{
		Open: func(c transports.Conn) {
			rc := &raceConn{id: int(opens.Add(1)), c: c}
			c.SetContext(rc)
			opened <- rc
		},
		Data: func(c transports.Conn, in []byte) int {
			rc, ok := c.Context().(*raceConn)
			if !ok {
				run.faults.add("OnData before OnOpen", "OnData on a Conn without OnOpen")
				return len(in)
			}
			return run.onData(rc, in)
		},
		Close: func(c transports.Conn, err error) {
			rc, ok := c.Context().(*raceConn)
			if !ok {
				run.faults.add("OnClose before OnOpen", "OnClose on a Conn without OnOpen")
				return
			}
			if !rc.inCallback.CompareAndSwap(false, true) {
				run.faults.add("callbacks at once", "conn %d: OnClose while another callback of it runs", rc.id)
			} else {
				defer rc.inCallback.Store(false)
			}
			if n := rc.closes.Add(1); n != 1 {
				run.faults.add("OnClose twice", "conn %d: OnClose %d times", rc.id, n)
				return
			}
			switch {
			case err == nil, bufIsReset(err), errors.Is(err, os.ErrDeadlineExceeded):
			case errors.Is(err, transports.ErrAborted) && rc.aborted.Load():
			default:
				run.faults.add("OnClose error", "conn %d: OnClose err = %v", rc.id, err)
			}
			if closes.Add(1) == raceConns {
				close(ended)
			}
		},
	})
	tr := s.Open(t, nil)
	ln := s.Listen(t, tr, h)

	// Dial one at a time, so that each OnOpen is known to be its client's.
	// Each client is closed by its reader.
	conns := make([]*raceConn, raceConns)
	var readers sync.WaitGroup
	t.Cleanup(func() {
		for _, rc := range conns {
			if rc != nil {
				rc.client.Close() // ends its reader, should the case fail early
			}
		}
		readers.Wait()
	})
	for i := range conns {
		client, err := dialRetrying(ln.Addr())
		if err != nil {
			t.Fatalf("dial %v: %v", ln.Addr(), err)
		}
		rc := bufAwait(t, opened, fmt.Sprintf("OnOpen %d of %d", i+1, raceConns))
		rc.client = client
		conns[i] = rc
		readers.Add(1)
		go func() {
			defer readers.Done()
			run.read(rc)
		}()
	}

	start := time.Now()
	var controllers sync.WaitGroup
	for g := range raceControllers {
		controllers.Add(1)
		go func() {
			defer controllers.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			for range raceRounds {
				for _, i := range rng.Perm(len(conns)) {
					run.visit(rng, conns[i])
				}
			}
			for _, i := range rng.Perm(len(conns)) {
				rc := conns[i]
				raceSend(rc)
				run.stop(rc, rng.IntN(2) == 0, false, false)
				raceSend(rc)
			}
		}()
	}
	controllers.Wait()
	raced := time.Since(start)

	select {
	case <-ended:
	case <-time.After(3 * stepTimeout):
		t.Fatalf("%d OnClose of %d, %v after every Conn was closed or aborted", closes.Load(), raceConns, 3*stepTimeout)
	}
	readers.Wait()
	for deadline := time.Now().Add(stepTimeout); tr.Stats().Open() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("Stats().Open() = %d %v after every OnClose, want 0", tr.Stats().Open(), stepTimeout)
			break
		}
	}
	late := 0
	for _, rc := range conns {
		late += rc.lateData // every callback has returned
	}
	t.Logf("%d connections, %d goroutines, %v: %d OnData; %d quiet pauses and %d quiet closes or aborts, %d followed by the client's FIN; %d OnData entered after a call that was neither quiet nor followed by input", raceConns, raceControllers, raced.Round(time.Millisecond), run.datas.Load(), run.quietPauses.Load(), run.quietStops.Load(), run.fins.Load(), late)
	if run.quietPauses.Load() == 0 {
		t.Errorf("no quiet pause: the case checked nothing by quiet")
	}
	run.faults.check(t)
}

// onData is the Handler's OnData: it checks, then consumes every whole
// chunk (all but the last, every other time), writing them back.
func (run *raceRun) onData(rc *raceConn, in []byte) int {
	// What held as the call began.
	gen, stopped := rc.gen.Load(), rc.stopped.Load()
	quietGen, quietStop := rc.quietGen.Load(), rc.quietStop.Load()
	if !rc.inCallback.CompareAndSwap(false, true) {
		run.faults.add("callbacks at once", "conn %d: OnData while another callback of it runs", rc.id)
		return len(in)
	}
	defer rc.inCallback.Store(false)
	rc.offerDue.Store(false)
	run.datas.Add(1)
	switch {
	case rc.closes.Load() != 0:
		run.faults.add("OnData after OnClose", "conn %d: OnData after OnClose", rc.id)
	case quietStop:
		run.faults.add("OnData after Close", "conn %d: OnData (%d bytes) after Close or Abort had returned, with nothing due to the Conn when it was called", rc.id, len(in))
	case gen%2 == 1 && gen == quietGen:
		run.faults.add("OnData after PauseRead", "conn %d: OnData (%d bytes) after PauseRead had returned, with nothing due to the Conn when it was called, and no ResumeRead called since", rc.id, len(in))
	case stopped || gen%2 == 1:
		rc.lateData++ // perhaps chosen before the call returned
	}
	whole := len(in) / raceChunk * raceChunk
	for off := 0; off < whole; off += raceChunk {
		ch := in[off : off+raceChunk]
		switch {
		case string(ch[5:]) != "..\n":
			run.faults.add("stream corrupt", "conn %d: at offset %d of OnData's input, %q is no chunk: bytes were lost, repeated or reordered", rc.id, off, ch)
			return len(in)
		case ch[0] == raceClosed:
			run.faults.add("OnData after Close", "conn %d: OnData with bytes sent after Close or Abort had returned", rc.id)
		case ch[0] == racePaused && binary.LittleEndian.Uint32(ch[1:5]) == gen:
			run.faults.add("OnData after PauseRead", "conn %d: OnData with bytes sent after PauseRead had returned, and no ResumeRead called since", rc.id)
		}
	}
	n := whole
	if rc.keepNext && n > 0 {
		n -= raceChunk // offered again with the next input, at ResumeRead, or at the FIN
	}
	rc.keepNext = !rc.keepNext
	run.write(rc, "Write in OnData", in[:n])
	base := rc.consumed.Load()
	if end := base + int64(len(in)); end > rc.seen.Load() {
		rc.seen.Store(end)
	}
	rc.consumed.Store(base + int64(n))
	return n
}

// visit is one controller's visit to rc: a client chunk (or not), one
// method, and a client chunk; after a quiet pause, Close or Abort, the
// client's FIN instead of the last chunk, one time in four.
func (run *raceRun) visit(rng *rand.Rand, rc *raceConn) {
	if rng.IntN(2) == 0 {
		raceSend(rc)
	}
	if rng.IntN(4) == 0 {
		runtime.Gosched() // let the OnData the chunk started get under way
	}
	fin := false
	switch r := rng.IntN(1000); {
	case r < 490:
		run.write(rc, "Write", []byte("from a goroutine\n"))
	case r < 970:
		rc.ctl.Lock()
		if rc.gen.Load()%2 == 1 {
			// Before the call: OnData may start at once.
			rc.offerDue.Store(true)
			rc.gen.Add(1)
			rc.c.ResumeRead()
		} else {
			quiet := rc.quiet()
			rc.c.PauseRead()
			g := rc.gen.Add(1)
			if quiet {
				rc.quietGen.Store(g)
				run.quietPauses.Add(1)
				if fin = rng.IntN(4) == 0; fin {
					run.fin(rc)
				}
			}
		}
		rc.ctl.Unlock()
	case r < 980:
		rc.closeWrote.Store(true)
		if err := rc.c.CloseWrite(); err != nil && !errors.Is(err, net.ErrClosed) {
			run.faults.add("CloseWrite error", "conn %d: CloseWrite = %v, want nil or net.ErrClosed", rc.id, err)
		}
	default:
		fin = run.stop(rc, r >= 990, rng.IntN(2) == 0, rng.IntN(4) == 0)
	}
	if !fin {
		raceSend(rc)
	}
}

// stop closes or aborts rc's Conn. With ctl, it holds rc.ctl to see
// whether the Conn is quiet, and if so and fin, sends the client's FIN
// after the call and reports that it did; without, it races the other
// controllers' Close, Abort and PauseRead too.
func (run *raceRun) stop(rc *raceConn, abort, ctl, fin bool) bool {
	quiet := false
	if ctl {
		rc.ctl.Lock()
		defer rc.ctl.Unlock()
		quiet = rc.quiet()
	}
	name, call := "Close", rc.c.Close
	if abort {
		rc.aborted.Store(true)
		name, call = "Abort", rc.c.Abort
	}
	if err := call(); err != nil && !errors.Is(err, net.ErrClosed) {
		run.faults.add(name+" error", "conn %d: %s = %v, want nil or net.ErrClosed", rc.id, name, err)
	}
	rc.stopped.Store(true)
	if !quiet {
		return false
	}
	rc.quietStop.Store(true)
	run.quietStops.Add(1)
	if fin {
		run.fin(rc)
	}
	return fin
}

// fin sends the client's FIN. The caller holds rc.ctl.
func (run *raceRun) fin(rc *raceConn) {
	rc.finSent.Store(true)
	run.fins.Add(1)
	rc.client.(interface{ CloseWrite() error }).CloseWrite()
}

// write writes p on rc's Conn and checks the result: all of p, or nothing
// and a "write" *net.OpError wrapping net.ErrClosed, or EPIPE once
// CloseWrite has been called; an error once Close or Abort has returned.
func (run *raceRun) write(rc *raceConn, what string, p []byte) {
	stopped := rc.stopped.Load()
	n, err := rc.c.Write(p)
	var op *net.OpError
	switch {
	case err == nil && stopped:
		run.faults.add(what+" after Close", "conn %d: %s after Close or Abort had returned: no error", rc.id, what)
	case err == nil && n == len(p):
	case err == nil:
		run.faults.add(what+" count", "conn %d: %s returned %d of %d bytes, no error", rc.id, what, n, len(p))
	case n != 0 || !errors.As(err, &op) || op.Op != "write":
		run.faults.add(what+" error", "conn %d: %s = %d, %v; want 0 and a \"write\" *net.OpError", rc.id, what, n, err)
	case errors.Is(err, net.ErrClosed):
	case errors.Is(err, syscall.EPIPE) && rc.closeWrote.Load():
	default:
		run.faults.add(what+" error", "conn %d: %s = %v; want net.ErrClosed, or EPIPE after CloseWrite", rc.id, what, err)
	}
}

// read reads and drops what rc's server sends until it ends the
// connection, then closes the client, sending its FIN if it has not.
func (run *raceRun) read(rc *raceConn) {
	rc.client.SetReadDeadline(time.Now().Add(raceEndWait))
	if _, err := io.Copy(io.Discard, rc.client); err != nil && !bufIsReset(err) {
		run.faults.add("client read", "conn %d: the client's read ended with %v, want EOF or a reset", rc.id, err)
	}
	rc.ctl.Lock()
	rc.finSent.Store(true)
	rc.client.Close()
	rc.ctl.Unlock()
}

// raceSend writes one chunk on rc's client, saying what it knows of the
// server's Conn. It holds rc.ctl, so that no ResumeRead comes between what
// the chunk says and its write. Errors are the connection's end, which the
// reader sees.
func raceSend(rc *raceConn) {
	var ch [raceChunk]byte
	copy(ch[5:], "..\n")
	rc.ctl.Lock()
	defer rc.ctl.Unlock()
	switch g := rc.gen.Load(); {
	case rc.stopped.Load():
		ch[0] = raceClosed
	case g%2 == 1:
		ch[0] = racePaused
		binary.LittleEndian.PutUint32(ch[1:5], g)
	default:
		ch[0] = raceAny
	}
	rc.sent.Add(raceChunk)
	rc.client.SetWriteDeadline(time.Now().Add(stepTimeout))
	rc.client.Write(ch[:])
}

// raceFaults collects faults by kind, keeping a few examples of each: a
// broken transport makes thousands of the same.
type raceFaults struct {
	mu    sync.Mutex
	kinds map[string]*raceFault
}

type raceFault struct {
	n        int
	examples []string
}

func (f *raceFaults) add(kind, format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.kinds == nil {
		f.kinds = map[string]*raceFault{}
	}
	k := f.kinds[kind]
	if k == nil {
		k = &raceFault{}
		f.kinds[kind] = k
	}
	k.n++
	if len(k.examples) < 3 {
		k.examples = append(k.examples, fmt.Sprintf(format, args...))
	}
}

// check reports every kind of fault as an error of t.
func (f *raceFaults) check(t testing.TB) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	kinds := make([]string, 0, len(f.kinds))
	for k := range f.kinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		t.Errorf("%s: %d times; e.g. %s", k, f.kinds[k].n, strings.Join(f.kinds[k].examples, "; "))
	}
}
