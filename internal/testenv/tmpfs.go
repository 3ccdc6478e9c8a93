package testenv

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a fresh tmpfs on a new directory and unmounts it (then
// removes the empty directory) at cleanup. The directory is never removed
// recursively, so nothing mounted below it can be harmed.
func mountTmpfs(t testing.TB, prefix string) string {
	t.Helper()
	dir, release := mountTmpfsRelease(t, prefix)
	t.Cleanup(release)
	return dir
}

// mountTmpfsRelease is mountTmpfs with the release returned to the caller, who
// must call it (it is idempotent), for scratch space freed before the test ends.
func mountTmpfsRelease(t testing.TB, prefix string) (string, func()) {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatalf("tmpfs: %v", err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755,size=16g"); err != nil {
		os.Remove(dir)
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	var once sync.Once
	return dir, func() {
		once.Do(func() {
			if err := unmount(dir); err != nil {
				t.Errorf("unmount tmpfs %s: %v (left in place)", dir, err)
				return
			}
			if err := os.Remove(dir); err != nil {
				t.Errorf("remove %s: %v", dir, err)
			}
		})
	}
}

// unmount unmounts dir, retrying while it is busy, detaching it lazily as a last resort.
func unmount(dir string) error {
	var err error
	for i := 0; i < 20; i++ {
		if err = syscall.Unmount(dir, 0); err == nil || !errors.Is(err, syscall.EBUSY) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return syscall.Unmount(dir, syscall.MNT_DETACH)
}

// mountProc mounts proc on root/proc for a chroot and returns the undo function.
func mountProc(root string) (func() error, error) {
	p := filepath.Join(root, "proc")
	if err := syscall.Mount("proc", p, "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return nil, err
	}
	return func() error { return unmount(p) }, nil
}
