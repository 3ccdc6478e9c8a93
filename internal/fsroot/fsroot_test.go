package fsroot

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestPathStaysUnderRoot(t *testing.T) {
	r := Root{Dir: "/tmp/r"}
	for in, want := range map[string]string{"/etc/x": "/tmp/r/etc/x", "../../etc/x": "/tmp/r/etc/x", "/a/../../b": "/tmp/r/b"} {
		if got := r.Path(in); got != want {
			t.Errorf("Path(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (Root{Dir: "/"}).Path("etc/x"); got != "/etc/x" {
		t.Errorf("host Path = %q", got)
	}
}

func TestWriteFileAtomicIdempotent(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	r, _ := New(t.TempDir())
	for i, tc := range []struct {
		data    string
		mode    os.FileMode
		changed bool
	}{
		{"a", 0o644, true}, {"a", 0o644, false}, {"b", 0o644, true}, {"b", 0o600, true}, {"b", 0o600, false},
	} {
		changed, err := r.WriteFile("/etc/x/y.conf", []byte(tc.data), tc.mode)
		if err != nil || changed != tc.changed {
			t.Fatalf("step %d: changed=%v err=%v, want %v", i, changed, err, tc.changed)
		}
		fi, _ := os.Stat(r.Path("/etc/x/y.conf"))
		if fi.Mode().Perm() != tc.mode {
			t.Errorf("step %d: mode %v, want %v (umask must not change it)", i, fi.Mode().Perm(), tc.mode)
		}
	}
	ents, _ := os.ReadDir(filepath.Dir(r.Path("/etc/x/y.conf")))
	if len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
}

func TestCreateTempHasFinalModeBeforeContent(t *testing.T) {
	r, _ := New(t.TempDir())
	f, err := r.CreateTemp("/secret", 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	fi, _ := os.Stat(f.Name())
	if fi.Mode().Perm() != 0o600 || fi.Size() != 0 {
		t.Errorf("temp mode %v size %d", fi.Mode(), fi.Size())
	}
}

// TestRemoveStaleTemps: a killed run's temp files for a target (dead PID) are
// removed when the target is written again; a live process's and other targets'
// temps are kept.
func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	dead := filepath.Join(dir, ".kubelet.provision-999999999-1.tmp") // no such PID
	deadLink := filepath.Join(dir, ".kubelet.provision-999999999-2.lnk")
	live := filepath.Join(dir, ".kubelet.provision-1-3.tmp") // PID 1 is alive
	other := filepath.Join(dir, ".crictl.provision-999999999-4.tmp")
	for _, p := range []string{dead, live, other} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/dev/null", deadLink); err != nil {
		t.Fatal(err)
	}
	if err := Host.WriteAtomic(filepath.Join(dir, "kubelet"), []byte("full"), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{dead: false, deadLink: false, live: true, other: true} {
		if _, err := os.Lstat(p); (err == nil) != want {
			t.Errorf("%s: exists=%v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}

// TestDiskFull: an atomic write that does not fit fails naming the target path
// and the cause (ENOSPC); the old content stays, no temp file is left.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root to mount a tmpfs: run as root")
	}
	if _, err := exec.LookPath("mount"); err != nil {
		t.Fatal("mount(8) is missing: apt-get install mount")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	r, _ := New(dir)
	if _, err := r.WriteFile("/etc/containerd/config.toml", []byte("version = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 2<<20)
	_, err := r.WriteFile("/etc/containerd/config.toml", big, 0o644)
	target := r.Path("/etc/containerd/config.toml")
	if named := "/etc/containerd/config.toml (in root " + dir + ")"; err == nil || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), named) {
		t.Fatalf("err = %v, want ENOSPC naming %s", err, named)
	}
	t.Logf("disk full: %v", err)
	if got, _ := os.ReadFile(target); string(got) != "version = 3\n" {
		t.Errorf("old content lost: %d bytes", len(got))
	}
	if ents, _ := os.ReadDir(filepath.Dir(target)); len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
}
