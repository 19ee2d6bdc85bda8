package loadgen

import (
	"context"
	"testing"
	"time"
)

// RunSome runs c and, while its window counted fewer than least requests
// and no error, runs it again with the window doubled, up to 6.4 s. A
// test that wants some requests asserts what the generator does, not how
// much a loaded machine gets through in a short window: on CI, four test
// binaries on two cores once left a 200 ms window without one exchange of
// 4 x 100 KiB finished. (Exported for loadgen_test.)
func RunSome(t testing.TB, c Config, least uint64) Result {
	t.Helper()
	for {
		res, err := c.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests >= least || res.Errors != 0 || c.Duration >= 6400*time.Millisecond {
			return res
		}
		t.Logf("%d requests in %v, want at least %d: again with a window twice as long", res.Requests, res.Elapsed, least)
		c.Duration *= 2
	}
}
