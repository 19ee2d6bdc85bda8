package ioring

import (
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// This file maps a ring and drives it: setup, the submission and
// completion queues, io_uring_enter and io_uring_register. giouring
// provides the SQE and CQE layouts, the opcode and flag constants and the
// Prepare helpers that are correct on a zeroed SQE; its Ring type is not
// used here because it hides the ring offsets (its Params fields are
// unexported: no CQ size, no SQPOLL idle time) and always enters through
// syscall.Syscall6, which costs the scheduler's entersyscall path on every
// submission (notes/io_uring-on-this-host.md).

// RegisterFiles is IORING_REGISTER_FILES (Linux 5.1): Register with an
// array of int32 descriptors (giouring's RegisterFiles passes 64-bit
// ones).
const RegisterFiles = 2

// FeatMinTimeout is IORING_FEAT_MIN_TIMEOUT (Linux 6.12), which giouring
// lacks: min_wait_usec in IORING_ENTER_EXT_ARG.
const FeatMinTimeout = 1 << 15

const (
	offSQRing = 0
	offCQRing = 0x8000000
	offSQEs   = 0x10000000

	enterGetEvents = giouring.EnterGetEvents
	enterSQWakeup  = giouring.EnterSQWakeup
	enterSQWait    = giouring.EnterSQWait
	enterExtArg    = giouring.EnterExtArg
	sqNeedWakeup   = giouring.SQNeedWakeup
	sqCQOverflow   = giouring.SQCQOverflow
	sqTaskrun      = giouring.SQTaskrun
)

// Params mirrors struct io_uring_params (120 bytes): giouring's Params
// keeps its fields unexported.
type Params struct {
	SQEntries    uint32
	CQEntries    uint32
	Flags        uint32
	SQThreadCPU  uint32
	SQThreadIdle uint32
	Features     uint32
	WQFd         uint32
	resv         [3]uint32
	sqOff        struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
		userAddr                                                        uint64
	}
	cqOff struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
		userAddr                                                        uint64
	}
}

// getEventsArg mirrors struct io_uring_getevents_arg, the argument of
// IORING_ENTER_EXT_ARG (5.11).
type getEventsArg struct {
	sigmask     uint64
	sigmaskSz   uint32
	minWaitUsec uint32
	ts          uint64
}

// CQE is a completion copied out of the ring.
type CQE struct {
	UserData uint64
	Res      int32
	Flags    uint32
}

// Ring is one io_uring instance. It is owned by one goroutine, locked to
// its thread (SINGLE_ISSUER), except for Fd, which MSG_RING senders read.
type Ring struct {
	Fd       int
	Flags    uint32 // setup flags in effect
	Features uint32
	// MinWaitUs, when not 0, lets a wait for more than one completion
	// return with fewer after this many microseconds (min_wait_usec of
	// IORING_ENTER_EXT_ARG, IORING_FEAT_MIN_TIMEOUT: Linux 6.12).
	MinWaitUs uint32

	sqMem, cqMem, sqeMem []byte // the mappings

	sqHead, sqTail, sqFlags, sqArray *uint32
	sqMask, sqEntries                uint32
	sqes                             []giouring.SubmissionQueueEntry
	sqeTail                          uint32 // next SQE to hand out
	sqSubmitted                      uint32 // SQEs published to the kernel

	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           []giouring.CompletionQueueEvent

	arg getEventsArg // for timed waits; here so that it is off the stack
	ts  unix.Timespec
}

