package uring

import (
	"time"

	"github.com/merlin-net/merlin/transports"
)

// Accept modes (the "accept" key).
const (
	// acceptReusePort gives every loop its own SO_REUSEPORT listening
	// socket (unix sockets: one socket shared by every loop) with a
	// multishot accept in each ring.
	acceptReusePort = "reuseport"
	// acceptMsgRing accepts on the first loop's ring only and hands each
	// descriptor to the next loop, round-robin, with IORING_OP_MSG_RING.
	acceptMsgRing = "msgring"
)

// options are the values of the transport's own keys.
type options struct {
	entries     int           // SQ entries per ring
	bufSize     int           // bytes per provided buffer
	bufCount    int           // provided buffers per ring
	sqpoll      bool          // IORING_SETUP_SQPOLL
	zcThreshold int           // sends of this many bytes or more use SEND_ZC; 0: never
	accept      string        // acceptReusePort or acceptMsgRing
	fixedFiles  bool          // register sockets in the ring's file table
	rawWait     time.Duration // how long a wait may block in io_uring_enter without telling the scheduler
	minWait     time.Duration // how long a wait for a batch of completions may hold back fewer
}

var driverOptions = []transports.Option{
	{Key: "entries", Kind: transports.Int, Default: "4096", Help: "submission queue entries per ring (the completion queue has four times as many)"},
	{Key: "bufsize", Kind: transports.Size, Default: "64k", Help: "size of each provided receive buffer (consumed piece by piece where the kernel can: Linux 6.12)"},
	{Key: "bufcount", Kind: transports.Int, Default: "64", Help: "provided receive buffers per ring (a power of two, at most 32768)"},
	{Key: "sqpoll", Kind: transports.Bool, Default: "false", Help: "a kernel thread polls each submission queue (IORING_SETUP_SQPOLL with SINGLE_ISSUER)"},
	{Key: "zerocopy", Kind: transports.Size, Default: "0", Help: "sends of at least this many bytes use IORING_OP_SEND_ZC; 0 turns zero-copy off"},
	{Key: "accept", Kind: transports.Enum, Default: acceptReusePort, Values: []string{acceptReusePort, acceptMsgRing},
		Help: "reuseport: a listening socket and multishot accept per ring; msgring: one acceptor ring hands descriptors to the others with MSG_RING"},
	{Key: "fixedfiles", Kind: transports.Bool, Default: "true", Help: "register each socket in its ring's file table, so sends skip the descriptor lookup"},
	{Key: "minwait", Kind: transports.Duration, Default: "0", Help: "a wait asks for as many completions as the last one brought, and takes fewer after this long (min_wait_usec: Linux 6.12); 0: wake at the first"},
	{Key: "rawwait", Kind: transports.Duration, Default: "0", Help: "a wait first blocks up to this long in a raw io_uring_enter that keeps the Go scheduler's P, then waits as usual: a busy loop skips the scheduler's hand-off and wake-up; other goroutines on its P wait up to this long, so a loop that other goroutines post work to (the net.Conn adapter) waits as usual; at most 5ms; 0: off"},
}

func init() {
	transports.Register(transports.Driver{
		Name:       "uring",
		Summary:    "io_uring through giouring: a ring per loop, multishot accept and recv into provided buffer rings, gathered sends",
		Options:    driverOptions,
		Preference: 30,
		Probe:      probeDriver,
		New: func(cfg transports.Config, s transports.Settings) (transports.Transport, error) {
			o := options{
				entries:     s.Int("entries"),
				bufSize:     s.Int("bufsize"),
				bufCount:    s.Int("bufcount"),
				sqpoll:      s.Bool("sqpoll"),
				zcThreshold: s.Int("zerocopy"),
				accept:      s.String("accept"),
				fixedFiles:  s.Bool("fixedfiles"),
				rawWait:     s.Duration("rawwait"),
				minWait:     s.Duration("minwait"),
			}
			return newTransport(cfg, o)
		},
	})
}
