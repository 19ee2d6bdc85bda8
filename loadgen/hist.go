package loadgen

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency range and precision: 1 µs to 1 minute, three significant
// digits (a value is within 0.1% of the one recorded).
const (
	histLowest  = int64(time.Microsecond)
	histHighest = int64(time.Minute)
	histDigits  = 3
)

// Histogram is a latency distribution: an HdrHistogram of nanoseconds.
type Histogram struct {
	H *hdrhistogram.Histogram
}

// NewHistogram returns an empty Histogram.
func NewHistogram() *Histogram {
	return &Histogram{H: hdrhistogram.New(histLowest, histHighest, histDigits)}
}

// Count returns the number of values recorded.
func (h *Histogram) Count() int64 { return h.H.TotalCount() }

// Quantile returns the value below which fraction q (0.5, 0.99, 0.999) of
// the recorded values fall; 0 if none was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.H.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.H.ValueAtQuantile(q * 100))
}

// Max returns the largest value recorded (to the histogram's precision).
func (h *Histogram) Max() time.Duration { return time.Duration(h.H.Max()) }

// Mean returns the mean of the recorded values.
func (h *Histogram) Mean() time.Duration { return time.Duration(h.H.Mean()) }

// Record adds n values of d; values out of range are clamped to it.
func (h *Histogram) Record(d time.Duration, n int) {
	v := int64(d)
	v = max(v, histLowest)
	v = min(v, histHighest)
	h.H.RecordValues(v, int64(n))
}

// Merge adds o's values to h.
func (h *Histogram) Merge(o *Histogram) { h.H.Merge(o.H) }

// shardedHist spreads recording over a few locked histograms, so that
// connections rarely wait for each other and memory stays bounded
// whatever the number of connections.
type shardedHist struct {
	shards []histShard
}

type histShard struct {
	mu sync.Mutex
	h  *Histogram // guarded by mu
}

func newShardedHist(n int) *shardedHist {
	s := &shardedHist{shards: make([]histShard, max(n, 1))}
	for i := range s.shards {
		s.shards[i].h = NewHistogram()
	}
	return s
}

func (s *shardedHist) record(conn int, d time.Duration, n int) {
	sh := &s.shards[conn%len(s.shards)]
	sh.mu.Lock()
	sh.h.Record(d, n)
	sh.mu.Unlock()
}

// merge returns the sum of every shard.
func (s *shardedHist) merge() *Histogram {
	all := NewHistogram()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		all.Merge(sh.h)
		sh.mu.Unlock()
	}
	return all
}
