package minheap

import (
	"math/rand/v2"
	"slices"
	"testing"
)

type item struct {
	v   int
	idx int
}

// TestOrderAndIndexes pushes, fixes and removes at random: the elements
// come out in order, and each always knows its index.
func TestOrderAndIndexes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	h := New(func(a, b *item) bool { return a.v < b.v }, func(x *item, i int) { x.idx = i })
	var in []*item
	for range 1000 {
		switch k := r.IntN(4); {
		case k < 2 || len(in) == 0:
			x := &item{v: r.IntN(100)}
			h.Push(x)
			in = append(in, x)
		case k == 2:
			x := in[r.IntN(len(in))]
			x.v = r.IntN(100)
			h.Fix(x.idx)
		default:
			j := r.IntN(len(in))
			x := in[j]
			if got := h.Remove(x.idx); got != x || x.idx != -1 {
				t.Fatalf("Remove returned %v (index now %d), want %v", got, x.idx, x)
			}
			in = slices.Delete(in, j, j+1)
		}
		for i, x := range h.items {
			if x.idx != i {
				t.Fatalf("element at %d believes it is at %d", i, x.idx)
			}
		}
	}
	var got []int
	for h.Len() > 0 {
		got = append(got, h.Remove(0).v)
	}
	if !slices.IsSorted(got) || len(got) != len(in) {
		t.Fatalf("came out %v (%d of %d)", got, len(got), len(in))
	}
}
