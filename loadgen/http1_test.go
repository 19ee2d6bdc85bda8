package loadgen_test

import (
	"testing"
	"time"

	"github.com/merlin-net/merlin/apps/http1"
	"github.com/merlin-net/merlin/loadgen"
	"github.com/merlin-net/merlin/transports"
	_ "github.com/merlin-net/merlin/transports/all"
)

// The HTTP workload against merlin's own http app (apps/http1 on the
// sockets transport), which answers a pipelined burst with one write: its
// three routes, at depth 1 and 16, on both engines.
func TestHTTPAgainstHTTP1(t *testing.T) {
	tr, err := transports.Open("sockets", transports.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ln, err := tr.Listen("tcp", "127.0.0.1:0", http1.New(http1.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, engine := range []string{loadgen.EngineNet, loadgen.EngineRing} {
		for _, path := range []string{"/plaintext", "/json", loadgen.EchoPath} {
			for _, depth := range []int{1, 16} {
				res := loadgen.RunSome(t, loadgen.Config{
					Addr: ln.Addr().String(), Workload: loadgen.HTTP, HTTPPath: path, Conns: 4, Depth: depth,
					Duration: 200 * time.Millisecond, Engine: engine,
				}, 1)
				if res.Errors != 0 || res.Requests == 0 || res.Requests%uint64(depth) != 0 {
					t.Errorf("engine %s %s depth %d: %d requests, %d errors %v; want whole batches and no error",
						engine, path, depth, res.Requests, res.Errors, res.FirstErrors)
				}
			}
		}
	}
}
