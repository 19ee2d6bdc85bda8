#include "textflag.h"

// func getg() uintptr
//
// The address of the calling goroutine's g, from the g register: a value
// no other live goroutine has.
TEXT ·getg(SB),NOSPLIT,$0-8
	MOVD g, R0
	MOVD R0, ret+0(FP)
	RET
