// peer.h is what the C peers share, as peers/internal/peer is for the Go
// ones: merlin serve's flags, the listening socket, the listening line, and
// the signals that end a peer. Each C peer includes it by its relative path
// ("../internal/cpeer/peer.h"), so that a peer stays one main.c that one cc
// command builds. Everything here runs before the event loop starts, except
// peer_addr_string.
#ifndef MERLIN_CPEER_PEER_H
#define MERLIN_CPEER_PEER_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE // accept4, and what Linux adds to POSIX: include this header first
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

// struct peer describes a peer: what -describe answers merlin bench with.
struct peer {
	const char *name;      // the peer's name, as in "listening on ADDR (peer NAME)"
	const char *mechanism; // "epoll" or "io_uring"
	bool floor;            // a floor: the minimal server of its mechanism
};

// struct peer_flags holds merlin serve's flags, as peers/internal/peer.Flags.
struct peer_flags {
	const char *network; // tcp, tcp4 or tcp6
	const char *addr;    // HOST:PORT; port 0 picks a free one
	const char *app;     // only "echo"
};

// peer_fatal prints "PROG: message" on stderr and exits with status.
static void peer_fatal(int status, const char *format, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static const char *peer_prog = "peer";

static void peer_fatal(int status, const char *format, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", peer_prog);
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static void peer_usage(FILE *out, const struct peer *p)
{
	fprintf(out,
		"Usage: %s [flags]\n\n"
		"The %s peer: an echo server in C on %s, with merlin serve's flags. It prints\n"
		"\"listening on ADDR (peer %s)\" once it accepts, and exits 0 on SIGTERM or SIGINT.\n\n"
		"Flags:\n\n"
		"  -addr address\n\taddress to listen on; port 0 picks a free one (default \"127.0.0.1:7000\")\n"
		"  -app application\n\tapplication: echo (default \"echo\")\n"
		"  -apps\n\tprint the apps this peer serves, comma-separated, and exit\n"
		"  -cpuprofile file\n\taccepted for merlin bench -profile, and ignored (profile C peers with perf)\n"
		"  -describe\n\tprint \"apps=echo mechanism=%s floor=%s\" and exit (merlin bench asks)\n"
		"  -network network\n\tnetwork: tcp, tcp4 or tcp6 (default \"tcp\")\n",
		peer_prog, p->name, p->mechanism, p->name, p->mechanism, p->floor ? "true" : "false");
}

// peer_parse parses the command line as Go's flag package would (-name
// value, -name=value, one dash or two), answers -apps, -describe and -h
// itself, and exits on a bad flag (status 2) or an unknown app (status 1).
static struct peer_flags peer_parse(int argc, char **argv, const struct peer *p)
{
	struct peer_flags f = {.network = "tcp", .addr = "127.0.0.1:7000", .app = "echo"};
	const char *cpuprofile = NULL;
	if (argc > 0)
		peer_prog = argv[0];
	int i;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-' || a[1] == '\0')
			break; // the first non-flag argument
		a += a[1] == '-' ? 2 : 1;
		if (a[0] == '\0') { // "--" ends the flags
			i++;
			break;
		}
		const char *eq = strchr(a, '=');
		size_t n = eq ? (size_t)(eq - a) : strlen(a);
		const char **dst = NULL;
		if (n == 4 && !strncmp(a, "apps", n)) {
			puts("echo");
			exit(0);
		} else if (n == 8 && !strncmp(a, "describe", n)) {
			printf("apps=echo mechanism=%s floor=%s\n", p->mechanism, p->floor ? "true" : "false");
			exit(0);
		} else if ((n == 1 && a[0] == 'h') || (n == 4 && !strncmp(a, "help", n))) {
			peer_usage(stdout, p);
			exit(0);
		} else if (n == 4 && !strncmp(a, "addr", n)) {
			dst = &f.addr;
		} else if (n == 7 && !strncmp(a, "network", n)) {
			dst = &f.network;
		} else if (n == 3 && !strncmp(a, "app", n)) {
			dst = &f.app;
		} else if (n == 10 && !strncmp(a, "cpuprofile", n)) {
			dst = &cpuprofile;
		} else {
			fprintf(stderr, "flag provided but not defined: -%.*s\n", (int)n, a);
			peer_usage(stderr, p);
			exit(2);
		}
		if (eq) {
			*dst = eq + 1;
		} else if (i + 1 < argc) {
			*dst = argv[++i];
		} else {
			fprintf(stderr, "flag needs an argument: -%s\n", a);
			peer_usage(stderr, p);
			exit(2);
		}
	}
	if (i < argc)
		peer_fatal(2, "unexpected argument \"%s\"", argv[i]);
	if (strcmp(f.app, "echo") != 0)
		peer_fatal(1, "unknown app \"%s\" (apps: echo)", f.app);
	if (strcmp(f.network, "tcp") && strcmp(f.network, "tcp4") && strcmp(f.network, "tcp6"))
		peer_fatal(2, "unknown network \"%s\" (want tcp, tcp4 or tcp6)", f.network);
	if (cpuprofile)
		fprintf(stderr, "%s: -cpuprofile %s ignored: a C peer has no Go profiler (use perf record -p PID)\n", peer_prog, cpuprofile);
	return f;
}

// peer_addr_string formats a socket address as Go's net package does:
// "127.0.0.1:7000", "[::1]:7000".
static void peer_addr_string(const struct sockaddr_storage *ss, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN];
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
		snprintf(out, size, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
		snprintf(out, size, "%s:%u", host, ntohs(s4->sin_port));
	}
}

