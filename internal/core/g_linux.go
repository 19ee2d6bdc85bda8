//go:build linux && (amd64 || arm64)

package core

// G returns an identifier of the calling goroutine, unique among live
// goroutines: the address of its g. A loop records its own at start, so
// that a Conn method can tell in a few nanoseconds whether it runs on the
// Conn's loop (and may touch loop-owned state without a lock) or on
// another goroutine.
func G() uintptr
