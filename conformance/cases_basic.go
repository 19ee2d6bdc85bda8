package conformance

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/merlin-net/merlin/transports"
)

// basicCases are the core of the contract: callback order, byte-exact
// echo, consumed and kept bytes, and connections sharing a loop.
var basicCases = []testCase{
	{name: "callback-order", run: testCallbackOrder},
	{name: "echo-integrity", smoke: true, run: testEchoIntegrity},
	{name: "consumed-bytes", run: testConsumedBytes},
	{name: "batch-isolation", tcpOnly: true, run: testBatchIsolation},
}

// stepTimeout bounds every blocking step of a case: a client read or
// write, a wait for a callback. A transport that stalls fails the case
// after it instead of hanging the suite.
const stepTimeout = 10 * time.Second

// testCallbackOrder checks the order of callbacks (DESIGN.md, Order and
// threads) over many concurrent connections: OnOpen first and once,
// OnClose last and once, at most one OnReadEOF and no OnData after it, and
// no two callbacks of one Conn at the same time.
func testCallbackOrder(t *testing.T, s *Suite) {
	const (
		conns    = 500
		inFlight = 64 // dials at once, well under any listen backlog
	)
	rec := newOrderRecorder(conns)
	tr := s.Open(t, nil)
	ln := s.Listen(t, tr, rec.handler())
	addr := ln.Addr()

	// Every client dials, sends, reads its echo, and waits until all have
	// done so: the 500 connections are open at the same time. Then half
	// close with CloseWrite and read the server's FIN, half just close.
	var (
		echoed  sync.WaitGroup
		done    sync.WaitGroup
		slots   = make(chan struct{}, inFlight)
		allOpen = make(chan struct{})
	)
	echoed.Add(conns)
	done.Add(conns)
	go func() { echoed.Wait(); close(allOpen) }()
	for i := range conns {
		go func() {
			defer done.Done()
			markEchoed := sync.OnceFunc(echoed.Done)
			defer markEchoed()
			if err := orderClient(i, addr, slots, markEchoed, allOpen); err != nil {
				t.Errorf("client %d: %v", i, err)
			}
		}()
	}
	done.Wait()

	select {
	case <-rec.allClosed:
	case <-time.After(stepTimeout):
		t.Errorf("after %v, OnClose has run for %d of %d connections", stepTimeout, rec.closes.Load(), conns)
	}
	// Transport Close returns after every callback has returned: a
	// callback after OnClose is in the traces by now.
	if err := tr.Close(); err != nil {
		t.Errorf("transport Close: %v", err)
	}
	rec.check(t)
}

// orderClient is one client of testCallbackOrder.
func orderClient(i int, addr net.Addr, slots chan struct{}, echoed func(), allOpen <-chan struct{}) error {
	slots <- struct{}{}
	nc, err := net.DialTimeout(addr.Network(), addr.String(), stepTimeout)
	if err != nil {
		<-slots
		return err
	}
	defer nc.Close()
	c := deadlineConn{nc}
	msg := make([]byte, 1+i*61%2048)
	for j := range msg {
		msg[j] = byte(i*7 + j)
	}
	_, err = c.Write(msg)
	got := make([]byte, len(msg))
	if err == nil {
		_, err = io.ReadFull(c, got)
	}
	<-slots
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	if d := streamDiff(msg, got, 0); d != "" {
		return fmt.Errorf("echo differs: %s", d)
	}
	echoed()
	<-allOpen
	if i%2 == 1 {
		return nil // Close, deferred
	}
	if err := nc.(halfCloser).CloseWrite(); err != nil {
		return err
	}
	// The server's OnReadEOF closes: the client reads its FIN.
	if rest, err := io.ReadAll(c); err != nil || len(rest) > 0 {
		return fmt.Errorf("after CloseWrite: read %d more bytes, then %v; want io.EOF at once", len(rest), err)
	}
	return nil
}

