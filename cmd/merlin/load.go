package main

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/merlin-net/merlin/internal/loadgen"
	"github.com/merlin-net/merlin/transports"
)

const loadSynopsis = `Usage: merlin load [flags]

load opens -conns connections to a server of -app; each writes -depth
messages of -size bytes in one write, reads the echoes back, checks every
byte (each message carries its connection and sequence number), and starts
again, until -duration ends. A request is one message echoed. It prints
requests/s, MB/s (payload echoed, 10^6 bytes) and errors, then the same as a
Go benchmark line for benchstat:

	BenchmarkLoad/app=echo/conns=64/size=64/depth=1 N ns/op X req/s Y MB/s Z errors

with a progress line each second when stdout is a terminal. It exits 1 if
any connection failed or any byte differed (the first errors are printed),
2 on a usage error. SIGINT or SIGTERM ends the run early.

Example:

	merlin load -addr 127.0.0.1:7000 -conns 64 -size 4k -depth 16 -duration 5s
`

// load is "merlin load".
func load(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("load", loadSynopsis)
	app := fs.String("app", "echo", "application the server runs: echo (the only one load drives yet)")
	network := fs.String("network", "tcp", "`network`: tcp, tcp4, tcp6 or unix")
	addr := fs.String("addr", "", "server `address`: host:port (default "+defaultAddr+"), or for unix a socket path (required)")
	conns := fs.Int("conns", 64, "concurrent connections")
	size := fs.String("size", "64", "message `size` in bytes (k and m suffixes: 4k)")
	depth := fs.Int("depth", 1, "messages per write (pipelining depth)")
	duration := fs.Duration("duration", 10*time.Second, "how long to start new batches (batches in flight are finished)")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on each dial and each batch's write and read-back")
	seed := fs.Uint64("seed", 1, "seed of the payload pattern")
	if status, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return status
	}
	if err := checkNetwork(*network); err != nil {
		return usageError(fs, stderr, "%v", err)
	}
	if *addr == "" {
		if *network == "unix" {
			return usageError(fs, stderr, "-network unix needs -addr, a socket path")
		}
		*addr = defaultAddr
	}
	sz, err := transports.ParseSize(*size)
	switch {
	case err != nil || sz < 1:
		return usageError(fs, stderr, "-size %s: want a positive byte count", *size)
	case *conns < 1 || *depth < 1:
		return usageError(fs, stderr, "-conns and -depth must be at least 1")
	case *duration <= 0 || *timeout <= 0:
		return usageError(fs, stderr, "-duration and -timeout must be positive")
	}
	if *app != "echo" {
		return fail(stderr, "load", fmt.Errorf("unknown app %q (load drives: echo)", *app))
	}

	cfg := loadgen.Config{
		Network: *network, Addr: *addr,
		Conns: *conns, Size: sz, Depth: *depth,
		Duration: *duration, Timeout: *timeout, Seed: *seed,
	}
	if isTerminal(stdout) {
		var last loadgen.Progress
		cfg.Progress = func(p loadgen.Progress) {
			secs := (p.Elapsed - last.Elapsed).Seconds()
			fmt.Fprintf(stdout, "%6.1fs %12.0f req/s %10.2f MB/s %6d errors\n", p.Elapsed.Seconds(),
				float64(p.Requests-last.Requests)/secs, float64(p.Bytes-last.Bytes)/secs/1e6, p.Errors)
			last = p
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := cfg.Run(ctx)
	if err != nil {
		return fail(stderr, "load", err)
	}

	fmt.Fprintf(stdout, "%s %s: %d conns, %d x %d bytes per write, %v\n", *network, *addr, *conns, *depth, sz, res.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(stdout, "requests: %d (%.0f req/s)\n", res.Requests, res.RequestsPerSecond())
	fmt.Fprintf(stdout, "throughput: %.2f MB/s\n", res.MBPerSecond())
	fmt.Fprintf(stdout, "errors: %d\n", res.Errors)
	for _, e := range res.FirstErrors {
		fmt.Fprintf(stdout, "\t%v\n", e)
	}
	fmt.Fprintln(stdout, benchLine(*app, res))
	if res.Errors > 0 {
		fmt.Fprintf(stderr, "merlin load: %d of %d connections failed; first: %v\n", res.Errors, *conns, res.FirstErrors[0])
		return 1
	}
	if res.Requests == 0 {
		fmt.Fprintf(stderr, "merlin load: no request completed\n")
		return 1
	}
	return 0
}

// benchLine formats res as a Go benchmark result line: N is the number of
// requests and ns/op the run's time per request over all connections.
func benchLine(app string, res loadgen.Result) string {
	c := res.Config
	var nsPerOp float64
	if res.Requests > 0 {
		nsPerOp = float64(res.Elapsed.Nanoseconds()) / float64(res.Requests)
	}
	return fmt.Sprintf("BenchmarkLoad/app=%s/conns=%d/size=%d/depth=%d %d %.1f ns/op %.1f req/s %.2f MB/s %d errors",
		app, c.Conns, c.Size, c.Depth, res.Requests, nsPerOp, res.RequestsPerSecond(), res.MBPerSecond(), res.Errors)
}
