// Package faultinject is a test-only kill switch for crash-consistency tests.
//
// With PROVISION_TEST_KILL_AT=N in the environment (read once, at start), the
// Nth call of Point in the process makes it SIGKILL itself: no deferred cleanup,
// no flush, exactly like a power cut or the OOM killer. Points sit in fsroot's
// write and commit path, in the downloader's copy loop and at task boundaries.
// Just before dying it writes one line "faultinject: kill at N (NAME)" to stderr,
// so a test can tell which kind of point it hit.
//
// Unset (always, outside tests), Point costs one load and compare of a
// package-level integer; nothing else runs.
package faultinject

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
)

// Env is the variable that arms the kill switch.
const Env = "PROVISION_TEST_KILL_AT"

var (
	killAt = parse(os.Getenv(Env))
	count  atomic.Int64
)

func parse(v string) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// Enabled reports whether a kill point is armed (callers may split work into
// finer steps only then).
func Enabled() bool { return killAt != 0 }

// Point counts one kill point and, at the armed one, kills the process.
func Point(name string) {
	if killAt == 0 {
		return
	}
	if count.Add(1) == killAt {
		fmt.Fprintf(os.Stderr, "faultinject: kill at %d (%s)\n", killAt, name)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is delivered before this goroutine runs again
	}
}