// orderRecorder is an echo Handler with OnReadEOF and OnDrain that records
// the callbacks of every Conn.
type orderRecorder struct {
	want      int64
	mu        sync.Mutex
	traces    map[transports.Conn]*callTrace // guarded by mu
	closeErrs []error                        // guarded by mu
	closes    atomic.Int64
	allClosed chan struct{} // closed at the want-th OnClose
}

func newOrderRecorder(want int) *orderRecorder {
	return &orderRecorder{want: int64(want), traces: map[transports.Conn]*callTrace{}, allClosed: make(chan struct{})}
}

// trace returns c's trace, made by whichever callback comes first (so that
// a callback before OnOpen shows as such).
func (r *orderRecorder) trace(c transports.Conn) *callTrace {
	r.mu.Lock()
	defer r.mu.Unlock()
	tr := r.traces[c]
	if tr == nil {
		tr = new(callTrace)
		r.traces[c] = tr
	}
	return tr
}

func (r *orderRecorder) handler() transports.Handler {
	return handler(hooks{
		Open: func(c transports.Conn) {
			defer r.trace(c).enter(onOpen)()
		},
		Data: func(c transports.Conn, in []byte) int {
			defer r.trace(c).enter(onData)()
			c.Write(in)
			return len(in)
		},
		Drain: func(c transports.Conn) {
			defer r.trace(c).enter(onDrain)()
		},
		ReadEOF: func(c transports.Conn) {
			defer r.trace(c).enter(onReadEOF)()
			c.Close()
		},
		Close: func(c transports.Conn, err error) {
			defer r.trace(c).enter(onClose)()
			if err != nil {
				r.mu.Lock()
				r.closeErrs = append(r.closeErrs, err)
				r.mu.Unlock()
			}
			if r.closes.Add(1) == r.want {
				close(r.allClosed)
			}
		},
	})
}

// check reports every Conn whose callbacks broke the order, or overlapped,
// and any OnClose error (every close in testCallbackOrder is orderly).
func (r *orderRecorder) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	type counts struct{ Conns, Opens, Closes, BadConns, Overlapping int }
	got := counts{Conns: len(r.traces)}
	var bad []string
	for _, tr := range r.traces {
		calls, overlaps := tr.snapshot()
		for _, c := range calls {
			switch c {
			case onOpen:
				got.Opens++
			case onClose:
				got.Closes++
			}
		}
		if overlaps > 0 {
			got.Overlapping++
		}
		if p := orderProblems(calls); len(p) > 0 || overlaps > 0 {
			got.BadConns++
			if len(bad) < 5 {
				bad = append(bad, fmt.Sprintf("%s (%d overlapping): %s", strings.Join(p, "; "), overlaps, strings.Join(condense(calls), " ")))
			}
		}
	}
	want := counts{Conns: int(r.want), Opens: int(r.want), Closes: int(r.want)}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("callbacks (-want +got):\n%s\nfirst bad Conns:\n  %s", d, strings.Join(bad, "\n  "))
	}
	if len(r.closeErrs) > 0 {
		t.Errorf("%d OnClose errors after orderly closes, first: %v", len(r.closeErrs), r.closeErrs[0])
	}
}

// The callbacks as a callTrace names them.
const (
	onOpen    = "OnOpen"
	onData    = "OnData"
	onDrain   = "OnDrain"
	onReadEOF = "OnReadEOF"
	onClose   = "OnClose"
)

// callTrace records the callbacks of one Conn in order, and notices two of
// them running at the same time.
type callTrace struct {
	busy     atomic.Bool
	mu       sync.Mutex
	calls    []string // guarded by mu
	overlaps int      // guarded by mu
}

