// Package loadgen is merlin's first load generator, for the echo workload.
//
// Each connection is one goroutine on Go's net package running a closed
// loop: it writes Depth messages of Size bytes in one write, reads the
// echoes back and compares every byte, then starts again, until Duration
// ends. Every message is distinct (it carries its connection's index and a
// sequence number, then a seeded pattern shifted by both), so a dropped,
// repeated, reordered or cross-wired byte is caught and reported with its
// offset. The server is never trusted: all I/O has a deadline.
//
//	res, err := loadgen.Config{Addr: "127.0.0.1:7000", Conns: 64, Duration: 5 * time.Second}.Run(ctx)
package loadgen

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config's fields.
const (
	DefaultNetwork   = "tcp"
	DefaultConns     = 1
	DefaultSize      = 64
	DefaultDepth     = 1
	DefaultDuration  = 10 * time.Second
	DefaultTimeout   = 10 * time.Second
	DefaultMaxErrors = 5
)

// Config describes one run. The zero value of a field means its default.
type Config struct {
	Network string // "tcp" (default), "tcp4", "tcp6" or "unix"
	Addr    string // the server's address; required
	Conns   int    // concurrent connections; default 1
	Size    int    // bytes per message; default 64
	Depth   int    // messages per write (pipelining depth); default 1
	// Duration is how long connections start new batches; batches in
	// flight when it ends are finished and counted. Default 10 s.
	Duration time.Duration
	// Timeout bounds each dial and each batch's write and read-back; a
	// server slower than that is an error. Default 10 s.
	Timeout time.Duration
	// Seed selects the payload pattern.
	Seed uint64
	// MaxErrors is how many error messages Result keeps (all are
	// counted). Default 5.
	MaxErrors int
	// Progress, if set, is called about once a second from a goroutine of
	// Run with the totals so far.
	Progress func(Progress)
}

// Progress is a snapshot of a run in progress.
type Progress struct {
	Elapsed  time.Duration
	Requests uint64 // messages echoed and checked
	Bytes    uint64 // payload bytes echoed and checked
	Errors   uint64
}

// Result is the outcome of a run.
type Result struct {
	Config   Config        // the run's Config, defaults filled in
	Elapsed  time.Duration // from the first dial until the last connection ended
	Requests uint64        // messages echoed and checked (Depth per batch)
	Bytes    uint64        // payload bytes echoed and checked, one direction
	// Errors counts failed connections: a connection stops at its first
	// error (a failed dial, write or read, or a mismatch), since its
	// stream can no longer be trusted.
	Errors uint64
	// FirstErrors holds the first Config.MaxErrors errors.
	FirstErrors []error
}

// RequestsPerSecond returns the rate of checked messages.
func (r Result) RequestsPerSecond() float64 { return perSecond(r.Requests, r.Elapsed) }

// MBPerSecond returns the rate of checked payload, in 10⁶ bytes per second
// as Go benchmarks count.
func (r Result) MBPerSecond() float64 { return perSecond(r.Bytes, r.Elapsed) / 1e6 }

func perSecond(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// MismatchError reports an echo that differs from what was sent.
type MismatchError struct {
	Conn   int    // connection index
	Batch  uint64 // batch number on that connection, from 0
	Offset int    // offset of the first differing byte in the batch
	Want   byte
	Got    byte
	// GotConn and GotSeq decode the header of the message holding the
	// difference as received (valid if HeaderOK), which names the
	// connection and message the bytes came from when streams are mixed.
	GotConn, GotSeq uint32
	HeaderOK        bool
	Size            int // message size, to place Offset in its message
}

func (e *MismatchError) Error() string {
	msg, off := e.Offset/e.Size, e.Offset%e.Size
	s := fmt.Sprintf("loadgen: conn %d batch %d: echo differs at byte %d (message %d, byte %d): want %#02x, got %#02x",
		e.Conn, e.Batch, e.Offset, msg, off, e.Want, e.Got)
	if e.HeaderOK {
		s += fmt.Sprintf(" (received message header says conn %d seq %d)", e.GotConn, e.GotSeq)
	}
	return s
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Network == "" {
		c.Network = DefaultNetwork
	}
	if c.Conns == 0 {
		c.Conns = DefaultConns
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Depth == 0 {
		c.Depth = DefaultDepth
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxErrors == 0 {
		c.MaxErrors = DefaultMaxErrors
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Addr == "":
		return errors.New("loadgen: no address")
	case c.Conns < 0 || c.Size < 0 || c.Depth < 0:
		return fmt.Errorf("loadgen: negative conns (%d), size (%d) or depth (%d)", c.Conns, c.Size, c.Depth)
	case c.Depth > (1<<30)/c.Size:
		return fmt.Errorf("loadgen: a batch of %d x %d bytes is over 1 GiB", c.Depth, c.Size)
	case c.Duration < 0 || c.Timeout < 0:
		return errors.New("loadgen: negative duration or timeout")
	}
	return nil
}

// Run runs the load until Config.Duration has passed or ctx ends, and
// returns what was checked. Its error is only for an invalid Config; I/O
// errors and mismatches are in Result.
func (c Config) Run(ctx context.Context) (Result, error) {
	c = c.withDefaults()
	if err := c.validate(); err != nil {
		return Result{}, err
	}
	r := &run{cfg: c, pattern: newPattern(c.Seed, c.Size)}

	// stop ends new batches; ctx (the caller's) also bounds dials and
	// in-flight I/O, so cancelling it ends a run promptly.
	stop, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()

	start := time.Now()
	var wg sync.WaitGroup
	for i := range c.Conns {
		wg.Go(func() {
			if err := r.conn(ctx, stop, i); err != nil {
				r.fail(err)
			}
		})
	}

	if c.Progress != nil {
		done := make(chan struct{})
		var pwg sync.WaitGroup
		pwg.Go(func() { r.report(start, done) })
		defer pwg.Wait()
		defer close(done)
	}
	wg.Wait()

	res := Result{
		Config:   c,
		Elapsed:  time.Since(start),
		Requests: r.requests.Load(),
		Bytes:    r.bytes.Load(),
		Errors:   r.errors.Load(),
	}
	r.mu.Lock()
	res.FirstErrors = r.first
	r.mu.Unlock()
	return res, nil
}

// run is the shared state of one Run.
type run struct {
	cfg     Config
	pattern []byte // read-only; see fill

	requests, bytes, errors atomic.Uint64

	mu    sync.Mutex
	first []error // guarded by mu
}

func (r *run) fail(err error) {
	r.errors.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.first) < r.cfg.MaxErrors {
		r.first = append(r.first, err)
	}
}

// report calls Config.Progress once a second until done is closed.
func (r *run) report(start time.Time, done <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			r.cfg.Progress(Progress{
				Elapsed:  time.Since(start),
				Requests: r.requests.Load(),
				Bytes:    r.bytes.Load(),
				Errors:   r.errors.Load(),
			})
		}
	}
}

