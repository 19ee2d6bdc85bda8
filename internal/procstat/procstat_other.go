//go:build !linux

package procstat

import (
	"errors"
	"fmt"
	"time"
)

// Read samples process pid; only Linux has /proc here.
func Read(pid int) (Sample, error) {
	return Sample{At: time.Now()}, fmt.Errorf("procstat: reading process %d: no /proc on this system: %w", pid, errors.ErrUnsupported)
}
