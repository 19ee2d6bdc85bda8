package uring

import (
	"testing"
	"unsafe"
)

// TestConnSize holds a conn within 320 bytes, an allocator size class:
// with 10,000 idle connections every size class up costs 320 KiB of heap
// and more of RSS (issue 4 compares that with gnet's). It was 288 until
// a conn kept its timer's place in its loop's heap (4 bytes, which took
// it past 288), for the deadlines of internal/core (40 bytes) that its
// one timer serves.
func TestConnSize(t *testing.T) {
	if got := unsafe.Sizeof(conn{}); got > 320 {
		t.Errorf("conn is %d bytes, more than 320: move the new field into connRare, or measure the idle workload (merlin bench -workloads idle) and raise this bound", got)
	}
}
