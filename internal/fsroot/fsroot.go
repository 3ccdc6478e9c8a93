// Package fsroot joins every node path under a root directory and writes files
// atomically: a temp file in the target directory, created with the final mode,
// fsync, rename, fsync of the directory. Unchanged content is never rewritten.
package fsroot

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/provision-dev/provision/internal/faultinject"
)

// Root is a directory that stands for "/" of the node: "/" on a live host, a
// mounted image or a t.TempDir() in tests.
type Root struct {
	Dir string
}

// New returns a Root for dir ("" means "/"). dir is made absolute.
func New(dir string) (Root, error) {
	if dir == "" {
		dir = "/"
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Root{}, fmt.Errorf("root %q: %w", dir, err)
	}
	return Root{Dir: abs}, nil
}

// IsHost reports whether the root is the running system's "/".
func (r Root) IsHost() bool { return r.Dir == "/" || r.Dir == "" }

// Path returns the host path of node path p. p is cleaned as an absolute path
// first, so ".." cannot leave the root.
func (r Root) Path(p string) string {
	clean := filepath.Clean("/" + p)
	if r.IsHost() {
		return clean
	}
	return filepath.Join(r.Dir, clean)
}

// Rel turns a host path under the root back into a node path (for messages).
func (r Root) Rel(hostPath string) string {
	if r.IsHost() {
		return hostPath
	}
	rel, err := filepath.Rel(r.Dir, hostPath)
	if err != nil || strings.HasPrefix(rel, "..") {
		return hostPath
	}
	return "/" + rel
}

// ReadFile reads node path p.
func (r Root) ReadFile(p string) ([]byte, error) { return os.ReadFile(r.Path(p)) }

// Exists reports whether node path p exists (without following a final symlink).
func (r Root) Exists(p string) bool {
	_, err := os.Lstat(r.Path(p))
	return err == nil
}

// MkdirAll creates node directory p and its parents with mode.
func (r Root) MkdirAll(p string, mode fs.FileMode) error {
	return os.MkdirAll(r.Path(p), mode)
}

// FileState compares node file p with the wanted content and mode.
type FileState struct {
	Exists      bool
	SameContent bool
	SameMode    bool
}

// UpToDate reports whether nothing needs writing.
func (s FileState) UpToDate() bool { return s.Exists && s.SameContent && s.SameMode }

// Compare reads node file p and compares it with data and mode.
func (r Root) Compare(p string, data []byte, mode fs.FileMode) (FileState, error) {
	hp := r.Path(p)
	fi, err := os.Lstat(hp)
	if errors.Is(err, fs.ErrNotExist) {
		return FileState{}, nil
	}
	if err != nil {
		return FileState{}, err
	}
	if !fi.Mode().IsRegular() {
		return FileState{Exists: true}, nil
	}
	st := FileState{Exists: true, SameMode: fi.Mode().Perm() == mode.Perm()}
	if fi.Size() != int64(len(data)) {
		return st, nil
	}
	old, err := os.ReadFile(hp)
	if err != nil {
		return FileState{}, err
	}
	st.SameContent = bytes.Equal(old, data)
	return st, nil
}

// WriteFile writes data to node path p with mode, atomically, creating parent
// directories (0755). It returns false, and writes nothing, when the file already
// has that content and mode; a mode-only difference is fixed with chmod.
func (r Root) WriteFile(p string, data []byte, mode fs.FileMode) (bool, error) {
	st, err := r.Compare(p, data, mode)
	if err != nil {
		return false, err
	}
	if st.UpToDate() {
		return false, nil
	}
	if st.Exists && st.SameContent {
		return true, os.Chmod(r.Path(p), mode.Perm())
	}
	return true, WriteAtomic(r.Path(p), data, mode)
}

// WriteAtomic writes data to host path path: a temp file in the same directory is
// created with mode (so a secret is never readable by others, even briefly), filled,
// fsynced and renamed over path; the directory is then fsynced.
func WriteAtomic(path string, data []byte, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := CreateTemp(filepath.Dir(path), filepath.Base(path), mode)
	if err != nil {
		return err
	}
	faultinject.Point("fsroot: temp created " + path)
	first := data
	if faultinject.Enabled() && len(data) > 1 { // a kill point mid-write
		first = data[:len(data)/2]
	}
	_, err = f.Write(first)
	if err == nil && len(first) < len(data) {
		faultinject.Point("fsroot: mid-write " + path)
		_, err = f.Write(data[len(first):])
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return Commit(f, path)
}

// CreateTemp creates a new temp file in dir for final name base, with mode set
// before any byte is written (umask does not widen or narrow it).
func CreateTemp(dir, base string, mode fs.FileMode) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	RemoveStaleTemps(dir, base)
	var lastErr error
	for i := 0; i < 100; i++ {
		name := filepath.Join(dir, fmt.Sprintf(".%s.provision-%d-%d.tmp", base, os.Getpid(), randSuffix()))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode.Perm())
		if errors.Is(err, fs.ErrExist) {
			lastErr = err
			continue
		}
		if err != nil {
			return nil, err
		}
		// A kill here leaves the file with the mode open(2) gave it (tests check 0600).
		faultinject.Point("fsroot: temp opened " + name)
		if err := f.Chmod(mode.Perm()); err != nil { // the umask may have narrowed it
			f.Close()
			os.Remove(name)
			return nil, err
		}
		return f, nil
	}
	return nil, fmt.Errorf("create temp file in %s: %w", dir, lastErr)
}

// Commit fsyncs and closes temp file f, renames it to path and fsyncs the
// directory. On error the temp file is removed.
func Commit(f *os.File, path string) error {
	name := f.Name()
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(name)
		return fmt.Errorf("fsync %s (temp file for %s): %w", name, path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("close %s (temp file for %s): %w", name, path, err)
	}
	faultinject.Point("fsroot: before rename " + path)
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return fmt.Errorf("rename to %s: %w", path, err)
	}
	faultinject.Point("fsroot: after rename " + path)
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Symlink makes node path p a symlink to target, returning whether it changed.
func (r Root) Symlink(target, p string) (bool, error) {
	hp := r.Path(p)
	if cur, err := os.Readlink(hp); err == nil && cur == target {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
		return false, err
	}
	RemoveStaleTemps(filepath.Dir(hp), filepath.Base(hp))
	tmp := filepath.Join(filepath.Dir(hp), fmt.Sprintf(".%s.provision-%d-%d.lnk", filepath.Base(hp), os.Getpid(), randSuffix()))
	if err := os.Symlink(target, tmp); err != nil {
		return false, err
	}
	faultinject.Point("fsroot: symlink before rename " + hp)
	if err := os.Rename(tmp, hp); err != nil {
		os.Remove(tmp)
		return false, err
	}
	return true, nil
}

// SymlinkIs reports whether node path p is a symlink to target.
func (r Root) SymlinkIs(target, p string) bool {
	cur, err := os.Readlink(r.Path(p))
	return err == nil && cur == target
}

// RemoveStaleTemps removes the temp files (".BASE.provision-PID-N.tmp" and
// ".lnk") that a killed run left in dir for the target base: their PID is not a
// running process. A crash between create and rename thus leaves nothing behind
// once the file is written again. Errors are ignored: a leftover is only clutter.
func RemoveStaleTemps(dir, base string) {
	prefix := "." + base + ".provision-"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok || !(strings.HasSuffix(rest, ".tmp") || strings.HasSuffix(rest, ".lnk")) {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		_ = os.Remove(filepath.Join(dir, name))
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
