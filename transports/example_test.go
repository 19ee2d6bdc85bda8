package transports_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/merlin-net/merlin/transports"
	_ "github.com/merlin-net/merlin/transports/all" // registers sockets, libuvlike and uring
)

// upper is a Handler that answers every byte with its upper case.
type upper struct{}

func (upper) OnOpen(c transports.Conn) {}
func (upper) OnData(c transports.Conn, in []byte) int {
	c.Write([]byte(strings.ToUpper(string(in))))
	return len(in) // all consumed: nothing is kept for the next call
}
func (upper) OnClose(c transports.Conn, err error) {}

// Open makes a transport by its spec: a name, and options after a colon.
// The application is written once against Handler and Conn; the spec
// alone picks the mechanism under it.
func ExampleOpen() {
	t, err := transports.Open("sockets:maxwritebuffer=256k", transports.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	ln, err := t.Listen("tcp", "127.0.0.1:0", upper{})
	if err != nil {
		log.Fatal(err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello"))
	b := make([]byte, 5)
	io.ReadFull(c, b)
	fmt.Printf("%s (max write buffer %d)\n", b, t.Config().MaxWriteBuffer)
	// Output: HELLO (max write buffer 262144)
}

// counter counts what a dialled connection receives, and says when it
// has it all.
type counter struct {
	want int
	got  int
	done chan struct{}
}

func (h *counter) OnOpen(c transports.Conn) { c.Write([]byte("ping")) }
func (h *counter) OnData(c transports.Conn, in []byte) int {
	if h.got += len(in); h.got >= h.want {
		c.Close()
	}
	return len(in)
}
func (h *counter) OnClose(c transports.Conn, err error) { close(h.done) }

// Dial connects through a transport; the Handler runs on its loop, as an
// accepted connection's does. Here one transport dials another.
func ExampleTransport_Dial() {
	srv, err := transports.Open("sockets", transports.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ln, err := srv.Listen("tcp", "127.0.0.1:0", upper{})
	if err != nil {
		log.Fatal(err)
	}
	cli, err := transports.Open("sockets", transports.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	h := &counter{want: 4, done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Dial(ctx, "tcp", ln.Addr().String(), h); err != nil {
		log.Fatal(err)
	}
	<-h.done // OnClose has run
	fmt.Println("received", h.got, "bytes")
	// Output: received 4 bytes
}

// Listen serves every connection a listener accepts with one Handler,
// inline on the transport's loops; per-connection state goes in
// Conn.SetContext. Listener.Close stops accepting; the connections go on.
func ExampleTransport_Listen() {
	t, err := transports.Open("sockets", transports.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	ln, err := t.Listen("tcp", "127.0.0.1:0", upper{})
	if err != nil {
		log.Fatal(err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	b := make([]byte, 5)
	c.Write([]byte("hello"))
	io.ReadFull(c, b) // answered: c has been accepted
	ln.Close()
	c.Write([]byte("again"))
	io.ReadFull(c, b)
	fmt.Println(string(b))
	// Output: AGAIN
}

// DialNet gives a net.Conn on any transport, for client code written
// for package net.
func ExampleDialNet() {
	t, err := transports.Open("sockets", transports.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	ln, err := t.Listen("tcp", "127.0.0.1:0", upper{})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := transports.DialNet(ctx, t, "tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "net.Conn")
	b := make([]byte, 8)
	io.ReadFull(c, b)
	fmt.Println(string(b))
	// Output: NET.CONN
}

// NetListener puts a net.Listener on any transport, so that code written
// for package net (net/http here) runs on it unchanged, a goroutine per
// connection; DialNet is the other end.
func ExampleNetListener() {
	t, err := transports.Open("sockets", transports.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	nl, err := transports.NetListener(t, "tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from ", t.Name())
	})}
	go srv.Serve(nl)
	defer srv.Close()

	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return transports.DialNet(ctx, t, network, addr)
		},
	}}
	resp, err := client.Get("http://" + nl.Addr().String() + "/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	client.CloseIdleConnections()
	fmt.Println(string(body))
	// Output: hello from sockets
}
