package fsroot

import (
	"os"
	"path/filepath"
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
	f, err := CreateTemp(t.TempDir(), "secret", 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	fi, _ := f.Stat()
	if fi.Mode().Perm() != 0o600 || fi.Size() != 0 {
		t.Errorf("temp mode %v size %d", fi.Mode(), fi.Size())
	}
	f.Close()
}
