// Command nginx is the HTTP floor: Debian's nginx (package nginx-light)
// serving TechEmpower's GET /plaintext and GET /json from one process, with
// no master process and one worker loop on epoll, keep-alive and no access
// log. It serves only -app http, and only those two routes (404 elsewhere).
//
// This program writes nginx's configuration and then replaces itself with
// nginx (execve), so that the process merlin bench measures is nginx. It
// cannot hand nginx a listening socket: nginx takes inherited sockets (the
// NGINX environment variable, as in its binary upgrade), but before 1.23.3
// (Debian 12 has 1.22.1) it dereferences freed memory when it inherits one
// with master_process off, and dies of SIGSEGV (nginx commit d52e568,
// "Fixed segfault when switching off master process during upgrade"). So
// nginx binds the port itself, and this program reserves it first: while a
// socket bound with SO_REUSEADDR and not listening holds it, nginx (also
// SO_REUSEADDR) can bind and listen there, but the kernel gives the port to
// no bind to port 0 and no outgoing connection. A helper
// process (this program again) holds that socket until nginx answers GET
// /plaintext on the port, then prints the listening line and exits; nginx
// reaps it.
//
// The configuration, pid file and nginx's temporary paths live in a
// directory of os.TempDir() named after the process id, which is nginx's
// too; nginx cannot remove it, so each start removes those of processes
// that have exited. SIGTERM ends nginx with status 0 (SIGQUIT gracefully).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/merlin-net/merlin/peers/internal/peer"
	"golang.org/x/sys/unix"
)

var info = peer.Info{Name: "nginx", Apps: []string{"http"}, Mechanism: peer.Epoll, Floor: true}

// waitEnv, set in the helper's environment, holds the address whose
// readiness it waits for.
const waitEnv = "MERLIN_NGINX_WAIT"

