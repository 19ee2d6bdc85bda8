package loadgen_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/merlin-net/merlin/apps/echo"
	"github.com/merlin-net/merlin/loadgen"
	"github.com/merlin-net/merlin/transports"
	_ "github.com/merlin-net/merlin/transports/all"
)

// Config.Run drives a server with a workload and checks every answer:
// here 8 connections of 64-byte echoes, 4 in flight each, for half a
// second, against the echo app on the sockets transport.
func ExampleConfig_Run() {
	t, err := transports.Open("sockets", transports.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	ln, err := t.Listen("tcp", "127.0.0.1:0", echo.Handler{})
	if err != nil {
		log.Fatal(err)
	}
	res, err := loadgen.Config{
		Addr:     ln.Addr().String(),
		Conns:    8,
		Size:     64,
		Depth:    4,
		Warmup:   100 * time.Millisecond,
		Duration: 500 * time.Millisecond,
	}.Run(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("errors:", res.Errors, "answered:", res.Requests > 0, "open at the end:", res.Open)
	// Output: errors: 0 answered: true open at the end: 8
}

// Check grades an echo server beyond throughput: pipelining, large
// messages, half-close, resets, a slow reader beside a fast one.
func ExampleCheck() {
	t, err := transports.Open("sockets", transports.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	ln, err := t.Listen("tcp", "127.0.0.1:0", echo.Handler{})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range loadgen.Check(context.Background(), "tcp", ln.Addr().String(), 0, "pipelined", "half-close", "alive") {
		fmt.Println(r.Name, r.Err == nil)
	}
	// Output:
	// pipelined true
	// half-close true
	// alive true
}
