// Package cli is merlin's command line as a library: serve, load, bench,
// paper and transports, as cmd/merlin runs them. A merlin binary that
// knows a transport from another module is a main that imports the
// transport's package (which registers it) and calls Main; bench then
// runs that binary's own serve for every transport it names, so the new
// transport is measured beside merlin's three and the peers.
//
//	package main
//
//	import (
//		"os"
//
//		"github.com/merlin-net/merlin/cli"
//		_ "example.com/mytransport" // registers "mytransport"
//	)
//
//	func main() { os.Exit(cli.Main(os.Args[1:])) }
//
// Exit status: 0 on success, 1 on an error (a bad spec, a failed listen, a
// load run with errors, a failed check or bench run), 2 on a usage error
// (unknown subcommand or flag). Logs go to stderr; results to stdout.
package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/merlin-net/merlin/apps/echo"
	"github.com/merlin-net/merlin/apps/http1"
	"github.com/merlin-net/merlin/transports"
	_ "github.com/merlin-net/merlin/transports/all" // registers every transport
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	// run runs the subcommand with its arguments and returns the exit
	// status.
	run func(args []string, stdout, stderr io.Writer) int
}

// commands lists the subcommands in the order usage shows them.
func commands() []command {
	return []command{
		{"serve", "serve an application on a transport until SIGINT or SIGTERM", serve},
		{"load", "drive load against a server and check every response; grade an echo server", load},
		{"bench", "run the throughput suite: servers x workloads, pinned, with CPU, syscalls and latency", benchCmd},
		{"paper", "run a paper (papers/NNNN-slug): its benchmarks, figures, tables and README", paperCmd},
		{"transports", "list the transports, their keys, and whether this host runs them", listTransports},
	}
}

// apps are the workloads serve can run, by -app name. One Handler serves
// every connection of a listener.
var apps = map[string]transports.Handler{
	"echo": echo.Handler{},
	"http": http1.New(http1.Config{}),
}

// appNames lists the apps for messages.
func appNames() string {
	return strings.Join(slices.Sorted(maps.Keys(apps)), ", ")
}

// Main runs the command line args (the program's name left out) with the
// process's standard output and error, and returns the exit status.
func Main(args []string) int {
	return run(args, os.Stdout, os.Stderr)
}

// run runs the command line args and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "merlin: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "merlin runs network workloads on interchangeable transports.\n\nUsage:\n\n\tmerlin <command> [flags]\n\nCommands:\n\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "\t%-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun \"merlin <command> -h\" for a command's flags.\n")
}

// parseFlags parses args into fs. Help (-h) prints the full usage to
// stdout and returns status 0; a usage error (a bad flag, a positional
// argument) prints one line to stderr and returns 2; ok means go on.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (status int, ok bool) {
	var msg bytes.Buffer
	full := fs.Usage
	fs.Usage = func() {} // flag calls it on errors and -h; we decide below
	fs.SetOutput(&msg)
	err := fs.Parse(args)
	fs.Usage = full
	fs.SetOutput(stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		fs.SetOutput(stderr)
		return 0, false
	case err != nil:
		return usageError(fs, stderr, "%s", strings.TrimSpace(msg.String())), false
	case fs.NArg() > 0:
		return usageError(fs, stderr, "unexpected argument %q", fs.Arg(0)), false
	}
	return 0, true
}

// newFlagSet returns a flag set for a subcommand whose usage prints
// synopsis, then the flags.
func newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), synopsis)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintf(fs.Output(), "\nFlags:\n\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// usageError prints a usage error for subcommand fs and returns status 2.
func usageError(fs *flag.FlagSet, stderr io.Writer, format string, a ...any) int {
	fmt.Fprintf(stderr, "merlin %s: %s\n", fs.Name(), fmt.Sprintf(format, a...))
	fmt.Fprintf(stderr, "Run \"merlin %s -h\" for usage.\n", fs.Name())
	return 2
}

// fail prints an error of subcommand name and returns status 1.
func fail(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "merlin %s: %v\n", name, err)
	return 1
}

// checkNetwork checks a -network flag's value.
func checkNetwork(network string) error {
	switch network {
	case "tcp", "tcp4", "tcp6", "unix":
		return nil
	}
	return fmt.Errorf("unknown network %q (want tcp, tcp4, tcp6 or unix)", network)
}
