package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/internal/fsroot"
)

// RunLock is the file a `provision node` run holds a write lock on (fcntl, so
// the kernel reports the holder's PID) for its whole duration, under the root:
// two runs never interleave (the second would otherwise remove the first
// one's staging and temp files). The holder removes it when it is done.
const RunLock = "/run/provision/node.lock"

// AcquireRunLock takes RunLock in root, waiting up to timeout for a running
// holder (logging it every 10 s), and returns the release function. A holder
// that stays past the timeout fails the run, naming its PID.
func AcquireRunLock(ctx context.Context, root fsroot.Root, log *slog.Logger, timeout time.Duration) (func(), error) {
	deadline := time.Now().Add(timeout)
	var logged time.Time
	for {
		f, err := root.OpenFile(RunLock, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("run lock: %w", err)
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		err = unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk)
		if err == nil {
			if same(f, root) { // not a file a finishing holder just removed
				return func() { _ = root.Remove(RunLock); f.Close() }, nil
			}
			f.Close()
			continue
		}
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) {
			f.Close()
			return nil, fmt.Errorf("run lock %s: %w", root.Path(RunLock), err)
		}
		holder := "unknown"
		q := unix.Flock_t{Type: unix.F_WRLCK}
		if unix.FcntlFlock(f.Fd(), unix.F_GETLK, &q) == nil && q.Type != unix.F_UNLCK && q.Pid > 0 {
			holder = fmt.Sprint(q.Pid)
		}
		f.Close()
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("another provision node run (PID %s) holds %s: gave up after waiting %s (let it finish, or stop that process)", holder, root.Path(RunLock), timeout)
		}
		if time.Since(logged) >= 10*time.Second {
			log.Info("waiting for another provision node run to finish", "pid", holder, "lock", root.Path(RunLock), "timeout", timeout)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(200*time.Millisecond, time.Until(deadline)+time.Millisecond)):
		}
	}
}

// same reports whether open file f is still the file at RunLock.
func same(f *os.File, root fsroot.Root) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := root.Lstat(RunLock)
	if err != nil {
		return false
	}
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Ino == sb.Ino && sa.Dev == sb.Dev
}
