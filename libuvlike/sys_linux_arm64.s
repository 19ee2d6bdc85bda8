#include "textflag.h"

// func rawSyscall(trap, a1, a2, a3, a4 uintptr) (r1, errno uintptr)
//
// A system call that never blocks, made where it is called (see the amd64
// version). The fifth and sixth arguments are 0.
TEXT ·rawSyscall(SB),NOSPLIT,$0-56
	MOVD	a1+8(FP), R0
	MOVD	a2+16(FP), R1
	MOVD	a3+24(FP), R2
	MOVD	a4+32(FP), R3
	MOVD	ZR, R4
	MOVD	ZR, R5
	MOVD	trap+0(FP), R8
	SVC
	CMN	$4095, R0
	BCC	ok
	MOVD	$-1, R4
	MOVD	R4, r1+40(FP)
	NEG	R0, R0
	MOVD	R0, errno+48(FP)
	RET
ok:
	MOVD	R0, r1+40(FP)
	MOVD	ZR, errno+48(FP)
	RET
