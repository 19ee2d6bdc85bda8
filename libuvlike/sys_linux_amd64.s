#include "textflag.h"

// func rawSyscall(trap, a1, a2, a3, a4 uintptr) (r1, errno uintptr)
//
// A system call that never blocks, made where it is called: no scheduler
// hand-off, and no frames of syscall.RawSyscall6 to return through after
// the kernel (on this host every return after a system call mispredicts,
// so each frame costs). The fifth and sixth arguments are 0: recvfrom's
// and sendto's address and its length.
TEXT ·rawSyscall(SB),NOSPLIT,$0-56
	MOVQ	a1+8(FP), DI
	MOVQ	a2+16(FP), SI
	MOVQ	a3+24(FP), DX
	MOVQ	a4+32(FP), R10
	XORL	R8, R8
	XORL	R9, R9
	MOVQ	trap+0(FP), AX
	SYSCALL
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	MOVQ	$-1, r1+40(FP)
	NEGQ	AX
	MOVQ	AX, errno+48(FP)
	RET
ok:
	MOVQ	AX, r1+40(FP)
	MOVQ	$0, errno+48(FP)
	RET
