#include "textflag.h"

// func G() uintptr
//
// The address of the calling goroutine's g, from thread-local storage: a
// value no other live goroutine has.
TEXT ·G(SB),NOSPLIT,$0-8
	MOVQ (TLS), AX
	MOVQ AX, ret+0(FP)
	RET
