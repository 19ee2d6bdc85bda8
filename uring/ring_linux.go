package uring

import (
	"github.com/merlin-net/merlin/internal/ioring"
	"github.com/pawelgaczynski/giouring"
)

// The ring itself (setup, queues, io_uring_enter) is internal/ioring's,
// shared with the load generator; these names keep this package's code
// short.
type (
	ring   = ioring.Ring
	params = ioring.Params
	cqe    = ioring.CQE
)

var (
	newRing  = ioring.New
	register = ioring.Register
)

// Kernel constants giouring lacks (include/uapi/linux/io_uring.h).
const (
	setupCQSize      = giouring.SetupCQSize      // 5.5
	setupSubmitAll   = giouring.SetupSubmitAll   // 5.18
	setupCoopTaskrun = giouring.SetupCoopTaskrun // 5.19
	setupTaskrunFlag = giouring.SetupTaskrunFlag // 5.19
	setupSingleIss   = giouring.SetupSingleIssuer
	setupDeferTask   = giouring.SetupDeferTaskrun

	featNoDrop     = giouring.FeatNoDrop
	featExtArg     = giouring.FeatExtArg
	featCQESkip    = giouring.FeatCQESkip
	featMinTimeout = ioring.FeatMinTimeout // 6.12

	registerFiles2    = giouring.RegisterFiles2
	registerProbe     = giouring.RegisterProbe
	rsrcRegSparse     = giouring.RsrcRegisterSparse
	notifUsageZCCopy  = giouring.NotifUsageZCCopied
	sendZCReportUsage = giouring.SendZCReportUsage
)
