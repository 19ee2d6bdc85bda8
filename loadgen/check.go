package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"
)

// CheckResult is the outcome of one check of Check.
type CheckResult struct {
	Name    string
	Err     error // nil: passed
	Skipped string
	Elapsed time.Duration
}

// Checks lists the checks Check runs, in order, with what each asks of
// the server. The rules are the conformance suite's (conformance/
// echo-integrity, peer-fin, peer-reset, write-backpressure), seen from
// outside: any echo server can be graded, merlin's or a peer.
var Checks = []struct{ Name, Rule string }{
	{"pipelined", "8 connections each pipeline 300 messages of 1 B to 16 KiB while reading: every byte comes back, in order, on its own connection"},
	{"large", "16 MiB written in writes of up to 1 MiB while reading: every byte comes back"},
	{"half-close", "256 KiB then FIN (shutdown SHUT_WR): every echo arrives, then EOF, not a reset"},
	{"fin-only", "FIN right after connecting: the server closes too (EOF)"},
	{"resets", "RST right after connecting, and RST with 1 MiB unread by the client: the server goes on serving others"},
	{"slow-reader", "one client sends 4 MiB and reads 4 KiB every 5 ms: its echoes are exact, and meanwhile another client is answered at once"},
	{"many-conns", "256 connections open together, one 1 KiB exchange each"},
	{"alive", "after all that, one more exchange"},
}

// Check grades the echo server at addr with the checks named in only
// (every one of Checks if none). Every I/O has a deadline of timeout (10 s
// if 0), so a stuck server fails a check instead of hanging.
func Check(ctx context.Context, network, addr string, timeout time.Duration, only ...string) []CheckResult {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	k := &checker{network: network, addr: addr, timeout: timeout, rng: rand.New(rand.NewPCG(1, 2))}
	funcs := map[string]func(context.Context) error{
		"pipelined":   k.pipelined,
		"large":       k.large,
		"half-close":  k.halfClose,
		"fin-only":    k.finOnly,
		"resets":      k.resets,
		"slow-reader": k.slowReader,
		"many-conns":  k.manyConns,
		"alive":       func(context.Context) error { return k.exchangeOnce(4 << 10) },
	}
	// A server that cannot be reached fails once, not every check.
	start := time.Now()
	if err := k.exchangeOnce(1 << 10); err != nil {
		return []CheckResult{{Name: "connect", Err: fmt.Errorf("the server does not answer: %w", err), Elapsed: time.Since(start)}}
	}
	var out []CheckResult
	for _, c := range Checks {
		if len(only) > 0 && !slices.Contains(only, c.Name) {
			continue
		}
		start := time.Now()
		r := CheckResult{Name: c.Name}
		if ctx.Err() != nil {
			r.Err = ctx.Err()
		} else if c.Name == "resets" && network == "unix" {
			r.Skipped = "unix sockets have no RST"
		} else {
			r.Err = funcs[c.Name](ctx)
		}
		r.Elapsed = time.Since(start)
		out = append(out, r)
	}
	return out
}

type checker struct {
	network, addr string
	timeout       time.Duration
	mu            sync.Mutex
	rng           *rand.Rand // guarded by mu
}

func (k *checker) random(n int) []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(k.rng.Uint32())
	}
	return b
}

func (k *checker) intn(n int) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rng.IntN(n)
}

func (k *checker) dial() (net.Conn, error) {
	return net.DialTimeout(k.network, k.addr, k.timeout)
}

// dl sets a deadline of d before every Read and Write of its Conn.
type dl struct {
	net.Conn
	d time.Duration
}

func (c dl) Read(p []byte) (int, error) {
	c.SetReadDeadline(time.Now().Add(c.d))
	return c.Conn.Read(p)
}

func (c dl) Write(p []byte) (int, error) {
	c.SetWriteDeadline(time.Now().Add(c.d))
	return c.Conn.Write(p)
}

// duplex writes payload in chunks of at most chunk bytes from one
// goroutine while reading the echo in another, and compares.
func (k *checker) duplex(c net.Conn, payload []byte, chunk int) error {
	werr := make(chan error, 1)
	go func() {
		for off := 0; off < len(payload); {
			n := min(1+k.intn(chunk), len(payload)-off)
			if _, err := (dl{c, k.timeout}).Write(payload[off : off+n]); err != nil {
				werr <- fmt.Errorf("write at byte %d: %w", off, err)
				return
			}
			off += n
		}
		werr <- nil
	}()
	got := make([]byte, len(payload))
	n, rerr := io.ReadFull(dl{c, k.timeout}, got)
	if rerr != nil {
		c.SetDeadline(time.Now()) // unblock the writer
	}
	if err := <-werr; err != nil && rerr == nil {
		return err
	}
	if d := streamDiff(payload, got[:n]); d != "" {
		return errors.New(d)
	}
	if rerr != nil {
		return fmt.Errorf("read %d of %d bytes echoed, then %w", n, len(payload), rerr)
	}
	return nil
}

// streamDiff describes the first difference between want and got (got
// may be short), or returns "".
func streamDiff(want, got []byte) string { return streamDiffAt(want, got, 0) }