// inlineWrite is the largest batch written before reading back. A larger
// one is written from a second goroutine while this one reads: the server
// stops reading once its output backs up (Config.MaxWriteBuffer), so a
// client that finishes a large write before reading could wait forever.
// Below this size the socket buffers on both sides hold the whole batch.
const inlineWrite = 64 << 10

// conn runs connection i until stop ends, and returns its first error.
func (r *run) conn(ctx, stop context.Context, i int) error {
	cfg := r.cfg
	d := net.Dialer{Timeout: cfg.Timeout}
	c, err := d.DialContext(ctx, cfg.Network, cfg.Addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil // the caller cancelled
		}
		return fmt.Errorf("loadgen: conn %d: %w", i, err)
	}
	defer c.Close()
	// Cancelling ctx interrupts blocked I/O at once.
	defer context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })()

	n := cfg.Depth * cfg.Size
	out, in := make([]byte, n), make([]byte, n)
	for batch := uint64(0); stop.Err() == nil; batch++ {
		seq := uint32(batch * uint64(cfg.Depth))
		for m := range cfg.Depth {
			r.fill(out[m*cfg.Size:(m+1)*cfg.Size], i, seq+uint32(m))
		}
		if err := c.SetDeadline(time.Now().Add(cfg.Timeout)); err != nil {
			return fmt.Errorf("loadgen: conn %d: %w", i, err)
		}
		if err := exchange(c, out, in); err != nil {
			if ctx.Err() != nil {
				return nil // the caller cancelled: not the server's fault
			}
			return fmt.Errorf("loadgen: conn %d batch %d: %w", i, batch, err)
		}
		if !bytes.Equal(out, in) {
			return r.mismatch(i, batch, out, in)
		}
		r.requests.Add(uint64(cfg.Depth))
		r.bytes.Add(uint64(n))
	}
	return nil
}

// exchange writes out in one write and reads len(in) bytes back.
func exchange(c net.Conn, out, in []byte) error {
	if len(out) <= inlineWrite {
		if _, err := c.Write(out); err != nil {
			return err
		}
		_, err := io.ReadFull(c, in)
		return err
	}
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(out)
		werr <- err
	}()
	_, rerr := io.ReadFull(c, in)
	if rerr != nil {
		c.SetDeadline(time.Now()) // unblock the writer
	}
	if err := <-werr; err != nil && rerr == nil {
		return err
	}
	return rerr
}

// mismatch describes the first difference between out and in.
func (r *run) mismatch(i int, batch uint64, out, in []byte) error {
	off := 0
	for out[off] == in[off] {
		off++
	}
	e := &MismatchError{Conn: i, Batch: batch, Offset: off, Want: out[off], Got: in[off], Size: r.cfg.Size}
	if r.cfg.Size >= headerLen {
		m := in[off/r.cfg.Size*r.cfg.Size:]
		e.GotConn, e.GotSeq, e.HeaderOK = binary.LittleEndian.Uint32(m), binary.LittleEndian.Uint32(m[4:]), true
	}
	return e
}

// The payload. Each message starts with an 8-byte header, the connection
// index and the message's sequence number (little endian), truncated for
// messages shorter than that; the rest is a window of a seeded random
// pattern whose start depends on both, so messages differ in their bodies
// as well.
const (
	headerLen = 8
	patStride = 65521 // a prime: windows start at every offset below it
)

func newPattern(seed uint64, size int) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x6d65726c696e)) // "merlin"
	p := make([]byte, patStride+size)
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}

// fill writes message seq of connection conn into m.
func (r *run) fill(m []byte, conn int, seq uint32) {
	var h [headerLen]byte
	binary.LittleEndian.PutUint32(h[:], uint32(conn))
	binary.LittleEndian.PutUint32(h[4:], seq)
	n := copy(m, h[:])
	start := (uint64(conn)*7919 + uint64(seq)*104729) % patStride
	copy(m[n:], r.pattern[start:])
}
