//go:build linux && !amd64 && !arm64

package libuvlike

import (
	"bytes"
	"runtime"
	"strconv"
)

// getg returns an identifier of the calling goroutine, unique among live
// goroutines: its id, read from the header of its stack trace. On amd64
// and arm64 an assembly getg returns the g's address in a nanosecond;
// here it costs about a microsecond, on every Conn method.
func getg() uintptr {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		panic("libuvlike: cannot read the goroutine id from " + string(b))
	}
	return uintptr(id)
}
