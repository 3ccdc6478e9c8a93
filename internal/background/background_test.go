package background

import (
	"errors"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// niceOf returns the nice value of the calling thread (getpriority returns 20-nice).
func niceOf(t *testing.T) int {
	t.Helper()
	p, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
	if err != nil {
		t.Fatal(err)
	}
	return 20 - p
}

func TestRunLowersOnlyItsOwnThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := niceOf(t)
	want := errors.New("fn's error")
	var inside int
	err := Run(func() error {
		inside = niceOf(t)
		return want
	})
	if !errors.Is(err, want) {
		t.Errorf("Run returned %v, want fn's error", err)
	}
	if inside != max(before, Nice) {
		t.Errorf("nice inside fn = %d, want %d", inside, max(before, Nice))
	}
	if after := niceOf(t); after != before {
		t.Errorf("the caller's thread changed nice: %d -> %d", before, after)
	}
	// Many runs: each thread ends with its work, none is handed back lowered.
	for range 50 {
		if err := Run(func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan int)
	for range 8 {
		go func() { done <- niceOf(t) }()
	}
	for range 8 {
		if n := <-done; n != before {
			t.Errorf("a goroutine after Run runs at nice %d, want %d", n, before)
		}
	}
}
