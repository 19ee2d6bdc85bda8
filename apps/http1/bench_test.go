package http1

import (
	"strings"
	"testing"
)

// benchOnData measures one OnData of 16 pipelined copies of req on a fake
// connection (no transport): parse, route, answer, one Write.
func benchOnData(b *testing.B, req string) {
	const pipeline = 16
	h := New(Config{})
	c := &fakeConn{out: make([]byte, 0, 1<<16)}
	h.OnOpen(c)
	in := []byte(strings.Repeat(req, pipeline))
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c.out = c.out[:0]
		if n := h.OnData(c, in); n != len(in) {
			b.Fatalf("consumed %d of %d", n, len(in))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*pipeline), "ns/req")
}

// BenchmarkPlaintext is TechEmpower's plaintext test as wrk sends it:
// 16 pipelined requests per OnData.
func BenchmarkPlaintext(b *testing.B) {
	benchOnData(b, "GET /plaintext HTTP/1.1\r\nHost: server\r\nAccept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\nConnection: keep-alive\r\n\r\n")
}

// BenchmarkJSON is the json test, 16 pipelined requests per OnData.
func BenchmarkJSON(b *testing.B) {
	benchOnData(b, "GET /json HTTP/1.1\r\nHost: server\r\nAccept: application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\nConnection: keep-alive\r\n\r\n")
}

// BenchmarkEchoChunked is a chunked 1 KiB echo, 16 pipelined per OnData.
func BenchmarkEchoChunked(b *testing.B) {
	body := strings.Repeat("x", 512)
	benchOnData(b, "POST /echo HTTP/1.1\r\nHost: server\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n"+body+"\r\n200;ext=1\r\n"+body+"\r\n0\r\n\r\n")
}
