package tasks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
)

// File makes node path Path hold Content with Mode. A Secret file is 0600 from
// creation and its content never appears in a detail, log or error.
type File struct {
	TaskName string
	Path     string
	Mode     fs.FileMode
	Content  []byte
	Secret   bool
}

func (t *File) Name() string { return t.TaskName }

func (t *File) mode() fs.FileMode {
	if t.Secret {
		return 0o600
	}
	if t.Mode == 0 {
		return 0o644
	}
	return t.Mode
}

func (t *File) Run(_ context.Context, e *Env, dry bool) (Outcome, error) {
	st, err := e.Root.Compare(t.Path, t.Content, t.mode())
	if err != nil {
		return Outcome{}, fmt.Errorf("read %s: %w", t.Path, err)
	}
	if st.UpToDate() {
		return unchanged("%s up to date", t.Path)
	}
	what := "write"
	switch {
	case !st.Exists:
		what = "create"
	case st.SameContent:
		what = "chmod"
	}
	if !dry {
		if _, err := e.Root.WriteFile(t.Path, t.Content, t.mode()); err != nil {
			return Outcome{}, fmt.Errorf("write %s: %w", t.Path, err)
		}
	}
	return changed("%s %s (%04o)", what, t.Path, t.mode().Perm())
}

// Symlink makes node path Path a symlink to Target (e.g. a unit masked to /dev/null).
type Symlink struct {
	TaskName string
	Path     string
	Target   string
}

func (t *Symlink) Name() string { return t.TaskName }

func (t *Symlink) Run(_ context.Context, e *Env, dry bool) (Outcome, error) {
	if e.Root.SymlinkIs(t.Target, t.Path) {
		return unchanged("%s -> %s", t.Path, t.Target)
	}
	if !dry {
		if _, err := e.Root.Symlink(t.Target, t.Path); err != nil {
			return Outcome{}, err
		}
	}
	return changed("link %s -> %s", t.Path, t.Target)
}

// EditFile rewrites an existing file through Edit (e.g. comment out swap in
// /etc/fstab), keeping its mode. A missing file is left alone.
type EditFile struct {
	TaskName string
	Path     string
	Edit     func([]byte) []byte
	// What describes the edit, e.g. "comment out swap entries".
	What string
}

func (t *EditFile) Name() string { return t.TaskName }

func (t *EditFile) Run(_ context.Context, e *Env, dry bool) (Outcome, error) {
	old, err := e.Root.ReadFile(t.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return unchanged("%s absent", t.Path)
	}
	if err != nil {
		return Outcome{}, err
	}
	fi, err := e.Root.Stat(t.Path)
	if err != nil {
		return Outcome{}, err
	}
	neu := t.Edit(old)
	if string(neu) == string(old) {
		return unchanged("%s: nothing to %s", t.Path, t.What)
	}
	if !dry {
		if _, err := e.Root.WriteFile(t.Path, neu, fi.Mode().Perm()); err != nil {
			return Outcome{}, err
		}
	}
	return changed("%s: %s", t.Path, t.What)
}

// DisableOthers renames the files in Dir matching one of the Suffixes (and the
// Extra files), except Keep, to NAME.disabled-by-provision: the package manager
// then reads only provision's sources. Nothing is deleted. Dir and the Extra
// files are resolved in the root: a symlinked sources directory is the one its
// link names inside the root, never a directory of the machine outside.
type DisableOthers struct {
	TaskName string
	Dir      string
	Suffixes []string
	Keep     string
	Extra    []string
}

const disabledSuffix = ".disabled-by-provision"

func (t *DisableOthers) Name() string { return t.TaskName }

