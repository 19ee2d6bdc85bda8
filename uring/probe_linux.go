package uring

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"github.com/merlin-net/merlin/transports"
	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// features is what the kernel offers, found once per process by probing
// small rings (opcodes through IORING_REGISTER_PROBE, setup flags by
// trying them, flags of requests by kernel version).
type features struct {
	kernel       string    // uname release
	major, minor int       // kernel version
	ops          [256]bool // supported opcodes
	feat         uint32    // IORING_FEAT_* of a plain ring
	setup        uint32    // the best of DEFER_TASKRUN / COOP_TASKRUN / none, with SUBMIT_ALL if possible
	sqpoll       bool      // SQPOLL with SINGLE_ISSUER works
	err          error     // a missing base requirement
}

// opInfo names an opcode and the Linux version that brought it.
type opInfo struct {
	op      uint8
	name    string
	version string
}

// requiredOps are the opcodes every configuration uses.
var requiredOps = []opInfo{
	{giouring.OpAccept, "IORING_OP_ACCEPT", "5.5"},
	{giouring.OpAsyncCancel, "IORING_OP_ASYNC_CANCEL", "5.5"},
	{giouring.OpConnect, "IORING_OP_CONNECT", "5.5"},
	{giouring.OpClose, "IORING_OP_CLOSE", "5.6"},
	{giouring.OpSend, "IORING_OP_SEND", "5.6"},
	{giouring.OpRecv, "IORING_OP_RECV", "5.6"},
	{giouring.OpRead, "IORING_OP_READ", "5.6"},
	{giouring.OpShutdown, "IORING_OP_SHUTDOWN", "5.11"},
}

var (
	opFilesUpdate = opInfo{giouring.OpFilesUpdate, "IORING_OP_FILES_UPDATE", "5.6"}
	opMsgRing     = opInfo{giouring.OpMsgRing, "IORING_OP_MSG_RING", "5.18"}
	opSendZC      = opInfo{giouring.OpSendZC, "IORING_OP_SEND_ZC", "6.0"}
)

var probed = sync.OnceValue(probeKernel)

// atLeast reports whether the kernel is version maj.min or later.
func (f *features) atLeast(maj, min int) bool {
	return f.major > maj || f.major == maj && f.minor >= min
}

// missing returns the error for a feature the kernel lacks.
func (f *features) missing(what, version string) error {
	return transports.Unsupported(fmt.Sprintf("io_uring: %s (Linux %s) is not available on this kernel (Linux %s)", what, version, f.kernel))
}

// needOp returns an error if the kernel lacks op.
func (f *features) needOp(o opInfo) error {
	if !f.ops[o.op] {
		return f.missing(o.name, o.version)
	}
	return nil
}

// setupError describes a failed io_uring_setup: EPERM and ENOSYS mean
// io_uring is turned off here.
func setupError(err error) error {
	switch {
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return fmt.Errorf("io_uring is disabled here (sysctl kernel.io_uring_disabled, or a seccomp filter): %w: %w", err, errors.ErrUnsupported)
	case errors.Is(err, syscall.ENOSYS):
		return fmt.Errorf("io_uring is not in this kernel (Linux 5.1 and later, CONFIG_IO_URING): %w: %w", err, errors.ErrUnsupported)
	}
	return err
}

// tryRing reports whether a ring with flags can be set up, and closes it.
func tryRing(flags uint32) (*params, error) {
	p := &params{Flags: flags, SQThreadIdle: 10}
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 4, uintptr(unsafe.Pointer(p)), 0)
	if e != 0 {
		return nil, e
	}
	unix.Close(int(fd))
	return p, nil
}