// New sets up a ring with entries SQ slots, 4x as many CQ slots and
// flags. It must run on the thread that will submit (SINGLE_ISSUER).
func New(entries uint32, flags uint32, sqIdleMs uint32) (*Ring, error) {
	p := &Params{Flags: flags | giouring.SetupCQSize, CQEntries: 4 * entries, SQThreadIdle: sqIdleMs}
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	if e != 0 {
		return nil, os.NewSyscallError("io_uring_setup", e)
	}
	r := &Ring{Fd: int(fd), Flags: p.Flags, Features: p.Features}
	if err := r.mmap(p); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Ring) mmap(p *Params) error {
	sqSize := int(p.sqOff.array) + int(p.SQEntries)*4
	cqSize := int(p.cqOff.cqes) + int(p.CQEntries)*int(unsafe.Sizeof(giouring.CompletionQueueEvent{}))
	single := p.Features&giouring.FeatSingleMMap != 0
	if single {
		sqSize = max(sqSize, cqSize)
	}
	prot, fl := unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE
	var err error
	if r.sqMem, err = unix.Mmap(r.Fd, offSQRing, sqSize, prot, fl); err != nil {
		return os.NewSyscallError("mmap", err)
	}
	r.cqMem = r.sqMem
	if !single {
		if r.cqMem, err = unix.Mmap(r.Fd, offCQRing, cqSize, prot, fl); err != nil {
			r.cqMem = nil
			return os.NewSyscallError("mmap", err)
		}
	}
	sqeSize := int(unsafe.Sizeof(giouring.SubmissionQueueEntry{}))
	if r.sqeMem, err = unix.Mmap(r.Fd, offSQEs, int(p.SQEntries)*sqeSize, prot, fl); err != nil {
		return os.NewSyscallError("mmap", err)
	}
	sq := unsafe.Pointer(&r.sqMem[0])
	r.sqHead = (*uint32)(unsafe.Add(sq, p.sqOff.head))
	r.sqTail = (*uint32)(unsafe.Add(sq, p.sqOff.tail))
	r.sqFlags = (*uint32)(unsafe.Add(sq, p.sqOff.flags))
	r.sqArray = (*uint32)(unsafe.Add(sq, p.sqOff.array))
	r.sqMask = *(*uint32)(unsafe.Add(sq, p.sqOff.ringMask))
	r.sqEntries = *(*uint32)(unsafe.Add(sq, p.sqOff.ringEntries))
	r.sqes = unsafe.Slice((*giouring.SubmissionQueueEntry)(unsafe.Pointer(&r.sqeMem[0])), p.SQEntries)
	array := unsafe.Slice(r.sqArray, p.SQEntries)
	for i := range array {
		array[i] = uint32(i) // the SQ array maps slot i to SQE i, once and for all
	}
	cq := unsafe.Pointer(&r.cqMem[0])
	r.cqHead = (*uint32)(unsafe.Add(cq, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(cq, p.cqOff.tail))
	r.cqMask = *(*uint32)(unsafe.Add(cq, p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*giouring.CompletionQueueEvent)(unsafe.Add(cq, p.cqOff.cqes)), p.CQEntries)
	r.sqSubmitted = atomic.LoadUint32(r.sqTail)
	r.sqeTail = r.sqSubmitted
	return nil
}

// Close unmaps the ring and closes its descriptor; the kernel tears the
// ring down asynchronously.
func (r *Ring) Close() {
	if r.sqeMem != nil {
		unix.Munmap(r.sqeMem)
	}
	if r.cqMem != nil && len(r.sqMem) > 0 && &r.cqMem[0] != &r.sqMem[0] {
		unix.Munmap(r.cqMem)
	}
	if r.sqMem != nil {
		unix.Munmap(r.sqMem)
	}
	r.sqeMem, r.cqMem, r.sqMem = nil, nil, nil
	if r.Fd >= 0 {
		unix.Close(r.Fd)
		r.Fd = -1
	}
}

// GetSQE returns the next free SQE, zeroed (an earlier operation's fields
// would otherwise stay: giouring's Prepare helpers set only their own), or
// nil if the queue is full.
func (r *Ring) GetSQE() *giouring.SubmissionQueueEntry {
	head := atomic.LoadUint32(r.sqHead)
	if r.sqeTail-head >= r.sqEntries {
		return nil
	}
	sqe := &r.sqes[r.sqeTail&r.sqMask]
	*sqe = giouring.SubmissionQueueEntry{}
	r.sqeTail++
	return sqe
}

// Free returns how many SQEs GetSQE can hand out before the kernel
// consumes some.
func (r *Ring) Free() uint32 { return r.sqEntries - (r.sqeTail - atomic.LoadUint32(r.sqHead)) }

// Publish makes the prepared SQEs visible to the kernel and returns how
// many there are.
func (r *Ring) Publish() uint32 {
	n := r.sqeTail - r.sqSubmitted
	if n > 0 {
		atomic.StoreUint32(r.sqTail, r.sqeTail)
		r.sqSubmitted = r.sqeTail
	}
	return n
}

// Enter submits what is prepared and, with waitNr > 0, blocks until
// waitNr completions are in the CQ, or, with minWaitUs, until at least one
// is and minWaitUs has passed; or until the timeout, if timeout > 0
// nanoseconds. It returns the errno of io_uring_enter: EINTR and ETIME are
// normal.
//
// A wait tells the scheduler it may block (entersyscall), so that the P
// runs other goroutines meanwhile, unless raw: a raw wait keeps the P,
// which saves the scheduler's hand-off and sysmon's wake-ups when the
// wait is short (the loop's caller bounds it).
func (r *Ring) Enter(submit uint32, waitNr uint32, timeout int64, raw bool) syscall.Errno {
	flags := uint32(0)
	minComplete := uintptr(0)
	wait := waitNr > 0
	sqpoll := r.Flags&giouring.SetupSQPoll != 0
	if sqpoll {
		if atomic.LoadUint32(r.sqFlags)&sqNeedWakeup != 0 {
			flags |= enterSQWakeup
		}
		submit = 0 // the kernel thread submits
	}
	if wait {
		flags |= enterGetEvents
		minComplete = uintptr(waitNr)
	} else if r.Flags&giouring.SetupDeferTaskrun != 0 || atomic.LoadUint32(r.sqFlags)&(sqCQOverflow|sqTaskrun) != 0 {
		flags |= enterGetEvents // run deferred task work, flush an overflow
	}
	if sqpoll && flags&(enterGetEvents|enterSQWakeup) == 0 {
		return 0 // nothing the kernel thread does not do by itself
	}
	var arg, argSz uintptr
	if wait && (timeout > 0 || waitNr > 1 && r.MinWaitUs > 0) {
		r.arg = getEventsArg{}
		if timeout > 0 {
			r.ts = unix.NsecToTimespec(timeout)
			r.arg.ts = uint64(uintptr(unsafe.Pointer(&r.ts)))
		}
		if waitNr > 1 {
			r.arg.minWaitUsec = r.MinWaitUs
		}
		arg, argSz = uintptr(unsafe.Pointer(&r.arg)), unsafe.Sizeof(r.arg)
		flags |= enterExtArg
	}
	var e syscall.Errno
	if wait && !raw {
		_, _, e = unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.Fd), uintptr(submit), minComplete, uintptr(flags), arg, argSz)
	} else {
		// Submitting and reaping without waiting does not block: a raw
		// system call skips entersyscall/exitsyscall.
		_, _, e = unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.Fd), uintptr(submit), minComplete, uintptr(flags), arg, argSz)
	}
	return e
}

