// Package fsroot is every file operation provision makes on a node, confined to
// a root directory that stands for the node's "/": a live host's "/", a mounted
// image, or a t.TempDir() in tests. Files are written atomically: a temp file in
// the target directory, created with the final mode, fsync, rename, fsync of the
// directory. Unchanged content is never rewritten.
//
// # Confinement
//
// A root is untrusted: an image being built may hold symlinks such as
// /etc -> /home/attacker or /var/lib/provision -> ../../../../tmp. Every node
// path is resolved inside the root, with every symlink (absolute or relative, at
// any component) interpreted as if the root were "/", so no path can reach the
// machine outside it; this is what the kernel's openat2(RESOLVE_IN_ROOT) does.
//
// The resolution is github.com/cyphar/filepath-securejoin's pathrs-lite
// (OpenatInRoot, MkdirAllHandle, Reopen), chosen over a hand-written openat2
// wrapper because it is the same code runc, containerd and Kubernetes use for
// this job, written by openat2's author: it uses openat2(RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS) where the kernel has it (5.6+) and, where it does not,
// a component-by-component O_PATH walk that re-checks each step through a
// hardened procfs handle, so the fallback is as safe as the syscall. A
// hand-rolled fallback would have to redo exactly that. (Go's os.Root was
// rejected: it refuses absolute symlinks instead of resolving them in the root,
// and real images are full of them.)
//
// The pattern of every operation: the directory part of the path is resolved
// (or created) in the root to an O_PATH handle, and the last component is then
// acted on relative to that handle with *at syscalls that never follow it
// (openat O_NOFOLLOW, renameat, unlinkat, symlinkat, fstatat
// AT_SYMLINK_NOFOLLOW). A last component that is a symlink is replaced (write,
// rename, remove act on the link itself) or refused (chmod, lock files), never
// followed out. Reads (ReadFile, Open, Stat, ReadDir) follow symlinks, in the
// root. A path that cannot be resolved inside the root fails with an error
// naming the node path.
//
// Path only joins strings: it is for messages, tests and the argv of external
// commands, never for opening a file.
//
// # The boundary
//
// Commands provision runs for a root are outside this code and are the
// documented boundary (README, "The --root boundary"). chroot(8) (apt-get,
// dpkg, dpkg-query) is confined by the kernel: the process sees the root as
// "/". systemctl --root and dnf/yum --installroot (rpm --root) work on the root
// from the host side and would follow a symlinked directory out of it, so
// provision refuses to run them when one of the directories they write is a
// symlink (RealDirs), naming it.
package fsroot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/internal/faultinject"
)

// Root is a directory that stands for "/" of the node.
type Root struct {
	Dir string
}

// Host is the running system's "/": host paths given on the command line
// (a bundle's output file) go through the same code.
var Host = Root{Dir: "/"}

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

func (r Root) dir() string {
	if r.Dir == "" {
		return "/"
	}
	return r.Dir
}

