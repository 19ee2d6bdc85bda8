package uring

import (
	"fmt"
	"time"

	"github.com/merlin-net/merlin/internal/schedtick"
	"github.com/merlin-net/merlin/transports"
)

// Accept modes (Options.Accept, the "accept" key).
const (
	// AcceptReusePort gives every loop its own SO_REUSEPORT listening
	// socket (unix sockets: one socket shared by every loop) with a
	// multishot accept in each ring.
	AcceptReusePort = "reuseport"
	// AcceptMsgRing accepts on the first loop's ring only and hands each
	// descriptor to the next loop, round-robin, with IORING_OP_MSG_RING.
	AcceptMsgRing = "msgring"
)

// Park modes (Options.Park, the "park" key): where a loop waits for I/O.
const (
	// ParkAuto serves the conns of a Handler that hands off
	// (transports.HandoffHandler: the net.Conn adapter) on runtime loops,
	// started by the first Listen or Dial that needs them, and every
	// other conn on thread loops.
	ParkAuto = "auto"
	// ParkThread serves every conn on thread loops: each loop's goroutine
	// is locked to its thread and blocks it in io_uring_enter.
	ParkThread = "thread"
	// ParkRuntime serves every conn on runtime loops: each loop's
	// goroutine parks in the Go runtime's netpoller on its ring's
	// descriptor, and other goroutines wake it without a system call.
	ParkRuntime = "runtime"
)

// Defaults of Options' fields.
const (
	DefaultEntries  = 4096
	DefaultBufSize  = 64 << 10
	DefaultBufCount = 64
)

// Options are the transport's own settings, beyond transports.Config:
// the driver's keys, typed. A zero field takes its default.
type Options struct {
	// Entries is the submission queue's size per ring (the completion
	// queue has four times as many), at most 32768. Default 4096.
	Entries int
	// BufSize is the size of each provided receive buffer. Default 64 KiB.
	BufSize int
	// BufCount is the number of provided receive buffers per ring, a
	// power of two, at most 32768. Default 64.
	BufCount int
	// SQPoll has a kernel thread poll each submission queue.
	SQPoll bool
	// ZeroCopy sends writes of at least this many bytes with SEND_ZC; 0
	// never does.
	ZeroCopy int
	// Accept is AcceptReusePort (the default) or AcceptMsgRing.
	Accept string
	// FixedFiles registers each socket in its ring's file table. Default
	// On.
	FixedFiles transports.Switch
	// MinWait lets a wait for a batch of completions take fewer after this
	// long (min_wait_usec: Linux 6.12); 0 wakes at the first.
	MinWait time.Duration
	// RawWait: a thread loop waits in a raw io_uring_enter, which keeps
	// the Go scheduler's P, while its last wait ended within RawWait and
	// no other goroutine posted work to it lately (schedtick.Raw says
	// why). Zero means DefaultRawWait; negative, never; at most 10 ms.
	RawWait time.Duration
	// Park is ParkAuto (the default), ParkThread or ParkRuntime. SQPoll,
	// MinWait, RawWait and InlineSend apply to thread loops only.
	Park string
	// InlineSend: a thread loop's send first goes without waiting for
	// room in the socket (MSG_DONTWAIT), so that it completes in the
	// io_uring_enter that submits it, and that enter's wait asks for one
	// completion more per such send: it waits on for the next event
	// instead of returning for the sends' completions. An echo request
	// then costs one io_uring_enter instead of two. A send the socket
	// does not take whole goes again, as a send that waits for room.
	// Default On; not with SQPoll, whose kernel thread submits.
	InlineSend transports.Switch
}