// SQWait waits, with SQPOLL, until the kernel thread has taken SQEs.
func (r *Ring) SQWait() {
	unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.Fd), 0, 0, uintptr(enterSQWait), 0, 0)
}

// Reap copies up to len(buf) completions into buf and consumes them.
func (r *Ring) Reap(buf []CQE) int {
	head := *r.cqHead
	tail := atomic.LoadUint32(r.cqTail)
	n := 0
	for head != tail && n < len(buf) {
		c := &r.cqes[head&r.cqMask]
		buf[n] = CQE{UserData: c.UserData, Res: c.Res, Flags: c.Flags}
		n++
		head++
	}
	atomic.StoreUint32(r.cqHead, head)
	return n
}

// CQReady reports whether completions are waiting in the CQ (or must be
// flushed from the overflow list).
func (r *Ring) CQReady() bool {
	return atomic.LoadUint32(r.cqTail) != *r.cqHead || atomic.LoadUint32(r.sqFlags)&sqCQOverflow != 0
}

// TaskPending reports whether the kernel has task work waiting for this
// ring's submitter, which the next enter runs (TASKRUN_FLAG rings).
func (r *Ring) TaskPending() bool {
	return atomic.LoadUint32(r.sqFlags)&sqTaskrun != 0
}

// Register calls io_uring_register on the ring fd.
func Register(fd int, op uint32, arg unsafe.Pointer, n uint32) (int, syscall.Errno) {
	r, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(fd), uintptr(op), uintptr(arg), uintptr(n), 0, 0)
	return int(r), e
}
