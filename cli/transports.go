package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/merlin-net/merlin/transports"
)

const transportsSynopsis = `Usage: merlin transports [-names]

transports lists every registered transport: its mechanism, whether this
host can run it (and what the host offers, or what is missing), and the
keys its spec accepts with their kinds, defaults and help. Every transport
also accepts the common keys, listed first; a transport that ignores one
says so. With -names it prints only the registered names, one a line.
`

// listTransports is "merlin transports".
func listTransports(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("transports", transportsSynopsis)
	names := fs.Bool("names", false, "print only the registered names, one a line")
	if status, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return status
	}
	if *names {
		for _, d := range transports.Drivers() {
			fmt.Fprintln(stdout, d.Name)
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "Common keys (every transport accepts them):\n")
	printOptions(tw, transports.CommonOptions)

	ds := transports.Drivers()
	if len(ds) == 0 {
		fmt.Fprintf(tw, "\nNo transport is registered.\n")
	}
	var auto string
	autoPref := 0
	for _, d := range ds {
		fmt.Fprintf(tw, "\n%s: %s\n", d.Name, d.Summary)
		if desc, err := d.Probe(); err != nil {
			fmt.Fprintf(tw, "  not available here: %v\n", err)
		} else {
			if desc == "" {
				desc = "yes"
			}
			fmt.Fprintf(tw, "  available: %s\n", desc)
			if auto == "" || d.Preference > autoPref {
				auto, autoPref = d.Name, d.Preference
			}
		}
		if len(d.Ignores) > 0 {
			fmt.Fprintf(tw, "  ignores common keys: %s\n", strings.Join(d.Ignores, ", "))
		}
		if len(d.Options) == 0 {
			fmt.Fprintf(tw, "  keys: the common keys only\n")
		} else {
			fmt.Fprintf(tw, "  keys:\n")
			printOptions(tw, d.Options)
		}
	}
	if auto != "" {
		fmt.Fprintf(tw, "\nauto: the available transport of highest preference; here, %s\n", auto)
	}
	tw.Flush()
	return 0
}

// printOptions prints one row per option: key, kind, default, help.
func printOptions(w io.Writer, opts []transports.Option) {
	for _, o := range opts {
		help := o.Help
		if o.Kind == transports.Enum {
			help += " (one of " + strings.Join(o.Values, ", ") + ")"
		}
		fmt.Fprintf(w, "    %s\t%s\tdefault %s\t%s\n", o.Key, o.Kind, o.Default, help)
	}
}
