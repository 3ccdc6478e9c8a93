package fsroot

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
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

// TestOperationsStayInRoot runs every operation of Root through a directory
// that is a symlink (absolute, and relative with more ".." than the depth) to
// a directory outside the root: each either lands inside the root (the link
// resolved as if the root were /) or fails naming the path; the outside
// directory never changes.
func TestOperationsStayInRoot(t *testing.T) {
	ops := []struct {
		name string
		op   func(r Root) error
	}{
		{"WriteFile", func(r Root) error { _, err := r.WriteFile("/etc/k/f", []byte("new"), 0o600); return err }},
		{"WriteFile over the link's file", func(r Root) error { _, err := r.WriteFile("/etc/k/victim", []byte("new"), 0o644); return err }},
		{"MkdirAll", func(r Root) error { return r.MkdirAll("/etc/k/a/b", 0o755) }},
		{"Chmod", func(r Root) error { return r.Chmod("/etc/k/victim", 0o600) }},
		{"Rename", func(r Root) error { return r.Rename("/etc/k/victim", "/etc/k/victim.disabled") }},
		{"Remove", func(r Root) error { return r.Remove("/etc/k/victim") }},
		{"RemoveAll below", func(r Root) error { return r.RemoveAll("/etc/k/sub") }},
		{"RemoveAll the link", func(r Root) error { return r.RemoveAll("/etc/k") }},
		{"Symlink", func(r Root) error { _, err := r.Symlink("/dev/null", "/etc/k/l"); return err }},
		{"CreateTemp", func(r Root) error {
			f, err := r.CreateTemp("/etc/k/t", 0o644)
			if err != nil {
				return err
			}
			f.Write([]byte("x"))
			return f.Commit()
		}},
		{"MkdirTemp", func(r Root) error { _, err := r.MkdirTemp("/etc/k/stage"); return err }},
		{"OpenFile create", func(r Root) error {
			f, err := r.OpenFile("/etc/k/lock", os.O_RDWR|os.O_CREATE, 0o644)
			if err == nil {
				f.Close()
			}
			return err
		}},
	}
	tried, confined, refused := 0, 0, 0
	for _, rel := range []bool{false, true} {
		for _, o := range ops {
			t.Run(fmt.Sprintf("%s relative=%v", o.name, rel), func(t *testing.T) {
				outside := t.TempDir()
				os.MkdirAll(filepath.Join(outside, "sub"), 0o755)
				os.WriteFile(filepath.Join(outside, "victim"), []byte("outside"), 0o644)
				os.WriteFile(filepath.Join(outside, "sub", "x"), []byte("outside"), 0o644)
				before := tree(t, outside)
				root, _ := New(t.TempDir())
				os.MkdirAll(root.Path("/etc"), 0o755)
				target := outside
				if rel {
					target = strings.Repeat("../", 20) + strings.TrimPrefix(outside, "/")
				}
				if err := os.Symlink(target, root.Path("/etc/k")); err != nil {
					t.Fatal(err)
				}
				// What the link names inside the root exists, so a confined op can succeed.
				os.MkdirAll(filepath.Join(root.Dir, outside, "sub"), 0o755)
				os.WriteFile(filepath.Join(root.Dir, outside, "victim"), []byte("inside"), 0o644)
				err := o.op(root)
				tried++
				if after := tree(t, outside); after != before {
					t.Fatalf("%s changed the directory outside the root (err %v):\nbefore %s\nafter  %s", o.name, err, before, after)
				}
				switch {
				case err == nil:
					confined++
				case strings.Contains(err.Error(), "/etc/k"):
					refused++
				default:
					t.Errorf("%s: error does not name the path: %v", o.name, err)
				}
			})
		}
	}
	t.Logf("operations through hostile links: tried %d, confined %d, refused naming the path %d", tried, confined, refused)
}

// tree describes a directory: names, modes, sizes, mtimes and contents.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := os.Lstat(p)
		data, _ := os.ReadFile(p)
		fmt.Fprintf(&b, "%s %v %d %d %q;", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano(), data)
		return nil
	})
	return b.String()
}
