package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/merlin-net/merlin/transports"
)

// defaultAddr is where serve listens and load connects on TCP without
// -addr.
const defaultAddr = "127.0.0.1:7000"

const serveSynopsis = `Usage: merlin serve [flags]

serve listens with an application on a transport, prints one line
"listening on ADDR (transport NAME)" to stdout once it accepts connections
(ADDR is the real address, so port 0 works), and serves until SIGINT or
SIGTERM. It then shuts down gracefully: it stops accepting, closes every
connection once its output is flushed, and exits 0; connections still open
after -shutdown-timeout are aborted and it exits 1. A second signal during
shutdown ends it at once. Errors (a bad spec, a failed listen) exit 1;
usage errors exit 2. Logs go to stderr.

Examples:

	merlin serve -transport sockets -addr 127.0.0.1:0
	merlin serve -transport sockets:maxwritebuffer=256k -app echo
	merlin serve -network unix -addr /tmp/merlin.sock
`

// serve is "merlin serve".
func serve(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", serveSynopsis)
	spec := fs.String("transport", "auto", "transport `spec`: a name, auto, or name:key=value,... (see \"merlin transports\")")
	app := fs.String("app", "echo", "application to serve: "+appNames())
	network := fs.String("network", "tcp", "`network`: tcp, tcp4, tcp6 or unix")
	addr := fs.String("addr", "", "`address` to listen on: host:port (default "+defaultAddr+"; port 0 picks a free one), or for unix a socket path (required)")
	timeout := fs.Duration("shutdown-timeout", 10*time.Second, "how long graceful shutdown waits for connections to close before aborting them")
	stats := fs.Bool("stats", false, "print the transport's counters to stdout at exit (one line of key=value)")
	verbose := fs.Bool("v", false, "log at debug level")
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
	if *timeout <= 0 {
		return usageError(fs, stderr, "-shutdown-timeout must be positive")
	}
	h, ok := apps[*app]
	if !ok {
		return fail(stderr, "serve", fmt.Errorf("unknown app %q (apps: %s)", *app, appNames()))
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	t, err := transports.Open(*spec, transports.Config{Logger: log})
	if err != nil {
		return fail(stderr, "serve", err)
	}
	defer t.Close()

	// Catch the signals before saying we listen: a client that signals
	// as soon as it reads the line must reach the graceful path.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	ln, err := t.Listen(*network, *addr, h)
	if err != nil {
		return fail(stderr, "serve", err)
	}
	fmt.Fprintf(stdout, "listening on %s (transport %s)\n", ln.Addr(), t.Name())
	log.Info("serving", "app", *app, "network", *network, "addr", ln.Addr().String(), "transport", t.Name(), "spec", *spec)

	<-ctx.Done()
	stop() // a second signal now ends the process at once
	log.Info("shutting down", "timeout", *timeout, "open", t.Stats().Open())

	sctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	status := 0
	if err := t.Shutdown(sctx); err != nil {
		status = fail(stderr, "serve", fmt.Errorf("shutdown: connections still open after %v were aborted: %w", *timeout, err))
	} else {
		log.Info("shut down")
	}
	if *stats {
		fmt.Fprintln(stdout, statsLine(t.Stats()))
	}
	return status
}

// statsLine formats s as one line: "stats accepted=1 dialed=0 ...", the
// transport-specific counters last, sorted by name.
func statsLine(s transports.Stats) string {
	var b strings.Builder
	b.WriteString("stats")
	for _, kv := range []struct {
		k string
		v uint64
	}{
		{"accepted", s.Accepted}, {"dialed", s.Dialed}, {"closed", s.Closed}, {"open", s.Open()},
		{"bytes_in", s.BytesIn}, {"bytes_out", s.BytesOut}, {"reads", s.Reads}, {"writes", s.Writes},
		{"syscalls", s.Syscalls}, {"wakeups", s.Wakeups}, {"events", s.Events},
		{"read_pauses", s.ReadPauses}, {"accept_errors", s.AcceptErrors},
	} {
		fmt.Fprintf(&b, " %s=%d", kv.k, kv.v)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Extra)) {
		fmt.Fprintf(&b, " %s=%d", k, s.Extra[k])
	}
	return b.String()
}
