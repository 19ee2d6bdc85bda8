package bench

import (
	"errors"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// A thread that exits between the listing and its pinning is no error
// (CI once failed "pinning thread N to CPUs [1]: no such process"), and a
// thread that appears while the threads are pinned is pinned too.
func TestPinTasks(t *testing.T) {
	lists := [][]int{{10, 11, 12}, {10, 12, 13}, {10, 12, 13}}
	calls := 0
	list := func() ([]int, error) {
		l := lists[min(calls, len(lists)-1)]
		calls++
		return l, nil
	}
	var pinned []int
	pin := func(tid int) error {
		if tid == 11 {
			return unix.ESRCH // gone
		}
		pinned = append(pinned, tid)
		return nil
	}
	if err := pinTasks(list, pin); err != nil {
		t.Fatalf("pinTasks: %v", err)
	}
	if want := []int{10, 12, 13}; !slices.Equal(pinned, want) {
		t.Errorf("pinned %v, want %v", pinned, want)
	}

	denied := errors.New("denied")
	err := pinTasks(func() ([]int, error) { return []int{7}, nil }, func(int) error { return denied })
	if !errors.Is(err, denied) {
		t.Errorf("a refused pin: %v, want it reported", err)
	}
}
