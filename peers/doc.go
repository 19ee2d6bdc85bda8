// Package peers holds other frameworks' servers, run beside merlin's by
// `merlin bench -peers NAME,...` under the same load generator, pinned the
// same way. It is its own module, so that merlin's module does not depend
// on them.
//
// Each peer is a command (peers/NAME) with merlin serve's flags: -addr
// (port 0 picks a free port), -network, -app, -cpuprofile. gnet and nbio
// serve -app echo; fasthttp serves -app http; netstd serves both. An http
// peer serves what merlin serve -app http does: GET /plaintext and GET
// /json (TechEmpower's tests), POST /echo (the body back, at most 1 MiB),
// 404 elsewhere. A peer prints "listening on ADDR (peer NAME)" once it
// accepts, and exits 0 on SIGTERM or SIGINT.
//
//	go build -o /tmp/peer-gnet ./gnet && /tmp/peer-gnet -addr 127.0.0.1:0
package peers