// peer_resolve turns f's HOST:PORT into a socket address for its network,
// as Go's net.Listen does: an empty host is every address (tcp: IPv6 and
// IPv4 on one socket, *dualstack set), a literal must fit the network, a
// name is resolved. It exits on error.
static socklen_t peer_resolve(const struct peer_flags *f, struct sockaddr_storage *ss, bool *dualstack)
{
	const char *colon = strrchr(f->addr, ':');
	if (!colon)
		peer_fatal(1, "listen %s %s: missing port in address", f->network, f->addr);
	char host[256];
	size_t hn = (size_t)(colon - f->addr);
	if (hn >= sizeof host)
		peer_fatal(1, "listen %s %s: host too long", f->network, f->addr);
	memcpy(host, f->addr, hn);
	host[hn] = '\0';
	if (hn >= 2 && host[0] == '[' && host[hn - 1] == ']') { // "[::1]:0"
		memmove(host, host + 1, hn - 2);
		host[hn - 2] = '\0';
	} else if (strchr(host, ':')) {
		peer_fatal(1, "listen %s %s: too many colons in address (IPv6 goes in brackets: [::1]:0)", f->network, f->addr);
	}
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno || port < 0 || port > 65535)
		peer_fatal(1, "listen %s %s: invalid port", f->network, f->addr);

	bool want4 = strcmp(f->network, "tcp6") != 0, want6 = strcmp(f->network, "tcp4") != 0;
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	*dualstack = false;
	if (host[0] == '\0') {
		if (want6) {
			s6->sin6_family = AF_INET6;
			s6->sin6_addr = in6addr_any;
			s6->sin6_port = htons((uint16_t)port);
			*dualstack = want4;
			return sizeof *s6;
		}
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_ANY);
		s4->sin_port = htons((uint16_t)port);
		return sizeof *s4;
	}
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		if (!want4)
			peer_fatal(1, "listen %s %s: not an IPv6 address", f->network, f->addr);
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		return sizeof *s4;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		if (!want6)
			peer_fatal(1, "listen %s %s: not an IPv4 address", f->network, f->addr);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		// "[::]:0" on tcp is both families, as Go's "tcp" does.
		*dualstack = want4 && IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
		return sizeof *s6;
	}
	struct addrinfo hints = {.ai_family = want4 && want6 ? AF_UNSPEC : want4 ? AF_INET : AF_INET6,
				 .ai_socktype = SOCK_STREAM};
	struct addrinfo *res, *ai, *pick = NULL;
	int rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0)
		peer_fatal(1, "listen %s %s: %s", f->network, f->addr, gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) // IPv4 first, as Go prefers
		if (!pick || (ai->ai_family == AF_INET && pick->ai_family != AF_INET))
			pick = ai;
	socklen_t len = pick->ai_addrlen;
	memcpy(ss, pick->ai_addr, len);
	freeaddrinfo(res);
	if (ss->ss_family == AF_INET6)
		s6->sin6_port = htons((uint16_t)port);
	else
		s4->sin_port = htons((uint16_t)port);
	return len;
}

// peer_listen opens the listening socket f names (type_flags are added to
// SOCK_STREAM: SOCK_NONBLOCK for epoll), as plain TCP (not MPTCP) with
// SO_REUSEADDR and TCP_NODELAY (accepted sockets inherit it: without it a
// ping-pong waits 40 ms for delayed ACKs), and writes its address as Go
// prints it into addr. It exits on error.
static int peer_listen(const struct peer_flags *f, int type_flags, char *addr, size_t addrsize)
{
	struct sockaddr_storage ss;
	bool dualstack;
	socklen_t len = peer_resolve(f, &ss, &dualstack);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | type_flags, IPPROTO_TCP);
	if (fd < 0)
		peer_fatal(1, "socket: %s", strerror(errno));
	int one = 1, v6only = !dualstack;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
	    (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0))
		peer_fatal(1, "setsockopt: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		peer_fatal(1, "listen %s %s: bind: %s", f->network, f->addr, strerror(errno));
	if (listen(fd, 4096) < 0) // the kernel caps it at net.core.somaxconn, as Go asks
		peer_fatal(1, "listen %s %s: %s", f->network, f->addr, strerror(errno));
	len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) // the real port, for port 0
		peer_fatal(1, "getsockname: %s", strerror(errno));
	peer_addr_string(&ss, addr, addrsize);
	return fd;
}

// peer_listening prints the line merlin bench waits for, at once.
static void peer_listening(const char *addr, const struct peer *p)
{
	printf("listening on %s (peer %s)\n", addr, p->name);
	fflush(stdout);
}

// peer_signalfd blocks SIGTERM and SIGINT and returns a signalfd that reads
// them (flags: SFD_NONBLOCK for epoll), so that the event loop learns of
// them as of any other event; SIGPIPE is ignored (sends also pass
// MSG_NOSIGNAL). It exits on error.
static int peer_signalfd(int flags)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		peer_fatal(1, "sigprocmask: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	int fd = signalfd(-1, &set, SFD_CLOEXEC | flags);
	if (fd < 0)
		peer_fatal(1, "signalfd: %s", strerror(errno));
	return fd;
}

// struct peer_buf is a connection's pending output: bytes [off, len) of p
// are still to be sent.
struct peer_buf {
	char *p;
	size_t off, len, cap;
};

// peer_buf_pending is how many bytes b still holds.
static size_t peer_buf_pending(const struct peer_buf *b)
{
	return b->len - b->off;
}

// peer_buf_append adds n bytes to b, first moving what is pending to the
// front; it exits when memory runs out.
static void peer_buf_append(struct peer_buf *b, const void *data, size_t n)
{
	if (b->off > 0) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			peer_fatal(1, "out of memory (%zu bytes of output)", cap);
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

// peer_buf_free releases b's memory.
static void peer_buf_free(struct peer_buf *b)
{
	free(b->p);
	*b = (struct peer_buf){0};
}

#endif