func main() {
	if addr := os.Getenv(waitEnv); addr != "" {
		waitReady(addr)
		return
	}
	var nginxPath string
	f := peer.Parse(info, func(fs *flag.FlagSet) {
		fs.StringVar(&nginxPath, "nginx", "", "the nginx `binary` (default: nginx in $PATH, /usr/sbin, /usr/local/sbin)")
	})
	if f.CPUProfile != "" {
		fmt.Fprintf(os.Stderr, "%s: -cpuprofile %s ignored: the process becomes nginx (use perf record -p PID)\n", os.Args[0], f.CPUProfile)
	}
	bin, err := findNginx(nginxPath)
	if err != nil {
		peer.Fatalf(1, "%v", err)
	}
	removeStale()

	hold, addr, v6only, err := reserve(f.Network, f.Addr)
	if err != nil {
		peer.Fatalf(1, "%v", err)
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", dirPrefix, os.Getpid()))
	if err != nil {
		peer.Fatalf(1, "%v", err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := writeConfig(conf, dir, addr, v6only); err != nil {
		peer.Fatalf(1, "%v", err)
	}

	self, err := os.Executable()
	if err != nil {
		peer.Fatalf(1, "%v", err)
	}
	helper := exec.Command(self)
	helper.Env = append(os.Environ(), waitEnv+"="+addr.String())
	helper.Stdout, helper.Stderr = os.Stdout, os.Stderr
	helper.ExtraFiles = []*os.File{hold} // the reservation, kept until nginx listens
	if err := helper.Start(); err != nil {
		peer.Fatalf(1, "starting the readiness helper: %v", err)
	}
	// hold is close-on-exec: from here only the helper has it. -e: errors
	// before the configuration is read go to stderr too.
	err = syscall.Exec(bin, []string{bin, "-e", "stderr", "-p", dir + "/", "-c", conf}, withoutNginxVar(os.Environ()))
	helper.Process.Kill()
	peer.Fatalf(1, "exec %s: %v", bin, err) // only if the exec failed
}

// findNginx returns the nginx binary to run: path if given, else nginx in
// $PATH or where Debian puts it (/usr/sbin is not in every $PATH).
func findNginx(path string) (string, error) {
	const install = "on Debian, apt-get install nginx-light"
	if path != "" {
		if _, err := exec.LookPath(path); err != nil {
			return "", fmt.Errorf("-nginx %s: %w (%s)", path, err, install)
		}
		return path, nil
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
		if _, err := exec.LookPath(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("nginx is not installed (not in $PATH, /usr/sbin or /usr/local/sbin): %s", install)
}

// reserve binds a plain TCP socket to the address network and addr name,
// as net.Listen would (port 0 picks a free port; an empty host with tcp is
// IPv6 and IPv4 both), with SO_REUSEADDR and without listening: nginx can
// then bind and listen on the same address, and the kernel hands the port
// to nobody else. It
// returns the socket (close-on-exec), its address, and whether an IPv6
// socket takes IPv6 only.
func reserve(network, addr string) (*os.File, *net.TCPAddr, bool, error) {
	ta, err := net.ResolveTCPAddr(network, addr)
	if err != nil {
		return nil, nil, false, err
	}
	ip, v6only := ta.IP, network == "tcp6"
	switch {
	case ip == nil && network == "tcp4":
		ip = net.IPv4zero
	case ip == nil:
		ip = net.IPv6unspecified
	case ip.To4() == nil && !ip.IsUnspecified():
		v6only = true
	}
	var sa unix.Sockaddr
	family := unix.AF_INET6
	if ip4 := ip.To4(); ip4 != nil {
		family = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: ta.Port, Addr: [4]byte(ip4)}
	} else {
		sa = &unix.SockaddrInet6{Port: ta.Port, Addr: [16]byte(ip.To16())}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return nil, nil, false, os.NewSyscallError("socket", err)
	}
	f := os.NewFile(uintptr(fd), "nginx port reservation")
	fail := func(call string, err error) (*os.File, *net.TCPAddr, bool, error) {
		f.Close()
		return nil, nil, false, &net.OpError{Op: "listen", Net: network, Addr: ta, Err: os.NewSyscallError(call, err)}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail("setsockopt", err)
	}
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, boolInt(v6only)); err != nil {
			return fail("setsockopt", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	port := 0
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		port = a.Port
	case *unix.SockaddrInet6:
		port = a.Port
	}
	return f, &net.TCPAddr{IP: ip, Port: port}, v6only, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// waitReady is the helper: it waits until nginx, its parent, answers GET
// /plaintext at addr, prints the listening line and exits; it exits 1
// without a line if nginx exits first or has not answered within a
// minute.
func waitReady(addr string) {
	nginx := os.Getppid()
	a, err := net.ResolveTCPAddr("tcp", addr) // a literal: no lookup
	if err != nil {
		peer.Fatalf(1, "%v", err)
	}
	dial := *a
	if a.IP.IsUnspecified() { // every address: ask on loopback, of the same family
		dial.IP = net.IPv6loopback
		if a.IP.To4() != nil {
			dial.IP = net.IPv4(127, 0, 0, 1)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		if os.Getppid() != nginx {
			os.Exit(1) // nginx exited: its error is on stderr
		}
		err := probe(dial.String())
		if err == nil {
			peer.Listening(a, info.Name)
			return
		}
		if time.Now().After(deadline) {
			peer.Fatalf(1, "nginx did not answer at %s within a minute: %v", addr, err)
		}
		time.Sleep(wait) // nginx is starting: it has not bound the port yet
	}
}

// probe asks addr for /plaintext once.
func probe(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("GET /plaintext HTTP/1.1\r\nHost: merlin\r\nConnection: close\r\n\r\n")); err != nil {
		return err
	}
	status, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(status, "HTTP/1.1 200 ") {
		return errors.New("GET /plaintext: " + strings.TrimSpace(status))
	}
	return nil
}

// withoutNginxVar drops an NGINX variable from env: nginx would take it
// for sockets to inherit.
func withoutNginxVar(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "NGINX=") {
			out = append(out, kv)
		}
	}
	return out
}

// dirPrefix starts the name of each run's directory, followed by the
// process id.
const dirPrefix = "merlin-nginx-"

// removeStale removes the directories of earlier runs whose process (nginx)
// has exited.
func removeStale() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, m := range matches {
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(m), dirPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
			os.RemoveAll(m)
		}
	}
}

// config is nginx's configuration: TechEmpower's two tests, one process,
// keep-alive, nothing logged but errors. The temporary paths are nginx's
// own (it creates them at start), so that it needs no /var/lib/nginx.
var config = template.Must(template.New("nginx.conf").Parse(`# Written by merlin's nginx peer (peers/nginx).
daemon off;
master_process off;
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log stderr;
worker_rlimit_nofile {{.NoFile}};

events {
    worker_connections {{.Conns}};
}

http {
    access_log off;
    keepalive_requests 1000000000;
    client_body_temp_path {{.Dir}}/body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;

    server {
        listen {{.Listen}} backlog=4096{{.IPv6Only}};

        location = /plaintext {
            default_type text/plain;
            return 200 "Hello, World!";
        }
        location = /json {
            default_type application/json;
            return 200 '{"message":"Hello, World!"}';
        }
        location / {
            return 404;
        }
    }
}
`))

// writeConfig writes nginx's configuration for the socket at addr into
// path.
func writeConfig(path, dir string, addr *net.TCPAddr, v6only bool) error {
	// One descriptor per connection, and room for bench's largest matrix
	// (1000 connections); nginx raises its own limit (worker_rlimit_nofile)
	// as far as the hard limit allows. worker_connections are allocated,
	// and touched, at start: no more than needed.
	var lim unix.Rlimit
	nofile := uint64(8192)
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil && lim.Max < nofile {
		nofile = lim.Max
	}
	conns := uint64(64)
	if nofile > 128 {
		conns = min(nofile-64, 4096)
	}
	ipv6only := ""
	if addr.IP.To4() == nil && addr.IP.IsUnspecified() {
		// nginx accepts ipv6only only on a wildcard address.
		ipv6only = " ipv6only=off"
		if v6only {
			ipv6only = " ipv6only=on"
		}
	}
	var b strings.Builder
	err := config.Execute(&b, struct {
		Dir, Listen, IPv6Only string
		NoFile, Conns         uint64
	}{dir, addr.String(), ipv6only, nofile, conns})
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
