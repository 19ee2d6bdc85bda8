package http1

import (
	"fmt"
	"net/http"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// phase is what a connection is waiting for, and so which time limit
// runs.
type phase uint8

const (
	phKeepAlive phase = iota // no request under way: KeepAliveTimeout
	phHeaders                // a request's head is arriving: RequestHeadersTimeout
	phBody                   // its body is arriving: MinRequestBodyDataRate
)

// clock is a connection's timekeeping, owned by its callbacks as the rest
// of conn. Times are durations since Handler.epoch (monotonic).
//
// The timer is set lazily: a phase that begins sets it only if it must
// run out earlier than it is set to; when it runs out, OnTimer looks at
// the phase then in force and sets it again if that phase's limit is
// still ahead. So a pipelined burst, which ends each OnData in a new
// keep-alive wait, costs a few stores and no SetTimer.
type clock struct {
	timer transports.TimerConn // the Conn, if it has a timer and a limit is on; else nil
	phase phase
	since time.Duration // when the phase began
	base  int64         // body bytes (parser.received) not counted in the rate: 0 from the body's start
	at    time.Duration // when the timer is set to run out, if set
	set   bool          // the timer is set
}

// startClock starts c's keep-alive wait, or, if c has no timer, logs
// (once per Handler) that the Handler serves without time limits.
func (h *Handler) startClock(c transports.Conn, cs *conn) {
	if !h.cfg.timed() {
		return
	}
	tc, ok := c.(transports.TimerConn)
	if !ok {
		h.noTimer.Do(func() {
			h.cfg.Logger.Warn("http1: the transport's connections have no timer (transports.TimerConn): serving without time limits",
				"conn", fmt.Sprintf("%T", c))
		})
		return
	}
	cs.timer = tc
	h.begin(cs, phKeepAlive, h.clockNow())
}

// track moves cs to the phase OnData left it in. now is the time OnData
// read for its answers, or zero if it answered nothing; answered reports
// that a request was answered, so that the wait now under way is a new
// one even if it is of the same kind.
func (h *Handler) track(cs *conn, now time.Time, answered bool) {
	ph := phKeepAlive
	switch {
	case !cs.kept:
	case cs.p.st == stHead:
		ph = phHeaders
	default:
		ph = phBody
	}
	if ph == cs.phase && !answered {
		return // the same wait goes on: more of the same head or body
	}
	if now.IsZero() {
		now = h.clockNow()
	}
	h.begin(cs, ph, now)
}

// begin starts phase ph at now. A body phase begins in the OnData that
// parsed its head, so every byte of the body counts towards its rate.
func (h *Handler) begin(cs *conn, ph phase, now time.Time) {
	t := now.Sub(h.epoch)
	cs.phase, cs.since, cs.base = ph, t, 0
	if d, on := h.firstCheck(ph); on {
		h.arm(cs, t, t+d)
	}
}

// firstCheck returns how long after its start a phase's limit is first
// checked, and whether the phase has a limit.
func (h *Handler) firstCheck(ph phase) (time.Duration, bool) {
	switch ph {
	case phKeepAlive:
		return h.cfg.KeepAliveTimeout, h.cfg.KeepAliveTimeout > 0
	case phHeaders:
		return h.cfg.RequestHeadersTimeout, h.cfg.RequestHeadersTimeout > 0
	default:
		return max(h.cfg.MinRequestBodyDataRateGrace, time.Second), h.cfg.MinRequestBodyDataRate > 0
	}
}

// arm sets the timer to run out at d (t is now), unless it is set to run
// out no later: that expiry will look again.
func (h *Handler) arm(cs *conn, t, d time.Duration) {
	if cs.set && cs.at <= d {
		return
	}
	cs.set, cs.at = true, d
	cs.timer.SetTimer(d - t)
}

// OnTimer enforces the limit of c's phase: if it has run out, it ends the
// request or the connection as Kestrel does; otherwise it sets the timer
// for the next look.
//
// While answers are waiting for the peer to read them (OutboundBuffered
// > 0), no limit runs out: the transport stops reading at its output
// limit, so a slow head or body may be this side's doing; the phase begins
// anew each second until the output has gone. Kestrel likewise starts its
// next request's timers only once the previous response is flushed, and
// bounds a peer that does not read with a timeout of its own (here the
// transport's write timeout).
func (h *Handler) OnTimer(c transports.Conn) {
	cs, _ := c.Context().(*conn)
	if cs == nil || cs.closed || cs.timer == nil {
		return
	}
	cs.set = false
	first, on := h.firstCheck(cs.phase)
	if !on {
		return
	}
	now := h.clockNow()
	t := now.Sub(h.epoch)
	if c.OutboundBuffered() > 0 {
		cs.since, cs.base = t, cs.p.received
		h.arm(cs, t, t+time.Second)
		return
	}
	elapsed := t - cs.since
	if elapsed < first {
		h.arm(cs, t, cs.since+first)
		return
	}
	switch cs.phase {
	case phKeepAlive:
		// Kestrel's keep-alive timeout stops the connection's request
		// loop (Http1Connection.StopProcessingNextRequest): the
		// connection closes, with nothing to answer.
		cs.closed = true
		c.Close()
	case phHeaders:
		h.timedOut(c, cs, now)
	case phBody:
		rate := h.cfg.MinRequestBodyDataRate
		got := float64(cs.p.received - cs.base)
		if got < rate*elapsed.Seconds() {
			h.timedOut(c, cs, now)
			return
		}
		// However slowly the rest arrives, the average cannot fall below
		// the rate before got/rate seconds from the body's start: look
		// again then, but not within a second (Kestrel checks once a
		// second, on its heartbeat) nor more than an hour away.
		wait := time.Duration(min(got/rate, 3600) * float64(time.Second))
		h.arm(cs, t, max(cs.since+wait, t+time.Second))
	}
}

// timedOut answers the request under way with 408 Request Timeout and
// closes c. Kestrel does so when the request-headers timeout or the
// minimum request body data rate runs out and no response has started
// (Http1Connection.SendTimeoutResponse; the request then fails with
// RequestHeadersTimeout or RequestBodyTimeout, both 408, and the
// connection closes). Here no answer to the request under way has started
// then: answers are written whole, once their request is (a 100 Continue
// is interim, as in Kestrel).
func (h *Handler) timedOut(c transports.Conn, cs *conn, now time.Time) {
	if h.onError != nil {
		h.onError(http.StatusRequestTimeout)
	}
	h.respondError(cs, h.dateLine(now), http.StatusRequestTimeout)
	cs.flush(c)
	cs.closed = true
	c.Close()
}

var _ transports.TimerHandler = (*Handler)(nil)
