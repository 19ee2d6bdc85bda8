// Package peer is what the peer servers share: merlin serve's flags, the
// listening socket and line, profiling, TLS, and the signals that end them.
package peer

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Flags are the flags every peer takes, as merlin serve names them.
type Flags struct {
	Network    string
	Addr       string
	App        string
	CPUProfile string
	// TLS asks for the apps over TLS with the certificate chain and key
	// of the PEM files TLSCert and TLSKey (merlin bench passes its own);
	// only for a peer whose Info says it can.
	TLS             bool
	TLSCert, TLSKey string
}

// Info describes a peer, as it answers merlin bench's -describe.
type Info struct {
	// Name names the peer in its listening line.
	Name string
	// Apps lists the applications the peer serves; the first is the
	// default (none: echo).
	Apps []string
	// Mechanism is how the peer waits for the kernel: Epoll (Go's
	// netpoller included) or Uring.
	Mechanism string
	// Floor marks a floor: the minimal server of its mechanism (the C
	// peers), or nginx for HTTP.
	Floor bool
	// TLS says the peer serves its apps over crypto/tls with -tls: it
	// listens with Flags.Listen, which then wraps its listener.
	TLS bool
}

// Mechanisms, as merlin bench names them.
const (
	Epoll = "epoll"
	Uring = "io_uring"
)

// Describe is the -describe answer: "apps=echo,http mechanism=epoll
// floor=false", and " tls=true" after it for a peer that serves TLS (a
// peer that says nothing does not: the C peers).
func (in Info) Describe() string {
	d := fmt.Sprintf("apps=%s mechanism=%s floor=%t", strings.Join(in.apps(), ","), in.Mechanism, in.Floor)
	if in.TLS {
		d += " tls=true"
	}
	return d
}

func (in Info) apps() []string {
	if len(in.Apps) == 0 {
		return []string{"echo"}
	}
	return in.Apps
}

