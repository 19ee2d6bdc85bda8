// Package minheap is the binary min-heap under the loops' timers
// (libuvlike's and uring's). Unlike container/heap it boxes nothing: an
// element is a T, and the heap tells each element where it moved, so that
// an element can be fixed or removed by its index.
package minheap

// Heap is a binary min-heap of T. The zero value is not ready: use New.
type Heap[T any] struct {
	items []T
	less  func(a, b T) bool
	moved func(x T, i int) // x is now at index i; -1: out of the heap
}

// New returns an empty heap ordered by less, which tells each element
// its index through moved.
func New[T any](less func(a, b T) bool, moved func(x T, i int)) Heap[T] {
	return Heap[T]{less: less, moved: moved}
}

// Len returns the number of elements.
func (h *Heap[T]) Len() int { return len(h.items) }

// Min returns the least element; the heap must not be empty.
func (h *Heap[T]) Min() T { return h.items[0] }

// Push adds x.
func (h *Heap[T]) Push(x T) {
	h.items = append(h.items, x)
	h.moved(x, len(h.items)-1)
	h.up(len(h.items) - 1)
}

// Remove takes out and returns the element at index i.
func (h *Heap[T]) Remove(i int) T {
	last := len(h.items) - 1
	x := h.items[i]
	if i != last {
		h.swap(i, last)
	}
	var zero T
	h.items[last] = zero
	h.items = h.items[:last]
	h.moved(x, -1)
	if i != last {
		h.Fix(i)
	}
	return x
}

// Fix restores the order after the element at index i changed.
func (h *Heap[T]) Fix(i int) {
	h.up(i)
	h.down(i)
}

func (h *Heap[T]) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.moved(h.items[i], i)
	h.moved(h.items[j], j)
}

func (h *Heap[T]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(h.items[i], h.items[p]) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *Heap[T]) down(i int) {
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(h.items[r], h.items[l]) {
			m = r
		}
		if !h.less(h.items[m], h.items[i]) {
			return
		}
		h.swap(i, m)
		i = m
	}
}
