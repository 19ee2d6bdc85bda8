//go:build linux && !amd64 && !arm64

package libuvlike

import "github.com/merlin-net/merlin/internal/core"

// getg returns an identifier of the calling goroutine, unique among live
// goroutines: its id (core.GoID). On amd64 and arm64 an assembly getg
// returns the g's address in a nanosecond; here it costs about a
// microsecond, on every Conn method.
func getg() uintptr { return uintptr(core.GoID()) }
