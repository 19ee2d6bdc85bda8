package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"time"
)

// inlineWrite is the largest batch written before reading back. A larger
// one is written from a second goroutine while this one reads: the server
// stops reading once its output backs up (its write buffer limit), so a
// client that finishes a large write before reading could wait forever.
// Below this size the socket buffers on both sides hold the whole batch.
const inlineWrite = 64 << 10

// readBuffer is the size of each connection's read buffer for parsed
// responses.
const readBuffer = 64 << 10

// closedLoop runs connection i: it writes Depth requests in one write,
// reads and checks every response, and starts again until the window
// ends.
func (r *run) closedLoop(ctx context.Context, i int, ready chan<- struct{}) error {
	c, err := r.dial(ctx, i)
	ready <- struct{}{}
	if err != nil {
		if ctx.Err() != nil {
			return nil // the caller cancelled
		}
		return err
	}
	defer r.hangUp(c)
	defer interruptOnCancel(ctx, c)()
	if !r.waitStart(ctx) {
		return nil
	}
	x := r.newExchanger(c, i)
	for batch := uint64(0); !r.ended(ctx); batch++ {
		if err := x.exchange(batch, r.done); err != nil {
			if ctx.Err() != nil {
				return nil // the caller cancelled: not the server's fault
			}
			return err
		}
	}
	return nil
}

// exchanger does closed-loop exchanges on one connection.
type exchanger struct {
	r       *run
	c       net.Conn
	i       int
	out, in []byte // echo: the batch written, the batch read
	br      *bufio.Reader
	st      readState
}

func (r *run) newExchanger(c net.Conn, i int) *exchanger {
	x := &exchanger{r: r, c: c, i: i}
	if r.cfg.Workload == Echo {
		n := r.cfg.Depth * r.cfg.Size
		x.out, x.in = make([]byte, 0, n), make([]byte, n)
	} else {
		x.br = bufio.NewReaderSize(c, readBuffer)
	}
	return x
}