// streamDiffAt is streamDiff for got received at offset off of the
// stream.
func streamDiffAt(want, got []byte, off int) string {
	if off+len(got) > len(want) {
		return fmt.Sprintf("%d bytes echoed, more than the %d sent", off+len(got), len(want))
	}
	for i := range got {
		if want[off+i] != got[i] {
			return fmt.Sprintf("echo differs at byte %d of %d: want %#02x, got %#02x", off+i, len(want), want[off+i], got[i])
		}
	}
	return ""
}

// exchangeOnce makes one connection and echoes n bytes on it.
func (k *checker) exchangeOnce(n int) error {
	c, err := k.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	return k.duplex(c, k.random(n), n)
}

func (k *checker) pipelined(context.Context) error {
	const conns, msgs = 8, 300
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			c, err := k.dial()
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			var payload []byte
			for range msgs {
				payload = append(payload, k.random(1+k.intn(16<<10))...)
			}
			if err := k.duplex(c, payload, 64<<10); err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (k *checker) large(context.Context) error {
	c, err := k.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	return k.duplex(c, k.random(16<<20), 1<<20)
}

type halfCloser interface{ CloseWrite() error }

func (k *checker) halfClose(context.Context) error {
	c, err := k.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	payload := k.random(256 << 10)
	werr := make(chan error, 1)
	go func() {
		for off := 0; off < len(payload); off += 32 << 10 {
			if _, err := (dl{c, k.timeout}).Write(payload[off : off+32<<10]); err != nil {
				werr <- err
				return
			}
		}
		werr <- c.(halfCloser).CloseWrite()
	}()
	got, rerr := io.ReadAll(dl{c, k.timeout})
	if err := <-werr; err != nil {
		return fmt.Errorf("client write or FIN: %w", err)
	}
	if d := streamDiff(payload, got); d != "" {
		return errors.New(d)
	}
	if rerr != nil {
		return fmt.Errorf("read %d of %d bytes echoed, then %w; want every byte, then EOF", len(got), len(payload), rerr)
	}
	if len(got) != len(payload) {
		return fmt.Errorf("EOF after %d of %d bytes echoed", len(got), len(payload))
	}
	return nil
}

func (k *checker) finOnly(context.Context) error {
	c, err := k.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.(halfCloser).CloseWrite(); err != nil {
		return err
	}
	got, err := io.ReadAll(dl{c, k.timeout})
	if err != nil || len(got) > 0 {
		return fmt.Errorf("read %d bytes, then %v; want EOF (the server's FIN)", len(got), err)
	}
	return nil
}

// reset closes c with SO_LINGER 0: the peer sees RST.
func reset(c net.Conn) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c.Close()
	}
	if err := tc.SetLinger(0); err != nil {
		return err
	}
	return tc.Close()
}

func (k *checker) resets(context.Context) error {
	// Reset with nothing pending.
	for range 20 {
		c, err := k.dial()
		if err != nil {
			return err
		}
		reset(c)
	}
	if err := k.exchangeOnce(1 << 10); err != nil {
		return fmt.Errorf("after resets of new connections: %w", err)
	}
	// Reset with input unread by the server or output unread by us: the
	// client writes 1 MiB without reading, so the server's output backs
	// up, then resets.
	for range 5 {
		c, err := k.dial()
		if err != nil {
			return err
		}
		payload := k.random(1 << 20)
		c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		c.Write(payload) // stops once both directions' buffers are full
		reset(c)
	}
	if err := k.exchangeOnce(64 << 10); err != nil {
		return fmt.Errorf("after resets with data pending: %w", err)
	}
	return nil
}

func (k *checker) slowReader(ctx context.Context) error {
	slow, err := k.dial()
	if err != nil {
		return err
	}
	defer slow.Close()
	payload := k.random(4 << 20)
	werr := make(chan error, 1)
	go func() {
		_, err := (dl{slow, k.timeout}).Write(payload)
		werr <- err
	}()
	got := make([]byte, 0, len(payload))
	buf := make([]byte, 4<<10)
	done := make(chan error, 1)
	go func() {
		// Meanwhile another client must be answered at once: a server
		// that blocks on the slow client's output fails here.
		for range 20 {
			if err := k.exchangeOnce(1 << 10); err != nil {
				done <- fmt.Errorf("another client while one reads slowly: %w", err)
				return
			}
		}
		done <- nil
	}()
	var other error
	tick := time.NewTicker(5 * time.Millisecond) // the slow reader's pace: the case's definition
	defer tick.Stop()
	finished := false
	for len(got) < len(payload) {
		if !finished {
			select {
			case other = <-done:
				finished = true
			case <-tick.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		n, err := (dl{slow, k.timeout}).Read(buf)
		if d := streamDiffAt(payload, buf[:n], len(got)); d != "" {
			return errors.New(d)
		}
		got = append(got, buf[:n]...)
		if err != nil {
			return fmt.Errorf("slow reader: read %d of %d bytes, then %w", len(got), len(payload), err)
		}
	}
	if !finished {
		other = <-done
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("slow reader's write: %w", err)
	}
	return other
}

func (k *checker) manyConns(context.Context) error {
	const n = 256
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := k.dial()
		if err != nil {
			if errors.Is(err, syscall.EMFILE) {
				return fmt.Errorf("the checker ran out of descriptors: %w", err)
			}
			return fmt.Errorf("connection %d: %w", len(conns), err)
		}
		conns = append(conns, c)
	}
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			if err := k.duplex(c, k.random(1<<10), 1<<10); err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
