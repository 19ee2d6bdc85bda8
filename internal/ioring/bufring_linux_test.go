package ioring

import (
	"runtime"
	"testing"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// Free counts what the kernel can still fill: not the buffers it filled,
// whether or not their completions were reaped, and again the buffers put
// back.
func TestBufRingFree(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r, err := New(8, 0, 0)
	if err != nil {
		t.Skipf("io_uring: %v", err)
	}
	defer r.Close()
	b, err := NewBufRing(r.Fd, 0, 8, 16)
	if err != nil {
		t.Skipf("provided buffer ring: %v", err)
	}
	defer b.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if n := b.Free(); n != 8 {
		t.Fatalf("Free() = %d at the start, want 8", n)
	}

	s := r.GetSQE()
	s.PrepareRecvMultishot(fds[0], 0, 0, 0)
	s.Flags |= giouring.SqeBufferSelect
	s.BufIG = 0
	s.UserData = 1
	if e := r.Enter(r.Publish(), 0, 0, false); e != 0 {
		t.Fatalf("io_uring_enter: %v", e)
	}
	// 48 bytes: three buffers of 16, used up.
	if _, err := unix.Write(fds[1], make([]byte, 48)); err != nil {
		t.Fatal(err)
	}
	var cqes []CQE
	buf := make([]CQE, 8)
	got := 0
	for got < 48 {
		if e := r.Enter(0, 1, 0, false); e != 0 && e != unix.EINTR {
			t.Fatalf("io_uring_enter: %v", e)
		}
		n := r.Reap(buf)
		for _, c := range buf[:n] {
			if c.Res <= 0 {
				t.Fatalf("recv: %d", c.Res)
			}
			got += int(c.Res)
			cqes = append(cqes, c)
		}
	}
	var bids []uint16
	for _, c := range cqes {
		bid := uint16(c.Flags >> giouring.CQEBufferShift)
		if _, usedUp := b.Get(bid, int(c.Res), c.Flags); usedUp {
			bids = append(bids, bid)
		}
	}
	if len(bids) != 3 {
		t.Fatalf("%d buffers used up by 48 bytes, want 3", len(bids))
	}
	if n := b.Free(); n != 5 {
		t.Errorf("Free() = %d with 3 of 8 buffers held, want 5", n)
	}

	// 16 bytes more, the completion waited for but not reaped: that
	// buffer is not free either.
	if _, err := unix.Write(fds[1], make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	for !r.CQReady() {
		if e := r.Enter(0, 1, 0, false); e != 0 && e != unix.EINTR {
			t.Fatalf("io_uring_enter: %v", e)
		}
	}
	if n := b.Free(); n != 4 {
		t.Errorf("Free() = %d with 3 buffers held and one filled, unreaped; want 4", n)
	}

	for _, bid := range bids {
		b.Put(bid)
	}
	if n := b.Free(); n != 7 {
		t.Errorf("Free() = %d once 3 are put back (not published), want 7", n)
	}
	b.Publish()
	if n := b.Free(); n != 7 {
		t.Errorf("Free() = %d once published, want 7", n)
	}
}