// exchange writes batch and checks its responses, and reports them to
// done.
func (x *exchanger) exchange(batch uint64, done func(conn, n, b int, lat time.Duration)) error {
	cfg := x.r.cfg
	seq := uint32(batch * uint64(cfg.Depth))
	x.out = x.out[:0]
	for m := range cfg.Depth {
		x.out = x.r.proto.request(x.out, x.i, seq+uint32(m))
	}
	if err := x.c.SetDeadline(time.Now().Add(cfg.Timeout)); err != nil {
		return fmt.Errorf("loadgen: conn %d: %w", x.i, err)
	}
	sent := time.Now()
	if x.br == nil {
		// Echo: read the whole batch back and compare.
		if err := exchange(x.c, x.out, x.in); err != nil {
			return fmt.Errorf("loadgen: conn %d batch %d: %w", x.i, batch, err)
		}
		if !bytes.Equal(x.out, x.in) {
			return x.r.proto.(*echoProto).mismatch(x.i, batch, 0, x.out, x.in)
		}
		done(x.i, cfg.Depth, len(x.in), time.Since(sent))
		return nil
	}
	// A batch larger than inlineWrite (POST bodies) is written while the
	// responses are read: a server that stops reading until its answers
	// are read must not deadlock the exchange.
	var werr chan error
	if len(x.out) <= inlineWrite {
		if _, err := x.c.Write(x.out); err != nil {
			return fmt.Errorf("loadgen: conn %d batch %d: %w", x.i, batch, err)
		}
	} else {
		werr = make(chan error, 1)
		go func() {
			_, err := x.c.Write(x.out)
			werr <- err
		}()
	}
	total := 0
	for m := range cfg.Depth {
		n, err := x.r.proto.response(x.br, x.i, seq+uint32(m), batch, m, &x.st)
		if err != nil {
			if werr != nil {
				x.c.SetDeadline(time.Now()) // unblock the writer
				<-werr
			}
			return fmt.Errorf("loadgen: conn %d batch %d: %w", x.i, batch, err)
		}
		total += n
	}
	if werr != nil {
		if err := <-werr; err != nil {
			return fmt.Errorf("loadgen: conn %d batch %d: %w", x.i, batch, err)
		}
	}
	done(x.i, cfg.Depth, total, time.Since(sent))
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

// churn runs worker i: connect, one exchange of Depth requests, close, and
// again, until the window ends. Each cycle counts as one request.
func (r *run) churn(ctx context.Context, i int) error {
	if !r.waitStart(ctx) {
		return nil
	}
	for batch := uint64(0); !r.ended(ctx); batch++ {
		start := time.Now()
		c, err := r.dial(ctx, i)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		stop := interruptOnCancel(ctx, c)
		x := r.newExchanger(c, i)
		var bytes int
		err = x.exchange(batch, func(_, _, b int, _ time.Duration) { bytes = b })
		stop()
		r.hangUp(c)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		r.done(i, 1, bytes, time.Since(start))
	}
	return nil
}

// idle runs connection i: dial, one exchange, then hold it open until the
// run ends.
func (r *run) idle(ctx context.Context, i int, ready chan<- struct{}) error {
	c, err := r.dial(ctx, i)
	if err != nil {
		ready <- struct{}{}
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer r.hangUp(c)
	stop := interruptOnCancel(ctx, c)
	defer stop()
	err = r.newExchanger(c, i).exchange(0, r.done)
	ready <- struct{}{}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if r.waitStart(ctx) {
		select {
		case <-r.stop:
		case <-ctx.Done():
		}
	}
	return nil
}

// openLoop runs connection i open-loop: a sender writes the connection's
// share of Rate on a fixed schedule (batches of Depth requests every
// Depth/share seconds; those whose time has passed go out together), while
// a receiver checks the responses and records each one's latency from its
// scheduled time.
func (r *run) openLoop(ctx context.Context, i int, ready chan<- struct{}) error {
	c, err := r.dial(ctx, i)
	ready <- struct{}{}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer r.hangUp(c)
	defer interruptOnCancel(ctx, c)()
	if !r.waitStart(ctx) {
		return nil
	}
	cfg := r.cfg
	interval := time.Duration(float64(time.Second) * float64(cfg.Depth) * float64(cfg.Conns) / cfg.Rate)
	if interval <= 0 {
		interval = 1
	}
	// Connections start spread over one interval, not all at once.
	first := r.startTime.Add(interval * time.Duration(i) / time.Duration(cfg.Conns))

	// sched carries each batch's scheduled time to the receiver. A full
	// queue stalls the sender; latency still counts from the schedule.
	sched := make(chan time.Time, maxInFlight/cfg.Depth+1)
	rerr := make(chan error, 1)
	quit := make(chan struct{}) // closed when the receiver fails
	go func() {
		err := r.receive(ctx, c, i, sched)
		if err != nil {
			close(quit)
			c.SetDeadline(time.Now()) // unblock the sender
		}
		rerr <- err
	}()

	serr := r.send(ctx, c, i, first, interval, sched, quit)
	close(sched)
	if serr != nil {
		c.SetDeadline(time.Now()) // unblock the receiver
	}
	err = <-rerr
	switch {
	case ctx.Err() != nil:
		return nil
	case err != nil:
		return err // the receiver's error caused the sender's
	}
	return serr
}

// maxInFlight bounds the requests an open-loop connection has sent and
// not seen answered.
const maxInFlight = 4096

// send writes batches on schedule until the window ends.
func (r *run) send(ctx context.Context, c net.Conn, i int, next time.Time, interval time.Duration, sched chan<- time.Time, quit <-chan struct{}) error {
	cfg := r.cfg
	var buf []byte
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for batch := uint64(0); ; {
		if wait := time.Until(next); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-r.stop:
				return nil
			case <-ctx.Done():
				return nil
			case <-quit:
				return nil
			}
		} else if r.ended(ctx) {
			return nil
		}
		buf = buf[:0]
		now := time.Now()
		for !next.After(now) {
			seq := uint32(batch * uint64(cfg.Depth))
			for m := range cfg.Depth {
				buf = r.proto.request(buf, i, seq+uint32(m))
			}
			select {
			case sched <- next:
			case <-r.stop:
				return r.write(c, i, buf)
			case <-ctx.Done():
				return nil
			case <-quit:
				return nil
			}
			batch++
			next = next.Add(interval)
			if len(buf) >= inlineWrite {
				break
			}
		}
		if err := r.write(c, i, buf); err != nil {
			return err
		}
	}
}

func (r *run) write(c net.Conn, i int, buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	if err := c.SetWriteDeadline(time.Now().Add(r.cfg.Timeout)); err != nil {
		return fmt.Errorf("loadgen: conn %d: %w", i, err)
	}
	if _, err := c.Write(buf); err != nil {
		return fmt.Errorf("loadgen: conn %d: write: %w", i, err)
	}
	return nil
}

// receive checks the responses of every batch sched announces, until it
// is closed.
func (r *run) receive(ctx context.Context, c net.Conn, i int, sched <-chan time.Time) error {
	cfg := r.cfg
	br := bufio.NewReaderSize(c, readBuffer)
	var st readState
	for batch := uint64(0); ; batch++ {
		at, ok := <-sched
		if !ok {
			return nil
		}
		if err := c.SetReadDeadline(time.Now().Add(cfg.Timeout)); err != nil {
			return fmt.Errorf("loadgen: conn %d: %w", i, err)
		}
		seq := uint32(batch * uint64(cfg.Depth))
		for m := range cfg.Depth {
			n, err := r.proto.response(br, i, seq+uint32(m), batch, m, &st)
			if err != nil {
				return fmt.Errorf("loadgen: conn %d batch %d: %w", i, batch, err)
			}
			r.done(i, 1, n, time.Since(at))
		}
	}
}
