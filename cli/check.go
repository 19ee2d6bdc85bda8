package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/merlin-net/merlin/loadgen"
)

// runCheck is "merlin load -check ADDR": it grades the echo server at
// addr and prints one line per check.
func runCheck(ctx context.Context, network, addr string, timeout time.Duration, only []string, stdout, stderr io.Writer) int {
	for _, n := range only {
		if !slices.ContainsFunc(loadgen.Checks, func(c struct{ Name, Rule string }) bool { return c.Name == n }) {
			var names []string
			for _, c := range loadgen.Checks {
				names = append(names, c.Name)
			}
			fmt.Fprintf(stderr, "merlin load: no check %q (checks: %s)\n", n, strings.Join(names, ", "))
			return 2
		}
	}
	fmt.Fprintf(stdout, "checking the echo server at %s %s\n", network, addr)
	failed, skipped := 0, 0
	results := loadgen.Check(ctx, network, addr, timeout, only...)
	for _, r := range results {
		rule := ""
		for _, c := range loadgen.Checks {
			if c.Name == r.Name {
				rule = "\n      rule: " + c.Rule
			}
		}
		switch {
		case r.Skipped != "":
			skipped++
			fmt.Fprintf(stdout, "SKIP  %-12s %s\n", r.Name, r.Skipped)
		case r.Err != nil:
			failed++
			fmt.Fprintf(stdout, "FAIL  %-12s %v (%v)%s\n", r.Name, r.Err, r.Elapsed.Round(time.Millisecond), rule)
		default:
			fmt.Fprintf(stdout, "ok    %-12s (%v)\n", r.Name, r.Elapsed.Round(time.Millisecond))
		}
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "%d of %d checks failed\n", failed, len(results))
		fmt.Fprintf(stderr, "merlin load: %s failed %d of %d checks\n", addr, failed, len(results))
		return 1
	}
	if skipped > 0 {
		fmt.Fprintf(stdout, "%d checks passed, %d skipped\n", len(results)-skipped, skipped)
	} else {
		fmt.Fprintf(stdout, "all %d checks passed\n", len(results))
	}
	return 0
}
