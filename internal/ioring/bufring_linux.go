package ioring

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// Buffer ring constants giouring lacks (include/uapi/linux/io_uring.h).
const (
	pbufRingInc = 2 // IOU_PBUF_RING_INC, Linux 6.12
	// CQEFBufMore is IORING_CQE_F_BUF_MORE (6.12): the buffer is not used
	// up; the kernel goes on filling it.
	CQEFBufMore = 1 << 4
	// registerPbufStatus is IORING_REGISTER_PBUF_STATUS (6.8): the
	// kernel's head of a buffer ring.
	registerPbufStatus = 26
)

// pbufStatus is struct io_uring_buf_status.
type pbufStatus struct {
	bufGroup uint32
	head     uint32
	resv     [8]uint32
}

// BufRing is a ring of provided buffers (IORING_REGISTER_PBUF_RING, Linux
// 5.19) registered as one buffer group of one ring. Both the ring of entries
// and the buffers are mmap'd, off the Go heap: the kernel writes into the
// buffers whenever a multishot recv completes. The ring's goroutine owns
// it.
type BufRing struct {
	ringMem []byte               // count entries of 16 bytes
	br      *giouring.BufAndRing // the first entry, whose last field is the tail
	mem     []byte               // count buffers of size bytes
	size    int
	Count   int // buffers
	mask    uint16
	added   int // buffers added since the last publish
	held    int // buffers the kernel filled and the caller has not put back
	fd      int // the ring's
	bgid    uint16
	noHead  bool // the kernel cannot tell its head (before 6.8)
	status  pbufStatus
	Inc     bool // IOU_PBUF_RING_INC: the kernel consumes buffers piece by piece
	// StatusCalls counts Free's system calls, for the caller's count.
	StatusCalls uint64
	off         []uint32 // inc: bytes of each buffer the kernel has filled so far
}

// NewBufRing maps count buffers of size bytes and registers them with the
// ring fd as group bgid.
func NewBufRing(fd int, bgid uint16, count, size int) (*BufRing, error) {
	if count <= 0 || count > 1<<15 || count&(count-1) != 0 {
		return nil, fmt.Errorf("ioring: %d provided buffers: want a power of two between 1 and 32768", count)
	}
	if size <= 0 || size > 1<<30 {
		return nil, fmt.Errorf("ioring: provided buffers of %d bytes: want 1 byte to 1 GiB", size)
	}
	b := &BufRing{size: size, Count: count, mask: uint16(count - 1), fd: fd, bgid: bgid}
	page := os.Getpagesize()
	ringLen := (count*16 + page - 1) / page * page
	var err error
	prot, fl := unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS
	if b.ringMem, err = unix.Mmap(-1, 0, ringLen, prot, fl); err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	if b.mem, err = unix.Mmap(-1, 0, count*size, prot, fl); err != nil {
		b.Close()
		return nil, os.NewSyscallError("mmap", err)
	}
	b.br = (*giouring.BufAndRing)(unsafe.Pointer(&b.ringMem[0]))
	reg := giouring.BufReg{
		RingAddr:    uint64(uintptr(unsafe.Pointer(&b.ringMem[0]))),
		RingEntries: uint32(count),
		Bgid:        bgid,
		Pad:         pbufRingInc, // the flags field
	}
	// Incremental consumption (6.12) lets many small receives share one
	// buffer, so the memory touched follows the bytes received, not the
	// number of receives; older kernels take the buffers whole.
	_, e := Register(fd, giouring.RegisterPbufRing, unsafe.Pointer(&reg), 1)
	if e == syscall.EINVAL {
		reg.Pad = 0
		_, e = Register(fd, giouring.RegisterPbufRing, unsafe.Pointer(&reg), 1)
	}
	if e != 0 {
		b.Close()
		return nil, fmt.Errorf("ioring: registering %d provided buffers: %w", count, os.NewSyscallError("io_uring_register", e))
	}
	if reg.Pad != 0 {
		b.Inc = true
		b.off = make([]uint32, count)
	}
	for i := range count {
		b.Put(uint16(i))
	}
	b.Publish()
	b.held = 0
	return b, nil
}

// Close unmaps the buffers. The ring must be gone, or no recv may be armed.
func (b *BufRing) Close() {
	if b.mem != nil {
		unix.Munmap(b.mem)
		b.mem = nil
	}
	if b.ringMem != nil {
		unix.Munmap(b.ringMem)
		b.ringMem = nil
	}
}

// Get returns the n bytes the kernel just put in buffer bid, and whether
// the buffer is used up (then the caller puts it back once done with the
// bytes; else the kernel goes on filling it).
func (b *BufRing) Get(bid uint16, n int, flags uint32) ([]byte, bool) {
	off := int(bid) * b.size
	if !b.Inc {
		b.held++
		return b.mem[off : off+n : off+n], true
	}
	off += int(b.off[bid])
	if flags&CQEFBufMore != 0 {
		b.off[bid] += uint32(n)
		return b.mem[off : off+n : off+n], false
	}
	b.off[bid] = 0
	b.held++
	return b.mem[off : off+n : off+n], true
}

// Put gives buffer bid back to the kernel (visible after publish). The
// slot address is computed here: giouring's BufRingAdd computes it in 16
// bits and corrupts rings of more than 4096 entries.
func (b *BufRing) Put(bid uint16) {
	slot := (b.br.Tail + uint16(b.added)) & b.mask
	e := (*giouring.BufAndRing)(unsafe.Pointer(&b.ringMem[int(slot)*16]))
	e.Addr = uint64(uintptr(unsafe.Pointer(&b.mem[int(bid)*b.size])))
	e.Len = uint32(b.size)
	e.Bid = bid
	b.added++
	b.held--
}

// Publish advances the ring's tail over the buffers put since the last
// call (one atomic store).
func (b *BufRing) Publish() {
	if b.added > 0 {
		b.br.BufRingAdvance(b.added)
		b.added = 0
	}
}

// Free returns how many buffers the kernel can fill once published: the
// published ones it has not used up yet (the ring's tail less the kernel's
// head, IORING_REGISTER_PBUF_STATUS, Linux 6.8: one system call) and those
// put since the last publish. Buffers the kernel filled whose completions
// are not reaped yet are not free: Count less the buffers the caller holds
// would count them. Before 6.8 that is what it returns. Being a system
// call, it is for the rare case (a receive starved of buffers), not for
// every turn of a loop.
func (b *BufRing) Free() int {
	if !b.noHead {
		b.StatusCalls++
		b.status = pbufStatus{bufGroup: uint32(b.bgid)}
		_, e := Register(b.fd, registerPbufStatus, unsafe.Pointer(&b.status), 1)
		if e == 0 {
			return int(b.br.Tail-uint16(b.status.head)) + b.added
		}
		b.noHead = true
	}
	return b.Count - b.held
}
