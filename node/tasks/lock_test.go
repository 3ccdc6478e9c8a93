package tasks

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/internal/runner"
)

// TestHelperHoldDpkgLock is not a test: run as a child with
// PROVISION_HOLD_LOCK=path and PROVISION_HOLD_FOR=duration it takes the POSIX write lock apt and dpkg
// take on lock-frontend, says "locked", and holds it for the duration.
func TestHelperHoldDpkgLock(t *testing.T) {
	spec := os.Getenv("PROVISION_HOLD_LOCK")
	if spec == "" {
		return
	}
	p := spec
	hold, err := time.ParseDuration(os.Getenv("PROVISION_HOLD_FOR"))
	if err != nil {
		os.Exit(2)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		os.Exit(3)
	}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLKW, &unix.Flock_t{Type: unix.F_WRLCK}); err != nil {
		os.Exit(4)
	}
	fmt.Println("locked")
	time.Sleep(hold)
	os.Exit(0)
}

// holdLock starts a child holding lock for hold; it is killed by PID at cleanup.
func holdLock(t *testing.T, lock string, hold time.Duration) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldDpkgLock$")
	cmd.Env = append(os.Environ(), "PROVISION_HOLD_LOCK="+lock, "PROVISION_HOLD_FOR="+hold.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("lock holder did not lock: %q %v", line, err)
	}
	return cmd
}

// TestPackagesWaitForDpkgLock: with the dpkg frontend lock held (as by
// apt-daily or unattended-upgrades) for less than the bound, the package task
// waits and then installs; held for longer, it gives up at the bound with a
// message naming the lock, the holder's PID and command, and runs no apt-get.
func TestPackagesWaitForDpkgLock(t *testing.T) {
	for _, tc := range []struct {
		name        string
		hold, bound time.Duration
		wantErr     bool
	}{
		{"held shorter than the bound: waits, then proceeds", 700 * time.Millisecond, 5 * time.Second, false},
		{"held longer than the bound: gives up naming the holder", time.Minute, 500 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &runner.Fake{}
			var aptRuns atomic.Int32
			installed := false
			f.OnFunc([]string{"chroot"}, func(c runner.Cmd) runner.Result {
				switch c.Argv[2] {
				case "dpkg-query":
					if installed {
						return runner.Result{Stdout: []byte("conntrack\tii \n")}
					}
					return runner.Result{ExitCode: 1}
				case "apt-get":
					aptRuns.Add(1)
					if strings.Contains(strings.Join(c.Argv, " "), " install ") {
						installed = true
					}
				}
				return runner.Result{}
			})
			e := newEnv(t, "debian-12", false, f)
			lock := e.Root.Path("/var/lib/dpkg/lock-frontend")
			if err := os.MkdirAll(filepath.Dir(lock), 0o755); err != nil {
				t.Fatal(err)
			}
			holder := holdLock(t, lock, tc.hold)
			task := &Packages{TaskName: "packages/install", Names: []string{"conntrack"}, LockTimeout: tc.bound}
			start := time.Now()
			o, err := task.Run(context.Background(), e, false)
			took := time.Since(start)
			if !tc.wantErr {
				if err != nil || o.Result != Changed || aptRuns.Load() != 2 {
					t.Fatalf("outcome %+v err %v apt-get runs %d", o, err, aptRuns.Load())
				}
				if took < tc.hold-200*time.Millisecond {
					t.Errorf("did not wait for the lock: %s", took)
				}
				return
			}
			want := fmt.Sprintf("%s still held after %s by PID %d (", lock, tc.bound, holder.Process.Pid)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "TestHelperHoldDpkgLock") {
				t.Fatalf("err = %v\nwant it to contain %q and the holder's command", err, want)
			}
			if aptRuns.Load() != 0 {
				t.Errorf("apt-get ran %d times while the lock was held", aptRuns.Load())
			}
			if took > tc.bound+time.Second {
				t.Errorf("gave up after %s, bound %s", took, tc.bound)
			}
			t.Logf("%v", err)
		})
	}
}
