package bench

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/merlin-net/merlin/internal/kprofile"
)

// KProfile is where a server's CPU time went over the measured window
// (Options.KProfile): perf's cpu-clock samples of the server's process,
// every thread, attributed to categories by internal/kprofile's rules
// (rules.txt).
type KProfile struct {
	// NsPerReq is CPU time per request by category (kprofile.Categories
	// IDs, every one present): samples x period / requests.
	NsPerReq map[string]float64 `json:"ns_per_req"`
	// SampledNsPerReq is their sum; MeasuredNsPerReq the server's user
	// plus system time per request from /proc over the same window;
	// Ratio is sampled / measured. The idle task's samples on the way out
	// of idle to a woken server thread are the server's, as /proc counts
	// them (kprofile.Profile.Woken; WokenSamples counts them). Measured
	// here, echo at 64 connections, 64 B, one round of six servers: 0.98
	// to 1.00 saturated; at half load 0.86-0.98 at depth 1 and 0.95-0.99
	// at depth 16 (without the credit, papers/0003: 0.79-0.88 and
	// 0.81-0.92); at a quarter load 0.84-0.92 and 0.90-0.97. The rest
	// is time the kernel charges a server around its sleeps that the
	// samples put in the idle task (a sample due while interrupts are off
	// is taken when they come back on, in whichever task runs then). It
	// falls short too when another busy process shares the server's CPU
	// (SharedCPU says so).
	SampledNsPerReq  float64 `json:"sampled_ns_per_req"`
	MeasuredNsPerReq float64 `json:"measured_ns_per_req"`
	Ratio            float64 `json:"ratio"`
	Samples          int64   `json:"samples"` // the server's
	WokenSamples     int64   `json:"woken_samples,omitempty"`
	PeriodNs         int64   `json:"period_ns"` // of cpu-clock
	Threads          int     `json:"threads"`   // the server's threads sampled
	// SharedCPU is the share of the server's CPU that other processes
	// (not the idle task) took over the window, when the server is
	// pinned: above a few percent the machine was not quiet.
	SharedCPU float64 `json:"shared_cpu,omitempty"`
	// Lost counts the samples perf reported lost, over the whole
	// recording.
	Lost int64 `json:"lost,omitempty"`
	// OtherLeaves are the commonest leaf symbols of "other", with their
	// share of it, for whoever extends the rules.
	OtherLeaves []string `json:"other_leaves,omitempty"`
	// Files are the recording and its perf script, gzipped, kept in
	// Options.KProfileDir.
	Files []string `json:"files,omitempty"`
}

// DefaultKProfilePeriod is the sampling period of -kprofile: 1 kHz, some
// 10,000 samples in a busy 10 s window (their sum known to 1%, a category
// of 5% to 5%). Each sample is a timer interrupt, and on this kind of
// virtual machine one costs some 25 µs of the CPU it interrupts (a busy
// loop ran 2.4% slower sampled every 1 ms, 4.3% every 500 µs, 11.6% every
// 250 µs): the server's measured CPU grows by that much, the categories
// with it. Take throughput and CPU per request from runs without
// -kprofile, and from -kprofile where it goes.
const DefaultKProfilePeriod = time.Millisecond

// sharedCPUNote is the share of the server's CPU taken by other
// processes above which a run is labelled: its figures, and the samples'
// agreement with /proc, suffer.
const sharedCPUNote = 0.05

// kprofileRecorder is a perf record of the server's CPU (or every CPU)
// over the window.
type kprofileRecorder struct {
	*perfCounter
	perf   string
	pid    int
	period time.Duration
}

