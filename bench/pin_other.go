//go:build !linux

package bench

import (
	"errors"
	"fmt"
)

func allowedCPUs() ([]int, error) {
	return nil, fmt.Errorf("bench: CPU affinity: %w", errors.ErrUnsupported)
}

func pinSelf(int) error {
	return fmt.Errorf("bench: CPU affinity: %w", errors.ErrUnsupported)
}

func setAffinity([]int) error {
	return fmt.Errorf("bench: CPU affinity: %w", errors.ErrUnsupported)
}
