package libuvlike

import (
	"fmt"
	"time"

	"github.com/merlin-net/merlin/internal/schedtick"
	"github.com/merlin-net/merlin/transports"
)

// Options are the transport's own settings, beyond transports.Config.
type Options struct {
	// Accept is how connections reach the loops: AcceptReusePort or
	// AcceptDispatch.
	Accept string
	// EdgeTriggered registers descriptors with EPOLLET (trigger=edge).
	EdgeTriggered bool
	// LockOSThread gives each loop a thread of its own (lockthread=true).
	LockOSThread bool
	// ReadBuffer is the size of each loop's read buffer (readbuf).
	// Default 64 KiB.
	ReadBuffer int
	// Park is how a loop waits for I/O (park): ParkAuto (the default),
	// ParkThreads or ParkInRuntime. A loop locked to its thread always
	// parks it: ParkAuto then means ParkThreads, and ParkInRuntime is an
	// error.
	Park string
	// RawWait (rawwait): a loop that blocks its thread to wait keeps its
	// P in the wait while its last wait ended within RawWait
	// (LoopOptions.RawWait). Zero means DefaultRawWait; negative, never.
	RawWait time.Duration
}

// The values of Options.Park.
const (
	// ParkAuto parks a loop in the Go runtime's netpoller while it serves
	// a connection whose handler hands off (transports.HandoffHandler: the
	// net.Conn adapter's), and blocks its thread in epoll_wait otherwise.
	ParkAuto = "auto"
	// ParkThreads always blocks the loop's thread in epoll_wait.
	ParkThreads = "thread"
	// ParkInRuntime always parks the loop in the Go runtime's netpoller.
	ParkInRuntime = "runtime"
)

// The values of Options.Accept.
const (
	// AcceptReusePort gives every loop its own listening socket on the
	// address (SO_REUSEPORT), and the kernel spreads connections among
	// them. Unix sockets cannot share a path, so a unix listener
	// dispatches.
	AcceptReusePort = "reuseport"
	// AcceptDispatch has one loop accept and hand connections to the
	// loops round-robin, itself included, as Kestrel's libuv transport
	// did.
	AcceptDispatch = "dispatch"
)

// DefaultRawWait is the default of Options.RawWait.
const DefaultRawWait = schedtick.DefaultRaw

// DefaultReadBuffer is the default size of a loop's read buffer.
const DefaultReadBuffer = 64 << 10

func init() {
	transports.Register(transports.Driver{
		Name:    "libuvlike",
		Summary: "an epoll reactor in libuv's style: N loops, one read buffer per loop, writes gathered once per iteration",
		Options: []transports.Option{
			{Key: "accept", Kind: transports.Enum, Default: AcceptReusePort, Values: []string{AcceptReusePort, AcceptDispatch},
				Help: "reuseport: a SO_REUSEPORT listener per loop; dispatch: one loop accepts and hands connections round-robin"},
			{Key: "trigger", Kind: transports.Enum, Default: "level", Values: []string{"level", "edge"},
				Help: "epoll level- or edge-triggered (EPOLLET)"},
			{Key: "lockthread", Kind: transports.Bool, Default: "false",
				Help: "each loop on its own OS thread (runtime.LockOSThread)"},
			{Key: "readbuf", Kind: transports.Size, Default: "64k",
				Help: "size of each loop's read buffer"},
			{Key: "park", Kind: transports.Enum, Default: ParkAuto, Values: []string{ParkAuto, ParkThreads, ParkInRuntime},
				Help: "how a loop waits: thread blocks its OS thread in epoll_wait; runtime parks it in the Go runtime's netpoller, for handlers that hand work to goroutines (the net.Conn adapter); auto: runtime while the loop serves such a connection (lockthread: always thread)"},
			{Key: "rawwait", Kind: transports.Duration, Default: DefaultRawWait.String(),
				Help: "a loop that blocks its thread in epoll_wait does so with a raw system call, keeping the Go scheduler's P, while its last wait ended within this long and no goroutine posted work to it lately: sysmon then cannot take the P from each wait and wake two threads for it; 0: never; at most 10ms"},
		},
		Preference: 20,
		Probe:      probe,
		New: func(cfg transports.Config, s transports.Settings) (transports.Transport, error) {
			t, err := New(cfg, Options{
				Accept:        s.String("accept"),
				EdgeTriggered: s.String("trigger") == "edge",
				LockOSThread:  s.Bool("lockthread"),
				ReadBuffer:    s.Int("readbuf"),
				Park:          s.String("park"),
				RawWait:       schedtick.RawKey(s.Duration("rawwait")),
			})
			if err != nil {
				return nil, err // not a nil *Transport in a non-nil interface
			}
			return t, nil
		},
	})
}

// withDefaults returns o with its zero fields set, or an error naming the
// first bad one.
func (o Options) withDefaults() (Options, error) {
	switch o.Accept {
	case "":
		o.Accept = AcceptReusePort
	case AcceptReusePort, AcceptDispatch:
	default:
		return o, fmt.Errorf("libuvlike: accept %q: want %s or %s", o.Accept, AcceptReusePort, AcceptDispatch)
	}
	switch o.Park {
	case "":
		o.Park = ParkAuto
	case ParkInRuntime:
		if o.LockOSThread {
			return o, fmt.Errorf("libuvlike: park %s with lockthread: a loop locked to its thread parks it", o.Park)
		}
	case ParkAuto, ParkThreads:
	default:
		return o, fmt.Errorf("libuvlike: park %q: want %s, %s or %s", o.Park, ParkAuto, ParkThreads, ParkInRuntime)
	}
	switch {
	case o.RawWait == 0:
		o.RawWait = DefaultRawWait
	case o.RawWait > schedtick.MaxRaw:
		return o, fmt.Errorf("libuvlike: rawwait %v is longer than %v: a wait that long is an idle loop's, which should give its P back", o.RawWait, schedtick.MaxRaw)
	}
	switch {
	case o.ReadBuffer == 0:
		o.ReadBuffer = DefaultReadBuffer
	case o.ReadBuffer < 1<<10:
		return o, fmt.Errorf("libuvlike: read buffer of %d bytes: want at least 1k", o.ReadBuffer)
	}
	return o, nil
}