// recordArgs are perf record's arguments: cpu-clock at a fixed period,
// kernel and user stacks (frame pointers: Go keeps them), of whole CPUs,
// not of the process: `perf record -p` follows only the threads it finds
// when it attaches and those they create afterwards, and a Go server
// makes threads as it goes (a thread blocked in a system call hands its P
// to a new one); attached to a sockets server under load, it missed 40%
// of the server's time in a trial here, in threads the runtime made while
// perf attached. Sampling the CPUs and keeping the samples whose process
// is the server's misses no thread; it also tells how much of the CPU
// other processes took. --no-buildid-cache: the binaries stay where they
// are, with no copy in ~/.debug. Beside the samples, every context switch
// and wake-up (kprofile.SchedEvents, without stacks), by which the idle
// task's way out of idle is credited to the thread it wakes for; they
// cost the server about a microsecond per switch here, which the samples
// show under "perf".
func recordArgs(period time.Duration, cpu int) []string {
	args := []string{"record", "-e", "cpu-clock", "-c", strconv.FormatInt(period.Nanoseconds(), 10)}
	for _, e := range kprofile.SchedEvents {
		args = append(args, "-e", e)
	}
	args = append(args, "-g", "--no-buildid-cache")
	if cpu >= 0 {
		return append(args, "-C", strconv.Itoa(cpu))
	}
	return append(args, "-a")
}

// startKProfile starts perf record over cpu (-1: every CPU), disabled
// until enable; pin, if set, is the command prefix that keeps perf off the
// server's CPU.
func startKProfile(pin []string, perf string, pid, cpu int, period time.Duration) (*kprofileRecorder, error) {
	if perf == "" {
		perf = "perf"
	}
	pc, err := startPerfControlled(pin, perf, recordArgs(period, cpu)...)
	if err != nil {
		return nil, err
	}
	return &kprofileRecorder{perfCounter: pc, perf: perf, pid: pid, period: period}, nil
}

// finish stops perf, scripts its recording and attributes the server's
// samples. With keep set, the recording and the script are kept there,
// gzipped, as NAME.perf.data.gz and NAME.script.gz.
func (kr *kprofileRecorder) finish(timeout time.Duration, keep, name string) (*kprofile.Profile, []string, error) {
	defer kr.close()
	if err := kr.stop(timeout); err != nil {
		return nil, nil, err
	}
	if fi, err := os.Stat(kr.out); err != nil || fi.Size() == 0 {
		return nil, nil, fmt.Errorf("perf record wrote nothing (%v): %s", kr.err, kr.stderr)
	}
	var files []string
	var script io.Writer = io.Discard
	if keep != "" {
		data := filepath.Join(keep, name+".perf.data.gz")
		if err := gzipFile(kr.out, data); err != nil {
			return nil, nil, err
		}
		f, err := os.Create(filepath.Join(keep, name+".script.gz"))
		if err != nil {
			return nil, nil, err
		}
		defer f.Close()
		zw := gzip.NewWriter(f)
		defer zw.Close()
		script = zw
		files = append(files, data, f.Name())
	}
	cmd := exec.Command(kr.perf, append(append([]string{"script", "-i", kr.out}, kprofile.ScriptFields...), "--show-lost-events")...)
	stderr := &tailBuffer{max: 1 << 10}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("perf script: %w", err)
	}
	p, perr := kprofile.Attribute(io.TeeReader(out, script), kr.pid, kprofile.DefaultRules())
	io.Copy(io.Discard, out) // let perf finish if the parser stopped early
	if err := cmd.Wait(); err != nil {
		return nil, nil, fmt.Errorf("perf script: %v: %s", err, stderr)
	}
	if perr != nil {
		return nil, nil, fmt.Errorf("reading perf script: %w", perr)
	}
	return p, files, nil
}

// kprofileOf turns a profile into a record's figures; pinned says the
// recording was of the server's CPU alone.
func kprofileOf(p *kprofile.Profile, period time.Duration, requests uint64, measuredNs int64, pinned bool, files []string) *KProfile {
	k := &KProfile{NsPerReq: map[string]float64{}, Samples: p.Samples, WokenSamples: p.Woken, PeriodNs: period.Nanoseconds(), Threads: p.Threads,
		Lost: p.Lost, Files: files}
	if all := p.Samples + p.OtherProcesses; pinned && all > 0 {
		k.SharedCPU = float64(p.OtherProcesses-p.Idle) / float64(all)
	}
	if requests == 0 {
		return k
	}
	for _, c := range kprofile.Categories {
		k.NsPerReq[c.ID] = float64(p.NsByCategory[c.ID]) / float64(requests)
	}
	k.SampledNsPerReq = float64(p.Ns) / float64(requests)
	k.MeasuredNsPerReq = float64(measuredNs) / float64(requests)
	if k.MeasuredNsPerReq > 0 {
		k.Ratio = k.SampledNsPerReq / k.MeasuredNsPerReq
	}
	if o := p.ByCategory[kprofile.Other]; o > 0 {
		for _, s := range p.TopOther(5) {
			k.OtherLeaves = append(k.OtherLeaves, fmt.Sprintf("%s %.0f%%", s, 100*float64(p.OtherLeaves[s])/float64(o)))
		}
	}
	return k
}

func gzipFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	if _, err := io.Copy(zw, in); err != nil {
		out.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// ProbeKProfile checks that perf can sample this host's CPUs with kernel
// and user stacks and name their functions, as Options.KProfile needs: it
// records this process for a moment, busy in system calls, and reads the
// stacks. Its errors say what to change (the Debian package, the
// perf_event_paranoid and kptr_restrict sysctls).
func ProbeKProfile(perf string) error {
	if perf == "" {
		perf = "perf"
	}
	if _, err := ProbePerf(perf); err != nil {
		return err
	}
	paranoid, kptr := sysctl("kernel/perf_event_paranoid"), sysctl("kernel/kptr_restrict")
	p, err := probeRecording(perf, paranoid)
	if err == nil && p.samples > 0 && p.userNamed == 0 {
		// Seen twice in CI's full -race suite, never alone or under a
		// busy loop: a recording whose samples of this process carried
		// no named user frame. A second recording has always named them.
		p, err = probeRecording(perf, paranoid)
	}
	if err != nil {
		return err
	}
	switch {
	case p.samples == 0:
		return fmt.Errorf("perf record sampled none of this process's time (kernel.perf_event_paranoid is %s): %s", paranoid, p.stderr)
	case p.kernel == 0:
		return fmt.Errorf("perf recorded no kernel stacks: kernel.perf_event_paranoid is %s, which hides the kernel from this user; run as root or set it to 1 or lower (sysctl kernel.perf_event_paranoid=1)", paranoid)
	case p.kernelNamed == 0:
		return fmt.Errorf("perf cannot name kernel functions: kernel.kptr_restrict is %s; run as root with it at 0 or 1, or set it to 0 (sysctl kernel.kptr_restrict=0)", kptr)
	case p.userNamed == 0:
		return errors.New("perf named none of this program's functions in its user stacks")
	}
	return nil
}

// probeRecording records this process for a moment, busy in system
// calls, and counts what perf made of its stacks.
func probeRecording(perf, paranoid string) (probeCounts, error) {
	kr, err := startKProfile(nil, perf, os.Getpid(), -1, 100*time.Microsecond)
	if err != nil {
		return probeCounts{}, err
	}
	defer kr.close()
	if err := kr.command("enable", 30*time.Second); err != nil {
		return probeCounts{}, fmt.Errorf("perf record cannot sample this host's CPUs (%v): kernel.perf_event_paranoid is %s; sampling whole CPUs with kernel stacks needs root (CAP_PERFMON) or kernel.perf_event_paranoid 0 or lower", err, paranoid)
	}
	// System calls for 100 ms of CPU: kernel stacks under user ones.
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return probeCounts{}, err
	}
	buf := make([]byte, 64)
	for start := time.Now(); time.Since(start) < 150*time.Millisecond; {
		devnull.Write(buf)
		syscall.Getppid()
	}
	devnull.Close()
	if err := kr.command("disable", 30*time.Second); err != nil {
		return probeCounts{}, err
	}
	p, err := kr.finishProbe(30 * time.Second)
	p.stderr = fmt.Sprint(kr.stderr)
	return p, err
}

// probeCounts is what ProbeKProfile learned of its recording.
type probeCounts struct {
	samples, kernel, kernelNamed, userNamed int
	stderr                                  string // perf record's
}

