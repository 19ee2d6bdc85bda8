//go:build !linux

package loadgen

import (
	"context"
	"errors"
	"fmt"
)

func ringAvailable() error {
	return fmt.Errorf("loadgen: the %s engine needs Linux io_uring: %w", EngineRing, errors.ErrUnsupported)
}

func (r *run) runRing(context.Context, chan<- struct{}) error { return ringAvailable() }