func probeKernel() *features {
	f := &features{}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		f.kernel = unix.ByteSliceToString(uts.Release[:])
		v := strings.FieldsFunc(f.kernel, func(r rune) bool { return r < '0' || r > '9' })
		if len(v) >= 2 {
			f.major, _ = strconv.Atoi(v[0])
			f.minor, _ = strconv.Atoi(v[1])
		}
	}
	p := &params{}
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 4, uintptr(unsafe.Pointer(p)), 0)
	if e != 0 {
		f.err = setupError(fmt.Errorf("io_uring_setup: %w", e))
		return f
	}
	defer unix.Close(int(fd))
	f.feat = p.Features
	probe := new(giouring.Probe)
	if _, e := register(int(fd), registerProbe, unsafe.Pointer(probe), 256); e != 0 {
		f.err = f.missing("IORING_REGISTER_PROBE", "5.6")
		return f
	}
	for i := 0; i < int(probe.OpsLen) && i < len(probe.Ops); i++ {
		f.ops[probe.Ops[i].Op] = probe.Ops[i].Flags&1 != 0 // IO_URING_OP_SUPPORTED
	}
	for _, o := range requiredOps {
		if err := f.needOp(o); err != nil {
			f.err = err
			return f
		}
	}
	switch {
	case f.feat&featNoDrop == 0:
		f.err = f.missing("IORING_FEAT_NODROP", "5.5")
	case f.feat&featExtArg == 0:
		f.err = f.missing("IORING_FEAT_EXT_ARG", "5.11")
	case !f.atLeast(5, 19):
		f.err = f.missing("multishot accept and provided buffer rings", "5.19")
	case !f.atLeast(6, 0):
		f.err = f.missing("multishot recv (IORING_RECV_MULTISHOT)", "6.0")
	}
	if f.err != nil {
		return f
	}
	base := uint32(0)
	if _, err := tryRing(setupSubmitAll); err == nil {
		base = setupSubmitAll
	}
	f.setup = base
	for _, fl := range []uint32{setupSingleIss | setupDeferTask, setupCoopTaskrun | setupTaskrunFlag} {
		if _, err := tryRing(base | fl); err == nil {
			f.setup = base | fl
			break
		}
	}
	if _, err := tryRing(base | giouring.SetupSQPoll | setupSingleIss); err == nil {
		f.sqpoll = true
	}
	return f
}

// flagNames spells the setup flags in use.
func flagNames(flags uint32) string {
	names := []struct {
		f    uint32
		name string
	}{
		{giouring.SetupSQPoll, "SQPOLL"},
		{setupSingleIss, "SINGLE_ISSUER"},
		{setupDeferTask, "DEFER_TASKRUN"},
		{setupCoopTaskrun, "COOP_TASKRUN"},
		{setupTaskrunFlag, "TASKRUN_FLAG"},
		{setupSubmitAll, "SUBMIT_ALL"},
		{setupCQSize, "CQSIZE"},
	}
	var s []string
	for _, n := range names {
		if flags&n.f != 0 {
			s = append(s, n.name)
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "|")
}

// probeDriver is the Driver's Probe: what this kernel offers and what the
// transport uses by default, or what is missing.
func probeDriver() (string, error) {
	f := probed()
	if f.err != nil {
		return "", f.err
	}
	var opt []string
	for _, o := range []opInfo{opMsgRing, opSendZC, opFilesUpdate} {
		if f.ops[o.op] {
			opt = append(opt, strings.TrimPrefix(o.name, "IORING_OP_"))
		}
	}
	sq := "no"
	if f.sqpoll {
		sq = "SQPOLL|SINGLE_ISSUER"
	}
	return fmt.Sprintf("Linux %s: multishot accept and recv, provided buffer rings; optional ops %s; setup flags in use %s (sqpoll=true: %s)",
		f.kernel, strings.Join(opt, ", "), flagNames(f.setup|setupCQSize), sq), nil
}

// check returns an error if the kernel lacks what o asks for.
func (f *features) check(o options) error {
	if f.err != nil {
		return f.err
	}
	if o.sqpoll && !f.sqpoll {
		return f.missing("IORING_SETUP_SQPOLL with IORING_SETUP_SINGLE_ISSUER (unprivileged)", "6.0")
	}
	if o.zcThreshold > 0 {
		if err := f.needOp(opSendZC); err != nil {
			return err
		}
	}
	if o.accept == AcceptMsgRing {
		if err := f.needOp(opMsgRing); err != nil {
			return err
		}
	}
	if o.fixedFiles {
		if err := f.needOp(opFilesUpdate); err != nil {
			return err
		}
	}
	return nil
}
