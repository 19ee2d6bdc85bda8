//go:build !linux

package uring

import (
	"errors"

	"github.com/merlin-net/merlin/transports"
)

// probeDriver reports that io_uring exists only on Linux.
func probeDriver() (string, error) {
	return "", transports.Unsupported("io_uring (Linux 5.1 and later only)")
}

func newTransport(transports.Config, options) (transports.Transport, error) {
	_, err := probeDriver()
	return nil, errors.Join(err)
}