func (t *DisableOthers) Run(_ context.Context, e *Env, dry bool) (Outcome, error) {
	var victims []string
	names, err := e.Root.ReadDirNames(t.Dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Outcome{}, err
	}
	for _, n := range names {
		if n == t.Keep {
			continue
		}
		if fi, err := e.Root.Lstat(path.Join(t.Dir, n)); err != nil || fi.IsDir() {
			continue
		}
		for _, s := range t.Suffixes {
			if strings.HasSuffix(n, s) {
				victims = append(victims, path.Join(t.Dir, n))
				break
			}
		}
	}
	for _, x := range t.Extra {
		if fi, err := e.Root.Stat(x); err == nil && fi.Mode().IsRegular() {
			victims = append(victims, x)
		}
	}
	sort.Strings(victims)
	if len(victims) == 0 {
		return unchanged("no other sources enabled")
	}
	if !dry {
		for _, v := range victims {
			if err := e.Root.Rename(v, v+disabledSuffix); err != nil {
				return Outcome{}, err
			}
		}
	}
	return changed("disable %s", strings.Join(victims, ", "))
}

// RequireFile fails unless node path Path exists; Hint says how to get it.
type RequireFile struct {
	TaskName string
	Path     string
	Hint     string
}

func (t *RequireFile) Name() string { return t.TaskName }

func (t *RequireFile) Run(_ context.Context, e *Env, dry bool) (Outcome, error) {
	if e.Root.Exists(t.Path) {
		return unchanged("%s present", t.Path)
	}
	if dry {
		return skipped("%s not present yet: %s", t.Path, t.Hint)
	}
	return Outcome{}, fmt.Errorf("%s is missing: %s", t.Path, t.Hint)
}

// Absent removes node file Path if it exists: a file provision wrote for an
// earlier config that the current one no longer asks for (e.g. a drop-in).
type Absent struct {
	TaskName string
	Path     string
}

func (t *Absent) Name() string { return t.TaskName }

func (t *Absent) Run(_ context.Context, e *Env, dry bool) (Outcome, error) {
	fi, err := e.Root.Lstat(t.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return unchanged("%s absent", t.Path)
	case err != nil:
		return Outcome{}, fmt.Errorf("stat %s: %w", t.Path, err)
	case fi.IsDir():
		return Outcome{}, fmt.Errorf("%s is a directory, not the file provision wrote", t.Path)
	}
	if !dry {
		if err := e.Root.Remove(t.Path); err != nil {
			return Outcome{}, err
		}
	}
	return changed("remove %s", t.Path)
}

// PruneFiles removes the files Dir/*/File that begin with Marker (provision
// wrote them) and whose directory under Dir is not in Keep: what an earlier
// config asked for and the current one no longer does. Files provision did not
// write, and other files in those directories, are left alone.
type PruneFiles struct {
	TaskName string
	Dir      string
	File     string
	Marker   []byte
	Keep     []string
}

func (t *PruneFiles) Name() string { return t.TaskName }

func (t *PruneFiles) Run(_ context.Context, e *Env, dry bool) (Outcome, error) {
	names, err := e.Root.ReadDirNames(t.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return unchanged("%s absent", t.Dir)
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("read %s: %w", t.Dir, err)
	}
	var victims []string
	for _, n := range names {
		if slices.Contains(t.Keep, n) {
			continue
		}
		p := path.Join(t.Dir, n, t.File)
		if fi, err := e.Root.Lstat(p); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if ok, err := t.written(e, p); err != nil {
			return Outcome{}, err
		} else if ok {
			victims = append(victims, p)
		}
	}
	sort.Strings(victims)
	if len(victims) == 0 {
		return unchanged("no stale %s in %s", t.File, t.Dir)
	}
	if !dry {
		for _, v := range victims {
			if err := e.Root.Remove(v); err != nil {
				return Outcome{}, err
			}
		}
	}
	return changed("remove %s", strings.Join(victims, ", "))
}

// written reports whether node file p begins with Marker.
func (t *PruneFiles) written(e *Env, p string) (bool, error) {
	f, err := e.Root.Open(p)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	head := make([]byte, len(t.Marker))
	if _, err := io.ReadFull(f, head); err != nil {
		return false, nil // shorter than the marker: not provision's
	}
	return bytes.Equal(head, t.Marker), nil
}