// internal returns o's values, defaults filled in, or an error naming the
// first bad one.
func (o Options) internal() (options, error) {
	v := options{
		entries: o.Entries, bufSize: o.BufSize, bufCount: o.BufCount, sqpoll: o.SQPoll, zcThreshold: o.ZeroCopy,
		accept: o.Accept, fixedFiles: o.FixedFiles.Or(true), minWait: o.MinWait, rawWait: o.RawWait, park: o.Park,
		inlineSend: o.InlineSend.Or(true) && !o.SQPoll,
	}
	if v.entries == 0 {
		v.entries = DefaultEntries
	}
	if v.bufSize == 0 {
		v.bufSize = DefaultBufSize
	}
	if v.bufCount == 0 {
		v.bufCount = DefaultBufCount
	}
	switch {
	case v.rawWait == 0:
		v.rawWait = DefaultRawWait
	case v.rawWait < 0:
		v.rawWait = 0 // never
	}
	switch v.accept {
	case "":
		v.accept = AcceptReusePort
	case AcceptReusePort, AcceptMsgRing:
	default:
		return v, fmt.Errorf("uring: accept %q: want %s or %s", o.Accept, AcceptReusePort, AcceptMsgRing)
	}
	switch v.park {
	case "":
		v.park = ParkAuto
	case ParkAuto, ParkThread, ParkRuntime:
	default:
		return v, fmt.Errorf("uring: park %q: want %s, %s or %s", o.Park, ParkAuto, ParkThread, ParkRuntime)
	}
	switch {
	case v.entries < 0 || v.entries > 32768:
		return v, fmt.Errorf("uring: entries %d out of range (1 to 32768)", v.entries)
	case v.bufCount < 0 || v.bufCount > 32768 || v.bufCount&(v.bufCount-1) != 0:
		return v, fmt.Errorf("uring: bufcount %d: want a power of two, at most 32768", v.bufCount)
	case v.bufSize < 0 || v.zcThreshold < 0 || v.minWait < 0:
		return v, fmt.Errorf("uring: negative option in %+v", o)
	case v.rawWait > schedtick.MaxRaw:
		return v, fmt.Errorf("uring: rawwait %v is longer than %v: a wait that long is an idle loop's, which should give its P back", v.rawWait, schedtick.MaxRaw)
	}
	return v, nil
}

// DefaultRawWait is the default of Options.RawWait.
const DefaultRawWait = schedtick.DefaultRaw

// New starts a transport with cfg (zero fields take their defaults) and
// opt: its loops and rings run from now until Shutdown or Close. Where
// the kernel lacks io_uring or a feature opt asks for, the error wraps
// errors.ErrUnsupported and names it.
func New(cfg transports.Config, opt Options) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o, err := opt.internal()
	if err != nil {
		return nil, err
	}
	return newTransport(cfg.WithDefaults(), o)
}

// options are the values of the transport's own keys.
type options struct {
	entries     int           // SQ entries per ring
	bufSize     int           // bytes per provided buffer
	bufCount    int           // provided buffers per ring
	sqpoll      bool          // IORING_SETUP_SQPOLL
	zcThreshold int           // sends of this many bytes or more use SEND_ZC; 0: never
	accept      string        // acceptReusePort or acceptMsgRing
	fixedFiles  bool          // register sockets in the ring's file table
	rawWait     time.Duration // a thread loop whose last wait ended within this long waits raw; 0: never
	minWait     time.Duration // how long a wait for a batch of completions may hold back fewer
	park        string        // ParkAuto, ParkThread or ParkRuntime
	inlineSend  bool          // thread loops send with MSG_DONTWAIT first and wait for one completion more per send
}