// finishProbe stops perf and counts the probe's samples.
func (kr *kprofileRecorder) finishProbe(timeout time.Duration) (probeCounts, error) {
	var c probeCounts
	if err := kr.stop(timeout); err != nil {
		return c, err
	}
	out, err := exec.Command(kr.perf, append([]string{"script", "-i", kr.out}, kprofile.ScriptFields...)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%v: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return c, fmt.Errorf("perf script: %v (perf record: %s)", err, kr.stderr)
	}
	sc := kprofile.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		s := sc.Sample()
		if s.PID != kr.pid || s.Tracepoint() {
			continue
		}
		c.samples++
		for _, f := range s.Stack {
			named := f.Sym != "[unknown]" && !strings.HasPrefix(f.Sym, "0x")
			switch {
			case f.Kernel:
				c.kernel++
				if named {
					c.kernelNamed++
				}
			case named:
				c.userNamed++
			}
		}
	}
	return c, sc.Err()
}

// sysctl reads /proc/sys/NAME, or says why not.
func sysctl(name string) string {
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(string(b))
}

// Benchmark-line units of a KProfile (Summary.Stats keys): per category
// (KProfileUnit), their sum, and the sum over the measured CPU time.
const (
	KProfileSumUnit   = "kp-sum-ns/req"
	KProfileRatioUnit = "kp-sampled/measured"
)

// KProfileUnit is the unit of category id's ns/req: "kp-tcpip-ns/req".
func KProfileUnit(id string) string { return "kp-" + id + "-ns/req" }

// KProfileUnits are the ns/req units of every category and of their sum.
func KProfileUnits() []string {
	var us []string
	for _, c := range kprofile.Categories {
		us = append(us, KProfileUnit(c.ID))
	}
	return append(us, KProfileSumUnit)
}

// metrics returns k as benchmark metrics (none for nil): every category,
// so that benchstat compares each across servers.
func (k *KProfile) metrics() []metric {
	if k == nil || k.Samples == 0 {
		return nil
	}
	var ms []metric
	for _, c := range kprofile.Categories {
		ms = append(ms, metric{k.NsPerReq[c.ID], KProfileUnit(c.ID)})
	}
	return append(ms, metric{k.SampledNsPerReq, KProfileSumUnit}, metric{k.Ratio, KProfileRatioUnit})
}

// writeKProfile writes, for the runs sampled with -kprofile, a table per
// cell (workload, connections, size, depth, rate) with the servers as
// rows: the median ns/req of each category over the rounds, their sum,
// the CPU time measured from /proc, and sum / measured.
func (rep *Report) writeKProfile(w io.Writer, rows []*row) error {
	var cells []string
	byCell := map[string][]*row{}
	for _, r := range rows {
		if _, ok := r.m[KProfileSumUnit]; !ok {
			continue
		}
		cell := r.workload + " " + Workload{Kind: r.workload, Conns: r.conns, Size: r.size, Depth: r.depth, Rate: r.rate}.String()
		if byCell[cell] == nil {
			cells = append(cells, cell)
		}
		byCell[cell] = append(byCell[cell], r)
	}
	if len(cells) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nwhere the server's CPU goes (-kprofile), ns per request, medians over rounds; sum = the samples, measured = user + sys from /proc:\n")
	for _, cell := range cells {
		fmt.Fprintf(w, "\n%s\n", cell)
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
		head := []string{"server"}
		for _, c := range kprofile.Categories {
			head = append(head, c.ID)
		}
		fmt.Fprintln(tw, strings.Join(append(head, "sum", "measured", "sum/meas", ""), "\t")+"\t")
		for _, r := range byCell[cell] {
			c := []string{r.server}
			for _, cat := range kprofile.Categories {
				c = append(c, cell0(r, KProfileUnit(cat.ID)))
			}
			ratio := "-"
			if v, ok := r.m[KProfileRatioUnit]; ok {
				ratio = fmt.Sprintf("%.1f%%", 100*v)
			}
			c = append(c, cell0(r, KProfileSumUnit), cell0(r, "cpu-ns/req"), ratio, label(r))
			fmt.Fprintln(tw, strings.Join(c, "\t")+"\t")
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func cell0(r *row, unit string) string { return cell(r, unit, 0) }