// enter records the start of callback name; the caller runs the returned
// function when the callback returns.
func (tr *callTrace) enter(name string) (exit func()) {
	overlap := !tr.busy.CompareAndSwap(false, true)
	tr.mu.Lock()
	tr.calls = append(tr.calls, name)
	if overlap {
		tr.overlaps++
	}
	tr.mu.Unlock()
	runtime.Gosched() // widen the window in which an overlap shows
	return func() {
		if !overlap {
			tr.busy.Store(false)
		}
	}
}

// snapshot returns the calls so far and how many began while another ran.
func (tr *callTrace) snapshot() (calls []string, overlaps int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.calls...), tr.overlaps
}

// orderProblems lists how calls break DESIGN.md's order: OnOpen first and
// once; OnData and OnDrain in any order; at most one OnReadEOF, then no
// OnData; OnClose once and last.
func orderProblems(calls []string) []string {
	var p []string
	if len(calls) == 0 || calls[0] != onOpen {
		p = append(p, "OnOpen is not first")
	}
	n := map[string]int{}
	dataAfterEOF := false
	for _, c := range calls {
		if c == onData && n[onReadEOF] > 0 {
			dataAfterEOF = true
		}
		n[c]++
	}
	if n[onOpen] != 1 {
		p = append(p, fmt.Sprintf("%d OnOpen", n[onOpen]))
	}
	if n[onClose] != 1 {
		p = append(p, fmt.Sprintf("%d OnClose", n[onClose]))
	}
	if len(calls) > 0 && calls[len(calls)-1] != onClose {
		p = append(p, "OnClose is not last")
	}
	if n[onReadEOF] > 1 {
		p = append(p, fmt.Sprintf("%d OnReadEOF", n[onReadEOF]))
	}
	if dataAfterEOF {
		p = append(p, "OnData after OnReadEOF")
	}
	return p
}

// condense writes each run of consecutive OnData calls as one "OnData*",
// so that a sequence compares with cmp.Diff whatever the reads' sizes.
func condense(calls []string) []string {
	var out []string
	for i, c := range calls {
		if c == onData {
			if i > 0 && calls[i-1] == onData {
				continue
			}
			c = onData + "*"
		}
		out = append(out, c)
	}
	return out
}

// testEchoIntegrity echoes about 40 MiB over four connections at once, in
// messages of 1 B to 16 MiB written in random chunks by a writer that runs
// ahead of the reader, and compares every byte.
func testEchoIntegrity(t *testing.T, s *Suite) {
	const (
		conns    = 4
		total    = 40 << 20
		largest  = 16 << 20
		maxRand  = 4 << 20
		maxChunk = 256 << 10
	)
	rng := rand.New(rand.NewPCG(caseSeed(t), 0))
	sizes := []int{1, largest}
	sum := 1 + largest
	for sum < total {
		n := logUniform(rng, 1, maxRand)
		sizes = append(sizes, n)
		sum += n
	}
	rng.Shuffle(len(sizes), func(i, j int) { sizes[i], sizes[j] = sizes[j], sizes[i] })
	msgs := make([][]int, conns) // sizes of each connection's messages
	for i, n := range sizes {
		msgs[i%conns] = append(msgs[i%conns], n)
	}

	tr := s.Open(t, nil)
	ln := s.Listen(t, tr, echoHandler{})
	var wg sync.WaitGroup
	for k := range conns {
		c := s.DialClient(t, ln)
		streamLen := 0
		for _, n := range msgs[k] {
			streamLen += n
		}
		stream := randomBytes(rng, streamLen)
		wrng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := writeChunked(deadlineConn{c}, wrng, stream, maxChunk); err != nil {
				t.Errorf("conn %d: write: %v", k, err)
			}
		}()
		go func() {
			defer wg.Done()
			if err := readMessages(deadlineConn{c}, stream, msgs[k]); err != nil {
				t.Errorf("conn %d: %v", k, err)
				c.Close() // unblock the writer
			}
		}()
	}
	wg.Wait()
}

