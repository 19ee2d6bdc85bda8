// Package peers holds other servers, run beside merlin's by `merlin bench
// -peers NAME,...` under the same load generator, pinned the same way. It
// is its own module, so that merlin's module does not depend on them.
//
// Each peer is a command (peers/NAME) with merlin serve's flags: -addr
// (port 0 picks a free port), -network, -app, -cpuprofile; it prints
// "listening on ADDR (peer NAME)" once it accepts, exits 0 on SIGTERM, and
// answers -describe with its apps, mechanism and whether it is a floor
// ("apps=echo mechanism=io_uring floor=true"), then " tls=true" if it
// serves over crypto/tls with -tls -tls-cert FILE -tls-key FILE (netstd
// and fasthttp). gnet and nbio serve echo, fasthttp http, netstd both (an
// http peer serves merlin serve -app http's routes). The floors are what
// the others are read against: cfloor-uring and cfloor-epoll, minimal
// echo servers in C (main.c, built with cc and the flags of its first
// line, "// cflags: -luring"; they share internal/cpeer/peer.h), and nginx
// for http (/plaintext and /json only). gofloor-epoll is cfloor-epoll's
// loop in Go, every system call raw: what Go itself costs on that loop,
// between the C floor and merlin's epoll transport; it is not a floor.
// gofloor-uring is cfloor-uring's loop in Go the same way, on a ring it
// maps itself (no liburing, no giouring): what Go costs between the C
// floor and merlin's io_uring transport; not a floor either.
// libuv is an echo server in C on libuv (Debian's libuv1-dev), the library
// libuvlike's reactor is modelled on: what libuv's design costs in C on
// cfloor-epoll's mechanism; not a floor.
//
//	go build -o /tmp/peer-gnet ./gnet && /tmp/peer-gnet -addr 127.0.0.1:0
package peers