// Path returns the lexical host path of node path p ("..", cleaned, cannot leave
// the root, but symlinks are not resolved): for messages, tests and the argv of
// external commands only. Never open it: use the methods of Root.
func (r Root) Path(p string) string {
	c := clean(p)
	if r.IsHost() {
		return c
	}
	return filepath.Join(r.Dir, c)
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

func clean(p string) string { return path.Clean("/" + p) }

// pathError names the node path (and the root when it is not "/").
func (r Root) pathError(op, p string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		err = le.Err
	}
	name := clean(p)
	if !r.IsHost() {
		name += " (in root " + r.Dir + ")"
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

func (r Root) openRoot() (*os.File, error) {
	f, err := os.OpenFile(r.dir(), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open root: %w", err)
	}
	return f, nil
}

// handle resolves node path p in the root, every symlink included, to an O_PATH handle.
func (r Root) handle(op, p string) (*os.File, error) {
	rf, err := r.openRoot()
	if err != nil {
		return nil, r.pathError(op, p, err)
	}
	defer rf.Close()
	h, err := pathrs.OpenatInRoot(rf, clean(p))
	if err != nil {
		return nil, r.pathError(op, p, err)
	}
	return h, nil
}

// parent resolves the directory of node path p in the root (creating it and
// its parents, 0755, when create is set) and returns an O_PATH handle on it and
// p's last component, which is not resolved.
func (r Root) parent(op, p string, create bool) (*os.File, string, error) {
	c := clean(p)
	if c == "/" {
		return nil, "", r.pathError(op, p, errors.New("is the root directory"))
	}
	dir, base := path.Split(c)
	rf, err := r.openRoot()
	if err != nil {
		return nil, "", r.pathError(op, p, err)
	}
	defer rf.Close()
	var h *os.File
	if create {
		h, err = pathrs.MkdirAllHandle(rf, path.Clean(dir), 0o755)
	} else {
		h, err = pathrs.OpenatInRoot(rf, path.Clean(dir))
	}
	if err != nil {
		return nil, "", r.pathError(op, p, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		h.Close()
		return nil, "", r.pathError(op, p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		h.Close()
		return nil, "", r.pathError(op, p, syscall.ENOTDIR)
	}
	return h, base, nil
}

func fd(f *os.File) int { return int(f.Fd()) }

// Open opens regular file p for reading (symlinks resolved in the root).
func (r Root) Open(p string) (*os.File, error) {
	h, err := r.handle("open", p)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	fi, err := h.Stat()
	if err != nil {
		return nil, r.pathError("open", p, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, r.pathError("open", p, fmt.Errorf("not a regular file (%s)", fi.Mode().Type()))
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return nil, r.pathError("open", p, err)
	}
	return f, nil
}

// ReadFile reads node file p.
func (r Root) ReadFile(p string) ([]byte, error) {
	f, err := r.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, r.pathError("read", p, err)
	}
	return data, nil
}

// Stat returns the file info of node path p, symlinks resolved in the root.
func (r Root) Stat(p string) (fs.FileInfo, error) {
	h, err := r.handle("stat", p)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	fi, err := h.Stat()
	if err != nil {
		return nil, r.pathError("stat", p, err)
	}
	return fi, nil
}

// Lstat returns the file info of node path p without following its last component.
func (r Root) Lstat(p string) (fs.FileInfo, error) {
	d, base, err := r.parent("lstat", p, false)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	n, err := unix.Openat(fd(d), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, r.pathError("lstat", p, err)
	}
	f := os.NewFile(uintptr(n), r.Path(p))
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, r.pathError("lstat", p, err)
	}
	return fi, nil
}

// Exists reports whether node path p exists (without following a final symlink).
func (r Root) Exists(p string) bool {
	_, err := r.Lstat(p)
	return err == nil
}

// Readlink returns the target of symlink p.
func (r Root) Readlink(p string) (string, error) {
	d, base, err := r.parent("readlink", p, false)
	if err != nil {
		return "", err
	}
	defer d.Close()
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(fd(d), base, buf)
	if err != nil {
		return "", r.pathError("readlink", p, err)
	}
	return string(buf[:n]), nil
}

// MkdirAll creates node directory p and its parents with mode.
func (r Root) MkdirAll(p string, mode fs.FileMode) error {
	rf, err := r.openRoot()
	if err != nil {
		return r.pathError("mkdir", p, err)
	}
	defer rf.Close()
	h, err := pathrs.MkdirAllHandle(rf, clean(p), mode.Perm())
	if err != nil {
		return r.pathError("mkdir", p, err)
	}
	return h.Close()
}

// openDir opens the directory at O_PATH handle h for reading.
func openDir(h *os.File, name string) (*os.File, error) {
	n, err := unix.Openat(fd(h), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(n), name), nil
}

// ReadDirNames returns the names in node directory p (symlinks resolved in the root).
func (r Root) ReadDirNames(p string) ([]string, error) {
	h, err := r.handle("readdir", p)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	d, err := openDir(h, r.Path(p))
	if err != nil {
		return nil, r.pathError("readdir", p, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, r.pathError("readdir", p, err)
	}
	return names, nil
}

// FileState compares node file p with the wanted content and mode.
type FileState struct {
	Exists      bool
	SameContent bool
	SameMode    bool
}

// UpToDate reports whether nothing needs writing.
func (s FileState) UpToDate() bool { return s.Exists && s.SameContent && s.SameMode }

// Compare reads node file p (not following a final symlink: a symlink is "not
// the wanted file") and compares it with data and mode.
func (r Root) Compare(p string, data []byte, mode fs.FileMode) (FileState, error) {
	fi, err := r.Lstat(p)
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
	f, err := r.OpenFile(p, os.O_RDONLY, 0)
	if err != nil {
		return FileState{}, err
	}
	defer f.Close()
	old, err := io.ReadAll(f)
	if err != nil {
		return FileState{}, r.pathError("read", p, err)
	}
	st.SameContent = bytes.Equal(old, data)
	return st, nil
}

// OpenFile opens node path p with flag (os.O_*) relative to its directory,
// resolved in the root; the last component is never followed (a symlink there
// fails with "too many levels of symbolic links"). With os.O_CREATE the
// directory is created (0755) when missing.
func (r Root) OpenFile(p string, flag int, mode fs.FileMode) (*os.File, error) {
	d, base, err := r.parent("open", p, flag&os.O_CREATE != 0)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	n, err := unix.Openat(fd(d), base, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, uint32(mode.Perm()))
	if err != nil {
		return nil, r.pathError("open", p, err)
	}
	f := os.NewFile(uintptr(n), r.Path(p))
	if err := unix.SetNonblock(n, false); err != nil {
		f.Close()
		return nil, r.pathError("open", p, err)
	}
	return f, nil
}

// Chmod sets the mode of node path p (a final symlink is refused, not followed).
func (r Root) Chmod(p string, mode fs.FileMode) error {
	f, err := r.OpenFile(p, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Chmod(mode.Perm()); err != nil {
		return r.pathError("chmod", p, err)
	}
	return nil
}

// WriteFile writes data to node path p with mode, atomically, creating parent
// directories (0755). It returns false, and writes nothing, when the file already
// has that content and mode; a mode-only difference is fixed with chmod. A
// symlink at p is replaced by the file.
func (r Root) WriteFile(p string, data []byte, mode fs.FileMode) (bool, error) {
	st, err := r.Compare(p, data, mode)
	if err != nil {
		return false, err
	}
	if st.UpToDate() {
		return false, nil
	}
	if st.Exists && st.SameContent {
		return true, r.Chmod(p, mode)
	}
	return true, r.WriteAtomic(p, data, mode)
}

// WriteAtomic writes data to node path p: a temp file in the same directory is
// created with mode (so a secret is never readable by others, even briefly),
// filled, fsynced and renamed over p; the directory is then fsynced.
func (r Root) WriteAtomic(p string, data []byte, mode fs.FileMode) error {
	t, err := r.CreateTemp(p, mode)
	if err != nil {
		return err
	}
	faultinject.Point("fsroot: temp created " + clean(p))
	first := data
	if faultinject.Enabled() && len(data) > 1 { // a kill point mid-write
		first = data[:len(data)/2]
	}
	_, err = t.Write(first)
	if err == nil && len(first) < len(data) {
		faultinject.Point("fsroot: mid-write " + clean(p))
		_, err = t.Write(data[len(first):])
	}
	if err != nil {
		t.Abort()
		return r.pathError("write", p, err)
	}
	return t.Commit()
}

// Temp is a temp file beside its target, renamed over the target by Commit.
type Temp struct {
	*os.File
	root Root
	dir  *os.File // O_PATH handle on the target's directory
	name string   // the temp file's name in dir
	base string   // the target's name in dir
	node string   // the target's node path
	done bool
}

// CreateTemp creates a new temp file beside node path p (its directory created,
// 0755, when missing), with mode set before any byte is written (umask does not
// widen or narrow it). Stale temps of p left by dead processes are removed.
func (r Root) CreateTemp(p string, mode fs.FileMode) (*Temp, error) {
	d, base, err := r.parent("create", p, true)
	if err != nil {
		return nil, err
	}
	removeStaleTemps(d, base)
	var lastErr error
	for i := 0; i < 100; i++ {
		name := fmt.Sprintf(".%s.provision-%d-%d.tmp", base, os.Getpid(), randSuffix())
		n, err := unix.Openat(fd(d), name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(mode.Perm()))
		if errors.Is(err, unix.EEXIST) {
			lastErr = err
			continue
		}
		if err != nil {
			d.Close()
			return nil, r.pathError("create temp file for", p, err)
		}
		t := &Temp{File: os.NewFile(uintptr(n), r.Path(path.Join(path.Dir(clean(p)), name))), root: r, dir: d, name: name, base: base, node: clean(p)}
		// A kill here leaves the file with the mode open(2) gave it (tests check 0600).
		faultinject.Point("fsroot: temp opened " + t.File.Name())
		if err := t.File.Chmod(mode.Perm()); err != nil { // the umask may have narrowed it
			t.Abort()
			return nil, r.pathError("chmod temp file for", p, err)
		}
		return t, nil
	}
	d.Close()
	return nil, r.pathError("create temp file for", p, lastErr)
}

// Abort closes and removes the temp file (after Commit it does nothing).
func (t *Temp) Abort() {
	if t.done {
		return
	}
	t.done = true
	t.File.Close()
	_ = unix.Unlinkat(fd(t.dir), t.name, 0)
	t.dir.Close()
}

// Commit fsyncs and closes the temp file, renames it over the target and fsyncs
// the directory. On error the temp file is removed.
func (t *Temp) Commit() error {
	if t.done {
		return t.root.pathError("commit", t.node, errors.New("temp file already committed or aborted"))
	}
	if err := t.File.Sync(); err != nil {
		t.Abort()
		return t.root.pathError("fsync temp file for", t.node, err)
	}
	if err := t.File.Close(); err != nil {
		t.Abort()
		return t.root.pathError("close temp file for", t.node, err)
	}
	faultinject.Point("fsroot: before rename " + t.node)
	if err := unix.Renameat(fd(t.dir), t.name, fd(t.dir), t.base); err != nil {
		t.Abort()
		return t.root.pathError("rename", t.node, err)
	}
	t.done = true
	faultinject.Point("fsroot: after rename " + t.node)
	if d, err := openDir(t.dir, ""); err == nil {
		_ = d.Sync()
		d.Close()
	}
	t.dir.Close()
	return nil
}

// Symlink makes node path p a symlink to target, returning whether it changed.
// The target is stored as given (an absolute target is fine: it is a link made
// inside the root, for the node); only p's directory is resolved in the root.
func (r Root) Symlink(target, p string) (bool, error) {
	d, base, err := r.parent("symlink", p, true)
	if err != nil {
		return false, err
	}
	defer d.Close()
	buf := make([]byte, 4096)
	if n, err := unix.Readlinkat(fd(d), base, buf); err == nil && string(buf[:n]) == target {
		return false, nil
	}
	removeStaleTemps(d, base)
	tmp := fmt.Sprintf(".%s.provision-%d-%d.lnk", base, os.Getpid(), randSuffix())
	if err := unix.Symlinkat(target, fd(d), tmp); err != nil {
		return false, r.pathError("symlink", p, err)
	}
	faultinject.Point("fsroot: symlink before rename " + clean(p))
	if err := unix.Renameat(fd(d), tmp, fd(d), base); err != nil {
		_ = unix.Unlinkat(fd(d), tmp, 0)
		return false, r.pathError("symlink", p, err)
	}
	return true, nil
}

// SymlinkIs reports whether node path p is a symlink to target.
func (r Root) SymlinkIs(target, p string) bool {
	cur, err := r.Readlink(p)
	return err == nil && cur == target
}

// Rename renames node path from to node path to (each resolved in the root up
// to its last component, which is not followed: a symlink is renamed itself).
func (r Root) Rename(from, to string) error {
	fd1, b1, err := r.parent("rename", from, false)
	if err != nil {
		return err
	}
	defer fd1.Close()
	fd2, b2, err := r.parent("rename", to, false)
	if err != nil {
		return err
	}
	defer fd2.Close()
	if err := unix.Renameat(fd(fd1), b1, fd(fd2), b2); err != nil {
		return r.pathError("rename", from+" to "+clean(to), err)
	}
	return nil
}

// Remove removes node file (or empty directory) p; a symlink is removed itself.
func (r Root) Remove(p string) error {
	d, base, err := r.parent("remove", p, false)
	if err != nil {
		return err
	}
	defer d.Close()
	err = unix.Unlinkat(fd(d), base, 0)
	if errors.Is(err, unix.EISDIR) {
		err = unix.Unlinkat(fd(d), base, unix.AT_REMOVEDIR)
	}
	if err != nil {
		return r.pathError("remove", p, err)
	}
	return nil
}

// RemoveAll removes node path p and everything under it, never following a
// symlink (a symlink in the tree is removed, not what it points at). A missing
// p is not an error.
func (r Root) RemoveAll(p string) error {
	d, base, err := r.parent("remove", p, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	if err := removeAllAt(fd(d), base); err != nil {
		return r.pathError("remove", p, err)
	}
	return nil
}

func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	n, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	sub := os.NewFile(uintptr(n), name)
	names, err := sub.Readdirnames(-1)
	if err != nil {
		sub.Close()
		return err
	}
	for _, c := range names {
		if err := removeAllAt(n, c); err != nil {
			sub.Close()
			return err
		}
	}
	sub.Close()
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// MkdirTemp creates a new directory beside node path p named ".BASE.stage-N"
// with mode 0700 and returns its node path.
func (r Root) MkdirTemp(p string) (string, error) {
	d, base, err := r.parent("mkdir", p, true)
	if err != nil {
		return "", err
	}
	defer d.Close()
	for i := 0; i < 100; i++ {
		name := fmt.Sprintf(".%s.stage-%d", base, randSuffix())
		err := unix.Mkdirat(fd(d), name, 0o700)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return "", r.pathError("mkdir", path.Join(path.Dir(clean(p)), name), err)
		}
		return path.Join(path.Dir(clean(p)), name), nil
	}
	return "", r.pathError("mkdir", p, unix.EEXIST)
}

// SyncTree fsyncs every regular file and directory under node directory p
// (symlinks are not followed).
func (r Root) SyncTree(p string) error {
	h, err := r.handle("sync", p)
	if err != nil {
		return err
	}
	defer h.Close()
	d, err := openDir(h, r.Path(p))
	if err != nil {
		return r.pathError("sync", p, err)
	}
	if err := syncAt(d); err != nil {
		return r.pathError("sync", p, err)
	}
	return nil
}

func syncAt(d *os.File) error {
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd(d), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			n, err := unix.Openat(fd(d), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			if err := syncAt(os.NewFile(uintptr(n), name)); err != nil {
				return err
			}
		case unix.S_IFREG:
			n, err := unix.Openat(fd(d), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			f := os.NewFile(uintptr(n), name)
			err = f.Sync()
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return d.Sync()
}

// RemoveStaleTemps removes, in node directory dir, the temp files that a killed
// run left for target base (see removeStaleTemps).
func (r Root) RemoveStaleTemps(dir, base string) {
	h, err := r.handle("readdir", dir)
	if err != nil {
		return
	}
	defer h.Close()
	removeStaleTemps(h, base)
}

// removeStaleTemps removes the temp files (".BASE.provision-PID-N.tmp" and
// ".lnk") that a killed run left in directory d for the target base: their PID
// is not a running process. A crash between create and rename thus leaves
// nothing behind once the file is written again. Errors are ignored: a leftover
// is only clutter.
func removeStaleTemps(d *os.File, base string) {
	prefix := "." + base + ".provision-"
	dir, err := openDir(d, "")
	if err != nil {
		return
	}
	names, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil {
		return
	}
	for _, name := range names {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok || !(strings.HasSuffix(rest, ".tmp") || strings.HasSuffix(rest, ".lnk")) {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		_ = unix.Unlinkat(fd(d), name, 0)
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// RealDirs fails, naming the path, when a component of one of the node paths
// (the path itself included) is a symlink. It guards the commands that work on
// a root from the host side (systemctl --root, dnf --installroot): they would
// follow such a link on the host, so provision refuses to run them through
// one. Missing components are fine (the command creates real directories).
func (r Root) RealDirs(paths ...string) error {
	for _, p := range paths {
		cur := "/"
		for _, c := range strings.Split(strings.TrimPrefix(clean(p), "/"), "/") {
			if c == "" {
				continue
			}
			cur = path.Join(cur, c)
			fi, err := r.Lstat(cur)
			if errors.Is(err, fs.ErrNotExist) {
				break
			}
			if err != nil {
				return err
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				return r.pathError("check", cur, errors.New("is a symlink: refusing to let a command that works on the root from the host side follow it"))
			}
		}
	}
	return nil
}
