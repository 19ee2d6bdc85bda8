#include "textflag.h"

// func G() uintptr
//
// The address of the calling goroutine's g, from the g register: a value
// no other live goroutine has.
TEXT ·G(SB),NOSPLIT,$0-8
	MOVD g, R0
	MOVD R0, ret+0(FP)
	RET
