// Command merlin runs merlin's workloads on any transport, drives load
// against them, and compares transports and peers.
//
//	merlin serve -transport sockets -app echo -addr 127.0.0.1:7000
//	merlin load -addr 127.0.0.1:7000 -conns 64 -size 64 -depth 1 -duration 10s
//	merlin load -check 127.0.0.1:7000
//	merlin bench -quick -peers gnet,netstd
//	merlin transports
//
// serve listens with one application (a transports.Handler from apps/) on
// the transport a spec names, prints "listening on ADDR (transport NAME)"
// once, and shuts down gracefully on SIGINT or SIGTERM. load is the load
// generator (loadgen): closed or open loop, echo or HTTP, churn
// or idle, checking every response and printing its result in Go benchmark
// format too; with -check it grades an echo server. bench is the
// throughput suite (package bench): a matrix of servers and workloads,
// pinned, with CPU time, system calls and latency per request. transports
// lists the registered transports, their keys, and whether this host runs
// them.
//
// Exit status: 0 on success, 1 on an error (a bad spec, a failed listen, a
// load run with errors, a failed check or bench run), 2 on a usage error
// (unknown subcommand or flag).
// Logs go to stderr; results to stdout.
package main

import (
	"os"

	"github.com/merlin-net/merlin/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
