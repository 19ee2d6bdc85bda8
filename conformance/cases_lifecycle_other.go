//go:build !linux

package conformance

import "github.com/merlin-net/merlin/transports"

// lcFDLimitSupported reports whether lcLowerFDLimit works here: only on
// Linux, which has /proc/self/fd.
func lcFDLimitSupported() error {
	return transports.Unsupported("conformance: lowering RLIMIT_NOFILE under the descriptors open (/proc/self/fd)")
}

// lcLowerFDLimit is not implemented here; see lcFDLimitSupported.
func lcLowerFDLimit(headroom int) (int, error) {
	return 0, lcFDLimitSupported()
}
