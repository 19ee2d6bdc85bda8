// Command merlin-hostile is merlin's command line with one transport
// more, from outside merlin's module: hostile. Built with
// -ldflags=-checklinkname=0 as merlin is (it links uring).
//
//	merlin-hostile bench -servers hostile,uring -peers gnet -depths 1
package main

import (
	"os"

	"github.com/merlin-net/merlin/cli"
	_ "github.com/merlin-net/merlin/examples/hostile" // registers "hostile"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
