// Package conformance is merlin's behavioural suite: the cases every
// transport must pass, from callback order to Shutdown under load, and the
// net.Conn adapter under golang.org/x/net/nettest.
//
// RunFunc takes a function that opens the transport under test, as
// nettest.TestConn takes a MakePipe, so a transport from any module runs
// the suite without a registry; Run is the shortcut for a registered one.
// A transport's own test calls either, from an external test package so
// that it may import every transport:
//
//	func TestConformance(t *testing.T) { conformance.Run(t, "sockets") }
//
// and `go test ./conformance -transport=SPEC` runs the suite on any
// registered transport. Cases that need a child process (a lowered
// descriptor limit) re-execute the test binary. Goroutines and descriptors
// are checked for leaks after every case, against a baseline taken after a
// warm-up. Every case runs under a watchdog that fails it with every
// goroutine's stack after 3 minutes (MERLIN_CASE_TIMEOUT). MERLIN_REQUIRE,
// a comma list of transport names, turns a skip of any of them into a
// failure.
package conformance