// readMessages reads the echo of stream, cut into messages of the given
// sizes, and reports the first difference.
func readMessages(c io.Reader, stream []byte, sizes []int) error {
	largest := 0
	for _, n := range sizes {
		largest = max(largest, n)
	}
	buf := make([]byte, largest)
	off := 0
	for i, n := range sizes {
		got := buf[:n]
		if m, err := io.ReadFull(c, got); err != nil {
			return fmt.Errorf("message %d (%d B at stream offset %d): read %d B, then %w", i, n, off, m, err)
		}
		if d := streamDiff(stream[off:off+n], got, off); d != "" {
			return fmt.Errorf("message %d (%d B from stream offset %d) echoed wrong: %s", i, n, off, d)
		}
		off += n
	}
	return nil
}

// testConsumedBytes runs handlers that consume odd-sized prefixes, or
// nothing, and checks that every byte is offered until it is consumed,
// exactly once: the consumed prefixes put together are what the client
// sent, and each OnData begins with what the previous one kept.
func testConsumedBytes(t *testing.T, s *Suite) {
	const (
		conns   = 3
		payload = 256 << 10
		reserve = 64 << 10 // filler sent one byte at a time at the end
	)
	rng := rand.New(rand.NewPCG(caseSeed(t), 0))
	tr := s.Open(t, nil)
	var wg sync.WaitGroup
	for k := range conns {
		// One listener and one client each, so a handler's state is its
		// connection's.
		st := &consumer{
			rng:      rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())),
			progress: make(chan struct{}, 1),
			closed:   make(chan error, 1),
		}
		ln := s.Listen(t, tr, st.handler())
		c := s.DialClient(t, ln)
		stream := randomBytes(rng, payload+reserve)
		wrng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.feed(deadlineConn{c}, wrng, stream, payload); err != nil {
				t.Errorf("conn %d: %v", k, err)
				return
			}
			c.Close()
			select {
			case err := <-st.closed:
				if err != nil {
					t.Errorf("conn %d: OnClose after the peer's FIN: %v, want nil", k, err)
				}
			case <-time.After(stepTimeout):
				t.Errorf("conn %d: no OnClose %v after the client closed", k, stepTimeout)
			}
			if err := st.check(stream, payload); err != nil {
				t.Errorf("conn %d: %v", k, err)
			}
		}()
	}
	wg.Wait()
}

// consumer is the handler of testConsumedBytes for one connection.
type consumer struct {
	rng      *rand.Rand // used by callbacks only
	progress chan struct{}
	closed   chan error

	mu       sync.Mutex
	opens    int
	consumed []byte   // every consumed prefix, in order
	kept     []byte   // what the last OnData left
	seen     int      // bytes offered so far: consumed, then kept
	problems []string // broken rules, at most a few
}

func (st *consumer) handler() transports.Handler {
	return handler(hooks{
		Open: func(transports.Conn) {
			st.mu.Lock()
			st.opens++
			st.mu.Unlock()
		},
		Data: func(_ transports.Conn, in []byte) int {
			n := st.take(in)
			select {
			case st.progress <- struct{}{}:
			default:
			}
			return n
		},
		Close: func(_ transports.Conn, err error) { st.closed <- err },
	})
}

// take checks in against what was kept, then consumes a prefix of in: 0,
// 1, 7 or 13 bytes, or an odd number up to len(in).
func (st *consumer) take(in []byte) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(in) == 0 {
		st.problem("OnData with an empty in")
		return 0
	}
	if !bytes.HasPrefix(in, st.kept) {
		w := st.kept[:min(len(st.kept), len(in))]
		st.problem(fmt.Sprintf("OnData does not begin with the %d bytes kept by the previous call: %s", len(st.kept), streamDiff(w, in[:len(w)], len(st.consumed))))
	}
	var n int
	switch r := st.rng.IntN(6); r {
	case 0:
		n = 0
	case 1, 2, 3:
		n = []int{1, 7, 13}[r-1]
	default:
		n = st.rng.IntN(len(in)) | 1
	}
	n = min(n, len(in))
	st.consumed = append(st.consumed, in[:n]...)
	st.kept = append(st.kept[:0], in[n:]...)
	st.seen = len(st.consumed) + len(in) - n
	return n
}

