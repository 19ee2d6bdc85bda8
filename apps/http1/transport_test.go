package http1_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/merlin-net/merlin/apps/http1"
	"github.com/merlin-net/merlin/internal/testutil"
	"github.com/merlin-net/merlin/transports"
	_ "github.com/merlin-net/merlin/transports/all"
)

// TestTransports serves http1.New on real transports and talks to it with
// net/http's client: keep-alive reuse, every route, a large echo; then a
// Shutdown that must close the idle keep-alive connections and return.
func TestTransports(t *testing.T) {
	for _, spec := range []string{"sockets", "libuvlike"} {
		t.Run("transport="+spec, func(t *testing.T) {
			base := testutil.TakeBaseline()
			tr, err := transports.Open(spec, transports.Config{})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := tr.Listen("tcp", "127.0.0.1:0", http1.New(http1.Config{}))
			if err != nil {
				tr.Close()
				t.Fatal(err)
			}
			ht := &http.Transport{MaxIdleConnsPerHost: 2}
			client := &http.Client{Transport: ht, Timeout: 10 * time.Second}
			url := "http://" + ln.Addr().String()

			type answer struct {
				Status      int
				ContentType string
				Server      string
				Body        string
			}
			do := func(method, path string, body []byte) answer {
				t.Helper()
				req, err := http.NewRequest(method, url+path, bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				r, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				defer r.Body.Close()
				b, err := io.ReadAll(r.Body)
				if err != nil {
					t.Fatalf("%s %s: reading the body: %v", method, path, err)
				}
				if r.Header.Get("Date") == "" {
					t.Errorf("%s %s: no Date", method, path)
				}
				return answer{r.StatusCode, r.Header.Get("Content-Type"), r.Header.Get("Server"), string(b)}
			}
			big := bytes.Repeat([]byte("0123456789abcdef"), http1.DefaultMaxBodyBytes/16) // at the limit
			got := []answer{
				do("GET", "/plaintext", nil),
				do("GET", "/plaintext", nil),
				do("GET", "/json", nil),
				do("POST", "/echo", big),
				do("PUT", "/echo", []byte("small")),
				do("GET", "/missing", nil),
			}
			want := []answer{
				{200, "text/plain", "merlin", "Hello, World!"},
				{200, "text/plain", "merlin", "Hello, World!"},
				{200, "application/json", "merlin", `{"message":"Hello, World!"}`},
				{200, "application/octet-stream", "merlin", string(big)},
				{200, "application/octet-stream", "merlin", "small"},
				{404, "text/plain; charset=utf-8", "merlin", "Not Found\n"},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("answers (-want +got):\n%s", diff)
			}
			if st := tr.Stats(); st.Accepted != 1 {
				t.Errorf("%d connections accepted for sequential requests, want 1 (keep-alive)", st.Accepted)
			}
			pipeline(t, ln.Addr().String())

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tr.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown with an idle keep-alive connection: %v", err)
			}
			ht.CloseIdleConnections()
			base.Check(t, 10*time.Second)
		})
	}
}

// pipeline sends 16 pipelined requests and a last one with Connection:
// close in one write, and checks the answers come in order and the
// server then closes.
func pipeline(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var req strings.Builder
	for i := range 16 {
		fmt.Fprintf(&req, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\nreq-%d\r\n0\r\n\r\n", len(fmt.Sprint("req-", i)), i)
	}
	req.WriteString("GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if _, err := io.WriteString(c, req.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var got, want []string
	for i := range 17 {
		r, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		got = append(got, fmt.Sprint(r.StatusCode, " ", string(b)))
		if i < 16 {
			want = append(want, fmt.Sprint("200 req-", i))
		}
	}
	want = append(want, "200 Hello, World!")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pipelined answers (-want +got):\n%s", diff)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("after Connection: close, read gives %v, want EOF", err)
	}
}