// Parse defines the common flags on flag.CommandLine, lets extra define
// the peer's own, and parses the command line. It answers -apps and
// -describe itself, and exits on a bad flag, app or network.
func Parse(info Info, extra func(fs *flag.FlagSet)) Flags {
	name, apps := info.Name, info.apps()
	var f Flags
	fs := flag.CommandLine
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [flags]\n\nThe %s peer: a server with merlin serve's flags (apps: %s). It prints\n\"listening on ADDR (peer %s)\" once it accepts, and exits on SIGTERM or SIGINT.\n\nFlags:\n\n", os.Args[0], name, strings.Join(apps, ", "), name)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.Network, "network", "tcp", "`network`: tcp, tcp4 or tcp6")
	fs.StringVar(&f.Addr, "addr", "127.0.0.1:7000", "`address` to listen on; port 0 picks a free one")
	fs.StringVar(&f.App, "app", apps[0], "application: "+strings.Join(apps, ", "))
	fs.StringVar(&f.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run to `file`")
	fs.BoolVar(&f.TLS, "tls", false, "serve over TLS (crypto/tls), with -tls-cert and -tls-key; only a peer whose -describe says tls=true")
	fs.StringVar(&f.TLSCert, "tls-cert", "", "with -tls: the certificate chain `file` (PEM)")
	fs.StringVar(&f.TLSKey, "tls-key", "", "with -tls: the private key `file` (PEM) of -tls-cert")
	listApps := fs.Bool("apps", false, "print the apps this peer serves, comma-separated, and exit")
	describe := fs.Bool("describe", false, "print \"apps=A,B mechanism=M floor=BOOL\" and exit (merlin bench asks)")
	if extra != nil {
		extra(fs)
	}
	flag.Parse()
	if *describe {
		fmt.Println(info.Describe())
		os.Exit(0)
	}
	if *listApps {
		fmt.Println(strings.Join(apps, ","))
		os.Exit(0)
	}
	if flag.NArg() > 0 {
		Fatalf(2, "unexpected argument %q", flag.Arg(0))
	}
	if !slices.Contains(apps, f.App) {
		Fatalf(1, "unknown app %q (apps: %s)", f.App, strings.Join(apps, ", "))
	}
	switch f.Network {
	case "tcp", "tcp4", "tcp6":
	default:
		Fatalf(2, "unknown network %q (want tcp, tcp4 or tcp6)", f.Network)
	}
	switch {
	case f.TLS && !info.TLS:
		Fatalf(2, "-tls: the %s peer does not serve TLS", name)
	case !f.TLS && (f.TLSCert != "" || f.TLSKey != ""):
		Fatalf(2, "-tls-cert and -tls-key need -tls")
	case f.TLS && (f.TLSCert == "" || f.TLSKey == ""):
		// merlin serve generates a certificate here; a peer does not
		// carry a copy of that code (merlin bench passes its own).
		Fatalf(2, "-tls needs -tls-cert and -tls-key")
	}
	return f
}

// HelloWorld is the body of TechEmpower's plaintext test and the message
// of its JSON test.
const HelloWorld = "Hello, World!"

// Fatalf prints an error and exits with status.
func Fatalf(status int, format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s: %s\n", os.Args[0], fmt.Sprintf(format, a...))
	os.Exit(status)
}

// StartProfile starts the CPU profile the flags ask for; the returned
// function completes it.
func (f Flags) StartProfile() func() {
	if f.CPUProfile == "" {
		return func() {}
	}
	out, err := os.Create(f.CPUProfile)
	if err != nil {
		Fatalf(1, "-cpuprofile: %v", err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		Fatalf(1, "-cpuprofile: %v", err)
	}
	return func() {
		pprof.StopCPUProfile()
		out.Close()
	}
}

// Listen opens the listening socket f names, as plain TCP (no MPTCP), as
// merlin's transports do, under crypto/tls with -tls; it exits the peer if
// it cannot. Addr of the listener is the socket's either way.
func (f Flags) Listen() net.Listener {
	var cfg *tls.Config
	if f.TLS {
		cert, err := tls.LoadX509KeyPair(f.TLSCert, f.TLSKey)
		if err != nil {
			Fatalf(1, "-tls-cert and -tls-key: %v", err)
		}
		cfg = tlsConfig(cert)
	}
	lc := net.ListenConfig{}
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), f.Network, f.Addr)
	if err != nil {
		Fatalf(1, "%v", err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	return ln
}

// ListenRaw opens the listening socket f names as a bare descriptor, for
// the peers that make every system call themselves (gofloor-epoll,
// gofloor-uring), as the C peers' peer_listen does: typeFlags are added to
// SOCK_STREAM (SOCK_CLOEXEC; SOCK_NONBLOCK for epoll; they are the
// caller's so that this file builds where Linux's are not defined), then
// SO_REUSEADDR and TCP_NODELAY (accepted sockets inherit it; merlin's
// transports and Go's net set it on every connection), bind, and listen
// with a backlog of 4096 (the kernel caps it at net.core.somaxconn). It
// exits the peer if it cannot listen, and returns the socket's address,
// with the port that port 0 picked.
func (f Flags) ListenRaw(typeFlags int) (int, net.Addr) {
	a, err := net.ResolveTCPAddr(f.Network, f.Addr)
	if err != nil {
		Fatalf(1, "%v", err)
	}
	family, sa := unix.AF_INET, unix.Sockaddr(nil)
	if ip4 := a.IP.To4(); ip4 != nil || a.IP == nil {
		s := &unix.SockaddrInet4{Port: a.Port}
		if ip4 != nil {
			s.Addr = [4]byte(ip4)
		}
		sa = s
	} else {
		family = unix.AF_INET6
		s := &unix.SockaddrInet6{Port: a.Port}
		s.Addr = [16]byte(a.IP.To16())
		sa = s
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|typeFlags, 0)
	if err == nil {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	if err == nil {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	if err == nil {
		err = unix.Bind(fd, sa)
	}
	if err == nil {
		err = unix.Listen(fd, 4096)
	}
	if err != nil {
		Fatalf(1, "listen %s: %v", f.Addr, err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		Fatalf(1, "getsockname: %v", err)
	}
	switch s := got.(type) {
	case *unix.SockaddrInet4:
		return fd, &net.TCPAddr{IP: net.IP(s.Addr[:]), Port: s.Port}
	case *unix.SockaddrInet6:
		return fd, &net.TCPAddr{IP: net.IP(s.Addr[:]), Port: s.Port}
	}
	return fd, a
}

// tlsConfig is the server configuration of -tls, as merlin serve -tls's:
// TLS 1.2 at least, and ALPN offering http/1.1 and http/1.0 only (the
// http app is HTTP/1.x; net/http would otherwise offer h2).
func tlsConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1", "http/1.0"},
	}
}

// Listening prints the line merlin bench waits for.
func Listening(addr net.Addr, name string) {
	fmt.Printf("listening on %s (peer %s)\n", addr, name)
}

// Signals returns a context that ends on SIGTERM or SIGINT.
func Signals() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}

// ExitOnSignal runs stop and exits 0 on SIGTERM or SIGINT, from a
// goroutine of its own: for the peers whose loop never returns (the Go
// floors). Such a loop holds the only P while it waits in a raw system
// call; the runtime's preemption (its signal ends the wait) lets the
// goroutine run within 10 ms or so.
func ExitOnSignal(stop func()) {
	ctx, cancel := Signals()
	go func() {
		<-ctx.Done()
		cancel()
		stop()
		os.Exit(0)
	}()
}

// FreePort resolves addr for a framework that binds its own socket with
// SO_REUSEPORT (which would silently share a port already in use by
// another such server): it checks that the port is free by binding it
// without SO_REUSEPORT, and picks a free one for port 0. There is a window
// between the check and the framework's bind; on this loopback-only use,
// a clash shows as a second server's "address already in use".
func FreePort(network, addr string) (string, error) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return "", fmt.Errorf("address %s is not free: %w", addr, err)
	}
	defer ln.Close()
	a, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		return "", errors.New("not a TCP address")
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(a.Port)), nil
}