func (st *consumer) problem(p string) {
	if len(st.problems) < 5 {
		st.problems = append(st.problems, p)
	}
}

// feed writes stream[:payload] in random chunks, then the rest one byte
// at a time, each after the handler has been offered the previous one,
// until the handler has consumed at least payload bytes. (A handler that
// keeps bytes is offered them again only when more arrive.)
func (st *consumer) feed(c net.Conn, rng *rand.Rand, stream []byte, payload int) error {
	if err := writeChunked(c, rng, stream[:payload], 16<<10); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	written := payload
	for {
		st.mu.Lock()
		consumed, seen := len(st.consumed), st.seen
		st.mu.Unlock()
		switch {
		case consumed >= payload:
			return nil
		case seen >= written && written == len(stream):
			return fmt.Errorf("the handler consumed %d of %d bytes after %d more; it should have consumed them all", consumed, payload, written-payload)
		case seen >= written:
			if _, err := c.Write(stream[written : written+1]); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			written++
		default:
			select {
			case <-st.progress:
			case <-time.After(stepTimeout):
				return fmt.Errorf("OnData has been offered %d of the %d bytes written, none for %v", seen, written, stepTimeout)
			}
		}
	}
}

// check compares what the handler consumed with what was sent.
func (st *consumer) check(stream []byte, payload int) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	var errs []error
	if st.opens != 1 {
		errs = append(errs, fmt.Errorf("%d OnOpen for one connection", st.opens))
	}
	for _, p := range st.problems {
		errs = append(errs, errors.New(p))
	}
	if len(st.consumed) < payload {
		errs = append(errs, fmt.Errorf("the handler consumed %d bytes, want at least %d", len(st.consumed), payload))
	}
	n := min(len(st.consumed), len(stream))
	if d := streamDiff(stream[:n], st.consumed, 0); d != "" {
		errs = append(errs, fmt.Errorf("the consumed bytes are not what the client sent: %s", d))
	}
	return errors.Join(errs...)
}

