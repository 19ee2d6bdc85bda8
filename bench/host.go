package bench

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// Host describes the machine a run was made on.
type Host struct {
	Kernel      string            `json:"kernel"`
	CPU         string            `json:"cpu"`
	CPUs        int               `json:"cpus"`
	Go          string            `json:"go"`
	GOOS        string            `json:"goos"`
	GOARCH      string            `json:"goarch"`
	Mitigations map[string]string `json:"mitigations,omitempty"`
	Perf        string            `json:"perf,omitempty"`
	LoadAvg     string            `json:"loadavg,omitempty"`
	Hostname    string            `json:"hostname,omitempty"`
}

// describeHost reads what a reader of the results needs to know of this
// machine.
func describeHost() Host {
	h := Host{CPUs: runtime.NumCPU(), Go: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		h.Kernel = strings.TrimSpace(string(out))
	}
	if f, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(f))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if dir, err := os.ReadDir("/sys/devices/system/cpu/vulnerabilities"); err == nil {
		h.Mitigations = map[string]string{}
		for _, e := range dir {
			if b, err := os.ReadFile("/sys/devices/system/cpu/vulnerabilities/" + e.Name()); err == nil {
				h.Mitigations[e.Name()] = strings.TrimSpace(string(b))
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		h.LoadAvg = strings.TrimSpace(string(b))
	}
	h.Hostname, _ = os.Hostname()
	return h
}
