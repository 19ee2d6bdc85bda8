package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/merlin-net/merlin/apps/http1"
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

SIGUSR1 prints the transport's counters now, as one line
"stats accepted=N ... " to stdout (-stats prints the same line at exit):
merlin bench reads them at the edges of its measured window.

Apps: echo writes back every byte; http is HTTP/1.1 (apps/http1): GET
/plaintext and GET /json (TechEmpower's tests), POST or PUT /echo (the request
body back), 404 elsewhere, with keep-alive and pipelining. Its time
limits against slow clients are Kestrel's (-http-* flags): a keep-alive
timeout between requests (the connection closes), a request-headers
timeout from a request's first byte (408), and a minimum body data rate
after a grace period (408). With -netconn, net/http enforces the first
two (ReadHeaderTimeout, IdleTimeout) and has no body rate.

With -netconn the application runs behind the net.Conn adapter
(transports.NetListener), one goroutine per connection doing blocking
reads and writes, as code written for package net would: the other place
application code can run. echo is then a read/write loop; http is Go's
net/http serving the same routes (http1.NetHTTP).

With -tls the application runs behind the net.Conn adapter under
crypto/tls (TLS 1.2 or later; ALPN offers http/1.1 and http/1.0 only):
http is HTTPS through net/http, echo writes back the decrypted bytes.
The certificate and key come from -tls-cert and -tls-key (PEM), or,
without them, a self-signed ECDSA certificate for 127.0.0.1, ::1 and
localhost is generated at start and written as PEM to a temporary file,
removed at exit. A second stdout line after the listening one names the
file and the certificate's SHA-256 fingerprint:
"tls certificate PATH sha256 AB:CD:..."; a client trusts it with
curl --cacert PATH.