// testBatchIsolation blocks the only loop in one connection's OnData while
// two others receive 64 KiB each into the kernel, then unblocks it: the
// loop then serves both at once, and each must get back exactly its own
// bytes. On a transport without loops (sockets) the others are not
// blocked, and the case checks the isolation only.
func testBatchIsolation(t *testing.T, s *Suite) {
	const size = 64 << 10 // fits the server's receive window unread
	rng := rand.New(rand.NewPCG(caseSeed(t), 0))
	tr := s.Open(t, func(c *transports.Config) { c.Loops = 1 })

	entered, release := make(chan struct{}), make(chan struct{})
	enter, unblock := sync.OnceFunc(func() { close(entered) }), sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock) // before the transport's Close, which waits for OnData
	blocker := handler(hooks{Data: func(_ transports.Conn, in []byte) int {
		enter()
		<-release
		return len(in)
	}})
	bc := s.DialClient(t, s.Listen(t, tr, blocker))
	if _, err := (deadlineConn{bc}).Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	waitRecv(t, entered, "the blocking OnData")

	ln := s.Listen(t, tr, echoHandler{})
	clients := []net.Conn{s.DialClient(t, ln), s.DialClient(t, ln)}
	payloads := [][]byte{randomBytes(rng, size), randomBytes(rng, size)}
	var wg sync.WaitGroup
	for i, c := range clients {
		wrng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := writeChunked(deadlineConn{c}, wrng, payloads[i], 8<<10); err != nil {
				t.Errorf("client %d: write: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Wait until the server's kernel has acknowledged every byte.
	for deadline := time.Now().Add(stepTimeout); ; {
		var unsent [2]int
		for i, c := range clients {
			n, err := unsentBytes(c)
			if errors.Is(err, errors.ErrUnsupported) {
				s.Skip(t, err.Error())
			}
			if err != nil {
				t.Fatal(err)
			}
			unsent[i] = n
		}
		if unsent == [2]int{} {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %v bytes are still unacknowledged by the server's kernel", stepTimeout, unsent)
		}
		time.Sleep(2 * time.Millisecond) // polling a condition
	}
	unblock()
	for i, c := range clients {
		got := make([]byte, size)
		if n, err := io.ReadFull(deadlineConn{c}, got); err != nil {
			t.Fatalf("client %d: read %d of %d echoed bytes, then %v", i, n, size, err)
		}
		if d := streamDiff(payloads[i], got, 0); d != "" {
			other := "not"
			if bytes.Equal(got, payloads[1-i]) {
				other = "exactly"
			}
			t.Errorf("client %d: echo is not its own bytes (it is %s the other client's): %s", i, other, d)
		}
	}
}

// deadlineConn gives every Read and Write of a client connection a
// deadline of stepTimeout.
type deadlineConn struct{ net.Conn }

func (c deadlineConn) Read(p []byte) (int, error) {
	c.SetReadDeadline(time.Now().Add(stepTimeout))
	return c.Conn.Read(p)
}

func (c deadlineConn) Write(p []byte) (int, error) {
	c.SetWriteDeadline(time.Now().Add(stepTimeout))
	return c.Conn.Write(p)
}

// waitRecv returns the next value from ch, or fails t after stepTimeout.
func waitRecv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(stepTimeout):
		t.Fatalf("no %s after %v", what, stepTimeout)
		panic("unreachable")
	}
}

// streamDiff returns "" if got equals want, else the offset of their first
// difference (base is want's offset in its stream) and a go-cmp diff of
// the bytes around it.
func streamDiff(want, got []byte, base int) string {
	if bytes.Equal(want, got) {
		return ""
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	lo := max(0, i-16)
	w, g := want[lo:min(len(want), i+16)], got[lo:min(len(got), i+16)]
	return fmt.Sprintf("first difference at stream offset %d (want %d bytes, got %d); from offset %d (-want +got):\n%s",
		base+i, len(want), len(got), base+lo, cmp.Diff(w, g))
}

// envSeed, if set, is the seed of every random choice of the cases, to
// rerun a failure: MERLIN_CONFORMANCE_SEED=1234.
const envSeed = "MERLIN_CONFORMANCE_SEED"

// caseSeed returns the seed for the case's random choices, from envSeed
// or fresh, and logs it if the case fails.
func caseSeed(t *testing.T) uint64 {
	t.Helper()
	seed := rand.Uint64()
	if v := os.Getenv(envSeed); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: %v", envSeed, v, err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("random choices from seed %d: rerun with %s=%d", seed, envSeed, seed)
		}
	})
	return seed
}

// randomBytes returns n bytes from a ChaCha8 stream seeded by rng.
func randomBytes(rng *rand.Rand, n int) []byte {
	var key [32]byte
	for i := 0; i < len(key); i += 8 {
		binary.LittleEndian.PutUint64(key[i:], rng.Uint64())
	}
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// logUniform returns an integer in [lo, hi] whose logarithm is uniform, so
// that small and large values are equally common.
func logUniform(rng *rand.Rand, lo, hi int) int {
	x := float64(lo) * math.Exp(rng.Float64()*math.Log(float64(hi+1)/float64(lo)))
	return min(max(int(x), lo), hi)
}

// writeChunked writes p to c in chunks of log-uniform sizes up to
// maxChunk.
func writeChunked(c io.Writer, rng *rand.Rand, p []byte, maxChunk int) error {
	for len(p) > 0 {
		n := min(logUniform(rng, 1, maxChunk), len(p))
		if _, err := c.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}
