package kprofile

import (
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Real recordings: perf record -e cpu-clock -c 250000 -g -C 0 of merlin
// serve (sockets, then uring, loops=1) pinned to CPU 0 under merlin bench,
// echo 64 B at 64 connections, depth 1, every 35th sample of perf script
// -F ScriptFields kept. The counts were computed by a second, independent
// reading of rules.txt (a Python script), not by this package.
func TestRecordedScripts(t *testing.T) {
	for _, tc := range []struct {
		file           string
		pid            int
		samples, other int64
		idle           int64
		threads        int
		want           map[string]int64
	}{
		{
			file: "sockets.script.gz", pid: 14871, samples: 1077, other: 38, idle: 30, threads: 4,
			want: map[string]int64{"copy": 45, "epoll": 16, "perf": 74, "runtime": 55, "sched": 7, "softirq": 44, "syscall": 119, "tcpip": 615, "transport": 102},
		},
		{
			file: "uring.script.gz", pid: 15045, samples: 1058, other: 42, idle: 39, threads: 3,
			want: map[string]int64{"app": 1, "copy": 43, "io_uring": 67, "other": 3, "perf": 6, "runtime": 10, "sched": 38, "softirq": 55, "syscall": 10, "tcpip": 789, "transport": 36},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			zr, err := gzip.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Attribute(zr, tc.pid, DefaultRules())
			if err != nil {
				t.Fatal(err)
			}
			if p.Samples != tc.samples || p.OtherProcesses != tc.other || p.Idle != tc.idle || p.Threads != tc.threads || p.Lost != 0 {
				t.Errorf("%d samples of the server, %d of others (%d idle), %d threads, %d lost; want %d, %d (%d), %d, 0",
					p.Samples, p.OtherProcesses, p.Idle, p.Threads, p.Lost, tc.samples, tc.other, tc.idle, tc.threads)
			}
			if diff := cmp.Diff(tc.want, p.ByCategory); diff != "" {
				t.Errorf("samples by category (-want +got):\n%s", diff)
			}
			var sum, ns int64
			for c, n := range p.ByCategory {
				sum += n
				ns += p.NsByCategory[c]
			}
			if sum != p.Samples || ns != p.Ns || p.Ns != 250000*p.Samples {
				t.Errorf("categories hold %d samples, %d ns; the profile %d samples, %d ns (period 250 µs)", sum, ns, p.Samples, p.Ns)
			}
		})
	}
}
