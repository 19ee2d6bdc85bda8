// Package ioring maps an io_uring instance and drives it: setup, the
// submission and completion queues, io_uring_enter and io_uring_register.
//
// It is the one copy of that mechanism in merlin, shared by the uring
// transport and the load generator. A Ring belongs to one goroutine locked
// to its OS thread (rings are set up with SINGLE_ISSUER); SQEs are
// prepared with giouring's helpers on the zeroed entries GetSQE returns.
// Outside Linux the package is empty.
//
//	r, err := ioring.New(256, giouring.SetupSingleIssuer|giouring.SetupDeferTaskrun, 0)
//	sqe := r.GetSQE()
//	sqe.PrepareNop()
//	r.Enter(r.Publish(), 1, 0, false)
package ioring
