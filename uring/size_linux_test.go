package uring

import (
	"testing"
	"unsafe"
)

// TestConnSize holds a conn at 288 bytes, an allocator size class: with
// 10,000 idle connections every size class up costs 320 KiB of heap and
// more of RSS (issue 4 compares that with gnet's).
func TestConnSize(t *testing.T) {
	if got := unsafe.Sizeof(conn{}); got > 288 {
		t.Errorf("conn is %d bytes, more than 288: move the new field into connRare, or measure the idle workload (merlin bench -workloads idle) and raise this bound", got)
	}
}
