package transports

import (
	"maps"
	"sync/atomic"
)

// Stats is a snapshot of a transport's counters, summed over its loops.
type Stats struct {
	Accepted     uint64 // connections accepted
	Dialed       uint64 // connections dialed
	Closed       uint64 // connections whose OnClose has run
	BytesIn      uint64 // bytes received
	BytesOut     uint64 // bytes sent
	Reads        uint64 // read calls (or receive completions)
	Writes       uint64 // write calls (or send completions)
	Syscalls     uint64 // system calls the transport made itself (or submissions)
	Wakeups      uint64 // times a loop woke from waiting
	Events       uint64 // readiness events (or completions) handled
	ReadPauses   uint64 // times reading stopped for backpressure or PauseRead
	AcceptErrors uint64 // accept calls that failed
	// Extra holds transport-specific counters by name ("sqes", "enobufs").
	Extra map[string]uint64
}

// Open returns the number of connections opened and not yet closed.
func (s Stats) Open() uint64 { return s.Accepted + s.Dialed - s.Closed }

// EventsPerWakeup returns Events/Wakeups, or 0 before the first wake-up.
func (s Stats) EventsPerWakeup() float64 {
	if s.Wakeups == 0 {
		return 0
	}
	return float64(s.Events) / float64(s.Wakeups)
}

// Add returns the field-wise sum of s and o.
func (s Stats) Add(o Stats) Stats {
	r := Stats{
		Accepted:     s.Accepted + o.Accepted,
		Dialed:       s.Dialed + o.Dialed,
		Closed:       s.Closed + o.Closed,
		BytesIn:      s.BytesIn + o.BytesIn,
		BytesOut:     s.BytesOut + o.BytesOut,
		Reads:        s.Reads + o.Reads,
		Writes:       s.Writes + o.Writes,
		Syscalls:     s.Syscalls + o.Syscalls,
		Wakeups:      s.Wakeups + o.Wakeups,
		Events:       s.Events + o.Events,
		ReadPauses:   s.ReadPauses + o.ReadPauses,
		AcceptErrors: s.AcceptErrors + o.AcceptErrors,
	}
	if len(s.Extra)+len(o.Extra) > 0 {
		r.Extra = maps.Clone(s.Extra)
		if r.Extra == nil {
			r.Extra = make(map[string]uint64, len(o.Extra))
		}
		for k, v := range o.Extra {
			r.Extra[k] += v
		}
	}
	return r
}

// Counters is one loop's set of counters: atomic, so the loop adds without
// contention and Stats reads from any goroutine. Transports keep one per
// loop and sum them with Snapshot.
type Counters struct {
	Accepted, Dialed, Closed atomic.Uint64
	BytesIn, BytesOut        atomic.Uint64
	Reads, Writes, Syscalls  atomic.Uint64
	Wakeups, Events          atomic.Uint64
	ReadPauses, AcceptErrors atomic.Uint64
	_                        [64]byte // keeps two loops' counters off one cache line
}

// Snapshot returns the current values of c.
func (c *Counters) Snapshot() Stats {
	return Stats{
		Accepted:     c.Accepted.Load(),
		Dialed:       c.Dialed.Load(),
		Closed:       c.Closed.Load(),
		BytesIn:      c.BytesIn.Load(),
		BytesOut:     c.BytesOut.Load(),
		Reads:        c.Reads.Load(),
		Writes:       c.Writes.Load(),
		Syscalls:     c.Syscalls.Load(),
		Wakeups:      c.Wakeups.Load(),
		Events:       c.Events.Load(),
		ReadPauses:   c.ReadPauses.Load(),
		AcceptErrors: c.AcceptErrors.Load(),
	}
}
