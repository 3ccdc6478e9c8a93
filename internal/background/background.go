// Package background runs work that is off a run's critical path at a lower
// CPU priority, so that it uses the cores the critical work (the package
// install) leaves idle instead of slowing it down.
package background

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// Nice is the nice value background work runs at (0 is the default, 19 the lowest).
const Nice = 10

// Run runs fn on an OS thread of its own at nice value Nice and returns its
// error. On Linux a nice value belongs to a thread: the thread is locked to fn's
// goroutine and ends with it, so no other goroutine ever runs at the lowered
// priority and nothing needs the privilege to raise it back. Goroutines fn starts
// run at normal priority. If the priority cannot be changed fn runs anyway.
func Run(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		tid := unix.Gettid()
		// getpriority returns 20-nice; never raise a priority lowered by the caller.
		if p, err := unix.Getpriority(unix.PRIO_PROCESS, tid); err == nil && 20-p < Nice {
			_ = unix.Setpriority(unix.PRIO_PROCESS, tid, Nice)
		}
		errc <- fn()
	}()
	return <-errc
}
