package all_test

import (
	"github.com/merlin-net/merlin/libuvlike"
	"github.com/merlin-net/merlin/sockets"
	"github.com/merlin-net/merlin/transports"
	"github.com/merlin-net/merlin/uring"
)

// Every transport is made the same way, with a Config and its own typed
// Options; this does not compile otherwise.
var (
	_ func(transports.Config, sockets.Options) (*sockets.Transport, error)     = sockets.New
	_ func(transports.Config, libuvlike.Options) (*libuvlike.Transport, error) = libuvlike.New
	_ func(transports.Config, uring.Options) (*uring.Transport, error)         = uring.New
)
