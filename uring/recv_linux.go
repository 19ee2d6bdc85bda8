package uring

import "github.com/merlin-net/merlin/internal/ioring"

// The provided buffer ring is internal/ioring's, shared with the load
// generator; group 0 of each loop's ring.
type bufRing = ioring.BufRing

var newBufRing = ioring.NewBufRing

// cqeBufMore is IORING_CQE_F_BUF_MORE (Linux 6.12).
const cqeBufMore = ioring.CQEFBufMore