var driverOptions = []transports.Option{
	{Key: "entries", Kind: transports.Int, Default: "4096", Help: "submission queue entries per ring (the completion queue has four times as many)"},
	{Key: "bufsize", Kind: transports.Size, Default: "64k", Help: "size of each provided receive buffer (consumed piece by piece where the kernel can: Linux 6.12)"},
	{Key: "bufcount", Kind: transports.Int, Default: "64", Help: "provided receive buffers per ring (a power of two, at most 32768)"},
	{Key: "sqpoll", Kind: transports.Bool, Default: "false", Help: "a kernel thread polls each submission queue (IORING_SETUP_SQPOLL with SINGLE_ISSUER); thread loops only"},
	{Key: "zerocopy", Kind: transports.Size, Default: "0", Help: "sends of at least this many bytes use IORING_OP_SEND_ZC; 0 turns zero-copy off"},
	{Key: "accept", Kind: transports.Enum, Default: AcceptReusePort, Values: []string{AcceptReusePort, AcceptMsgRing},
		Help: "reuseport: a listening socket and multishot accept per ring; msgring: one acceptor ring hands descriptors to the others with MSG_RING"},
	{Key: "fixedfiles", Kind: transports.Bool, Default: "true", Help: "register each socket in its ring's file table, so sends skip the descriptor lookup"},
	{Key: "minwait", Kind: transports.Duration, Default: "0", Help: "a wait asks for as many completions as the last one brought, and takes fewer after this long (min_wait_usec: Linux 6.12); 0: wake at the first; thread loops only (a runtime loop never waits in io_uring_enter)"},
	{Key: "rawwait", Kind: transports.Duration, Default: DefaultRawWait.String(), Help: "a thread loop waits in a raw io_uring_enter, keeping the Go scheduler's P, while its last wait ended within this long and no goroutine posted work to it lately: sysmon then cannot take the P from each wait and wake two threads for it; 0: never; at most 10ms; thread loops only (a runtime loop never waits in io_uring_enter)"},
	{Key: "inlinesend", Kind: transports.Bool, Default: "true", Help: "a thread loop's send first goes with MSG_DONTWAIT, completing in the io_uring_enter that submits it, whose wait then asks for one completion more and sleeps on to the next event: one io_uring_enter per request-response instead of two; a send the socket does not take whole goes again, waiting for room; not with sqpoll"},
	{Key: "park", Kind: transports.Enum, Default: ParkAuto, Values: []string{ParkAuto, ParkThread, ParkRuntime},
		Help: "where a loop waits: thread: locked to its thread, blocking it in io_uring_enter; runtime: its goroutine parks in the Go runtime's netpoller on the ring's descriptor and other goroutines wake it without a system call (rings without SINGLE_ISSUER, DEFER_TASKRUN or SQPOLL, with COOP_TASKRUN); auto: runtime loops, started at the first Listen or Dial that needs them, for handlers that hand off (the net.Conn adapter), thread loops for the others"},
}

func init() {
	transports.Register(transports.Driver{
		Name:       "uring",
		Summary:    "io_uring through giouring: a ring per loop, multishot accept and recv into provided buffer rings, gathered sends",
		Options:    driverOptions,
		Preference: 30,
		Probe:      probeDriver,
		New: func(cfg transports.Config, s transports.Settings) (transports.Transport, error) {
			// A key given as 0 is refused rather than taken as Options'
			// "default".
			for _, k := range []string{"entries", "bufsize", "bufcount"} {
				if s.Int(k) < 1 {
					return nil, fmt.Errorf("uring: %s=%d: want at least 1", k, s.Int(k))
				}
			}
			fixed, inline := transports.Off, transports.Off
			if s.Bool("fixedfiles") {
				fixed = transports.On
			}
			if s.Bool("inlinesend") {
				inline = transports.On
			}
			t, err := New(cfg, Options{
				Entries:    s.Int("entries"),
				BufSize:    s.Int("bufsize"),
				BufCount:   s.Int("bufcount"),
				SQPoll:     s.Bool("sqpoll"),
				ZeroCopy:   s.Int("zerocopy"),
				Accept:     s.String("accept"),
				FixedFiles: fixed,
				RawWait:    schedtick.RawKey(s.Duration("rawwait")),
				MinWait:    s.Duration("minwait"),
				Park:       s.String("park"),
				InlineSend: inline,
			})
			if err != nil {
				return nil, err // not a nil *Transport in a non-nil interface
			}
			return t, nil
		},
	})
}
