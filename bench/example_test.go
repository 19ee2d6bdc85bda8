package bench_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/merlin-net/merlin/bench"
	_ "github.com/merlin-net/merlin/transports/all" // the transports merlin serve runs
)

// ParseFlags reads a merlin bench command line; Plan says what it will
// run before anything is built or started.
func ExampleParseFlags() {
	f, err := bench.ParseFlags([]string{"-servers", "sockets,gnet", "-peers", "gnet", "-netconn=false",
		"-conns", "64,1000", "-depths", "1,16", "-count", "5", "-warmup", "1s", "-duration", "3s"})
	if err != nil {
		log.Fatal(err)
	}
	p, err := f.Plan("merlin", 500*time.Millisecond)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.String(500 * time.Millisecond))
	fmt.Println("about", p.Total)
	// Output:
	// 40 runs = 2 servers x 4 workloads x 5 rounds, each 1s warm-up + 3s window + 500ms overhead
	// about 3m0s
}

// Run runs a matrix: here a peer built from peers/ and a transport served
// by a merlin binary (one whose main calls cli.Main, which may know
// transports of other modules too), on echo at 64 connections.
func ExampleRun() {
	f, err := bench.ParseFlags([]string{"-servers", "uring,gnet", "-peers", "gnet", "-netconn=false",
		"-workloads", "echo", "-conns", "64", "-depths", "1", "-count", "5"})
	if err != nil {
		log.Fatal(err)
	}
	opts, dir, closeClient, err := f.Options("/usr/local/bin/merlin", log.Printf)
	if err != nil {
		log.Fatal(err)
	}
	defer closeClient()
	rep, err := bench.Run(context.Background(), opts)
	if err != nil {
		log.Fatal(err)
	}
	rep.WriteTable(os.Stdout)
	fmt.Println("results in", dir)
}