Profiling: -cpuprofile and -trace write a CPU profile and an execution
trace of the whole run, completed at exit; -pprof serves net/http/pprof on
its own listener (e.g. -pprof 127.0.0.1:6060, then go tool pprof
http://127.0.0.1:6060/debug/pprof/profile?seconds=10).

Examples:

	merlin serve -transport sockets -addr 127.0.0.1:0
	merlin serve -transport sockets:maxwritebuffer=256k -app echo
	merlin serve -network unix -addr /tmp/merlin.sock
	merlin serve -transport sockets -netconn -cpuprofile cpu.pprof
	merlin serve -transport uring -app http -addr 127.0.0.1:8080
	merlin serve -app http -tls -addr 127.0.0.1:8443
	merlin serve -app http -http-headers-timeout 5s -http-keepalive-timeout 0
`

// serve is "merlin serve".
func serve(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", serveSynopsis)
	var a serveArgs
	a.register(fs)
	if status, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return status
	}
	if err := a.check(fs); err != nil {
		return usageError(fs, stderr, "%v", err)
	}
	h, ok := apps[a.app]
	if !ok {
		return fail(stderr, "serve", fmt.Errorf("unknown app %q (apps: %s)", a.app, appNames()))
	}
	level := slog.LevelInfo
	if a.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if a.app == "http" {
		a.http.Logger = log
		h = http1.New(a.http)
	}
	stopProf, err := a.prof.start(log)
	if err != nil {
		return fail(stderr, "serve", err)
	}
	defer func() {
		if err := stopProf(); err != nil {
			fmt.Fprintf(stderr, "merlin serve: %v\n", err)
		}
	}()
	var cert *serverCert
	if a.tls {
		if cert, err = loadServerCert(a.certFile, a.keyFile, os.TempDir()); err != nil {
			return fail(stderr, "serve", err)
		}
		defer cert.cleanup()
	}
	t, err := transports.Open(a.spec, transports.Config{Logger: log})
	if err != nil {
		return fail(stderr, "serve", err)
	}
	defer t.Close()
	// Catch the signals before saying we listen: a client that signals
	// as soon as it reads the line must reach the graceful path.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	lnAddr, stopNet, err := a.listen(t, h, cert, log)
	if err != nil {
		return fail(stderr, "serve", err)
	}
	return a.serveUntil(ctx, stop, t, lnAddr, stopNet, cert, log, stdout, stderr)
}

// serveArgs are merlin serve's flags.
type serveArgs struct {
	spec, app, network, addr string
	timeout                  time.Duration
	stats, verbose, netconn  bool
	tls                      bool
	certFile, keyFile        string
	prof                     profiling
	limits                   httpLimits
	http                     http1.Config // -app http's, from limits (check)
}

// httpLimits are the -http-* flags: the http app's time limits. Zero or
// negative turns one off (the grace: no grace).
type httpLimits struct {
	headers, keepAlive, grace time.Duration
	rate                      float64
}

func (l *httpLimits) flags(fs *flag.FlagSet) {
	fs.DurationVar(&l.headers, "http-headers-timeout", http1.DefaultRequestHeadersTimeout,
		"-app http: time from a request's first byte until its head is whole; then 408 and close (Kestrel's RequestHeadersTimeout); 0 turns it off")
	fs.DurationVar(&l.keepAlive, "http-keepalive-timeout", http1.DefaultKeepAliveTimeout,
		"-app http: time a connection may wait with no request under way; then it closes (Kestrel's KeepAliveTimeout); 0 turns it off")
	fs.Float64Var(&l.rate, "http-min-body-rate", http1.DefaultMinRequestBodyDataRate,
		"-app http: least average `bytes/s` of a request body once the grace has passed; below it, 408 and close (Kestrel's MinRequestBodyDataRate); 0 turns it off")
	fs.DurationVar(&l.grace, "http-min-body-rate-grace", http1.DefaultMinRequestBodyDataRateGrace,
		"-app http: how long a body may take before -http-min-body-rate applies; 0 means none")
}

// config returns the http1.Config of the limits: http1 takes a negative
// value as off, and zero as its default.
func (l httpLimits) config() http1.Config {
	off := func(d time.Duration) time.Duration {
		if d <= 0 {
			return -1
		}
		return d
	}
	rate := l.rate
	if rate <= 0 {
		rate = -1
	}
	return http1.Config{
		RequestHeadersTimeout:       off(l.headers),
		KeepAliveTimeout:            off(l.keepAlive),
		MinRequestBodyDataRate:      rate,
		MinRequestBodyDataRateGrace: off(l.grace),
	}
}

func (a *serveArgs) register(fs *flag.FlagSet) {
	fs.StringVar(&a.spec, "transport", "auto", "transport `spec`: a name, auto, or name:key=value,... (see \"merlin transports\")")
	fs.StringVar(&a.app, "app", "echo", "application to serve: "+appNames())
	fs.StringVar(&a.network, "network", "tcp", "`network`: tcp, tcp4, tcp6 or unix")
	fs.StringVar(&a.addr, "addr", "", "`address` to listen on: host:port (default "+defaultAddr+"; port 0 picks a free one), or for unix a socket path (required)")
	fs.DurationVar(&a.timeout, "shutdown-timeout", 10*time.Second, "how long graceful shutdown waits for connections to close before aborting them")
	fs.BoolVar(&a.stats, "stats", false, "print the transport's counters to stdout at exit (one line of key=value)")
	fs.BoolVar(&a.verbose, "v", false, "log at debug level")
	fs.BoolVar(&a.netconn, "netconn", false, "run the application behind the net.Conn adapter, a goroutine per connection (http: net/http)")
	fs.BoolVar(&a.tls, "tls", false, "serve over TLS (crypto/tls behind the net.Conn adapter; implies -netconn)")
	fs.StringVar(&a.certFile, "tls-cert", "", "with -tls: the certificate chain `file` (PEM); default: a generated self-signed certificate")
	fs.StringVar(&a.keyFile, "tls-key", "", "with -tls: the private key `file` (PEM) of -tls-cert")
	a.limits.flags(fs)
	a.prof.flags(fs)
}

// check validates the flags and fills in what they imply.
func (a *serveArgs) check(fs *flag.FlagSet) error {
	if err := checkNetwork(a.network); err != nil {
		return err
	}
	if a.addr == "" {
		if a.network == "unix" {
			return errors.New("-network unix needs -addr, a socket path")
		}
		a.addr = defaultAddr
	}
	switch {
	case a.timeout <= 0:
		return errors.New("-shutdown-timeout must be positive")
	case !a.tls && (a.certFile != "" || a.keyFile != ""):
		return errors.New("-tls-cert and -tls-key need -tls")
	case (a.certFile == "") != (a.keyFile == ""):
		return errors.New("-tls-cert and -tls-key go together")
	}
	if a.tls {
		a.netconn = true
	}
	var httpFlag string
	fs.Visit(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "http-") {
			httpFlag = f.Name
		}
	})
	if httpFlag != "" && a.app != "http" {
		return fmt.Errorf("-%s needs -app http", httpFlag)
	}
	a.http = a.limits.config()
	return nil
}

// listen listens on t: with h inline, or (-netconn) the app behind the
// net.Conn adapter, through TLS with cert. stopNet, if not nil, shuts the
// adapter's server down.
func (a *serveArgs) listen(t transports.Transport, h transports.Handler, cert *serverCert, log *slog.Logger) (addr net.Addr, stopNet func(context.Context) error, err error) {
	if !a.netconn {
		ln, err := t.Listen(a.network, a.addr, h)
		if err != nil {
			return nil, nil, err
		}
		return ln.Addr(), nil, nil
	}
	nl, err := transports.NetListener(t, a.network, a.addr)
	if err != nil {
		return nil, nil, err
	}
	addr = nl.Addr()
	if cert != nil {
		nl = tls.NewListener(nl, cert.tlsConfig())
	}
	if a.app == "http" {
		// net/http has the headers and keep-alive timeouts only, which
		// NewServer maps.
		srv, limits := netHTTPServer(log), http1.NewServer(a.http)
		srv.ReadHeaderTimeout, srv.IdleTimeout = limits.ReadHeaderTimeout, limits.IdleTimeout
		return addr, serveHTTP(nl, srv), nil
	}
	return addr, serveNetConn(nl), nil
}

// serveUntil says where it listens, serves until ctx ends (printing the
// counters at each SIGUSR1), then shuts down within the timeout and
// returns the exit status.
func (a *serveArgs) serveUntil(ctx context.Context, stop func(), t transports.Transport, lnAddr net.Addr, stopNet func(context.Context) error, cert *serverCert, log *slog.Logger, stdout, stderr io.Writer) int {
	var out sync.Mutex // serialises stdout between the stats lines and the rest
	defer printStatsOnUSR1(t, &out, stdout)()
	out.Lock()
	line := fmt.Sprintf("listening on %s (transport %s)\n", lnAddr, t.Name())
	if cert != nil {
		line += fmt.Sprintf("tls certificate %s sha256 %s\n", cert.path, cert.fingerprint())
	}
	io.WriteString(stdout, line) // one write: a reader of the first line may read both
	out.Unlock()
	log.Info("serving", "app", a.app, "network", a.network, "addr", lnAddr.String(), "transport", t.Name(), "spec", a.spec, "netconn", a.netconn, "tls", a.tls)

	<-ctx.Done()
	stop() // a second signal now ends the process at once
	log.Info("shutting down", "timeout", a.timeout, "open", t.Stats().Open())
	sctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	defer cancel()
	var err error
	if stopNet != nil {
		err = stopNet(sctx)
	}
	if terr := t.Shutdown(sctx); err == nil {
		err = terr
	}
	status := 0
	if err != nil {
		status = fail(stderr, "serve", fmt.Errorf("shutdown: connections still open after %v were aborted: %w", a.timeout, err))
	} else {
		log.Info("shut down")
	}
	if a.stats {
		out.Lock()
		fmt.Fprintln(stdout, statsLine(t.Stats()))
		out.Unlock()
	}
	return status
}

// printStatsOnUSR1 prints t's counters to stdout, under out, at each
// SIGUSR1, until the function it returns is called.
func printStatsOnUSR1(t transports.Transport, out *sync.Mutex, stdout io.Writer) (stop func()) {
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-usr1:
				out.Lock()
				fmt.Fprintln(stdout, statsLine(t.Stats()))
				out.Unlock()
			case <-done:
				return
			}
		}
	})
	return func() {
		signal.Stop(usr1)
		close(done)
		wg.Wait()
	}
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
