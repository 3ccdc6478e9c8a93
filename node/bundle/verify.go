package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/provision-dev/provision/internal/fsroot"
	"github.com/provision-dev/provision/internal/tarsafe"
)

// RefusedError is a bundle that failed verification. It lists every problem
// found; nothing of the bundle was extracted.
type RefusedError struct {
	Bundle   string
	Problems []string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("bundle %s refused as a whole (nothing extracted):\n  - %s", e.Bundle, strings.Join(e.Problems, "\n  - "))
}

// Options say what a bundle is checked against beyond its own manifest.
type Options struct {
	// Expect, if set, is what the node requires (version, profile, arch, pinned sha256s).
	Expect *Expect
	// SHA256, if set, is the pinned sha256 of the whole bundle file.
	SHA256 string
}

// ReadManifest reads the manifest, the bundle's first member, without reading the rest.
func ReadManifest(file string) (Manifest, []byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return Manifest{}, nil, fmt.Errorf("bundle: %w", err)
	}
	defer f.Close()
	return readManifest(tar.NewReader(f), file)
}

func readManifest(tr *tar.Reader, file string) (Manifest, []byte, error) {
	h, err := tr.Next()
	if err != nil {
		return Manifest{}, nil, &RefusedError{Bundle: file, Problems: []string{fmt.Sprintf("not a bundle: reading the first member: %v", err)}}
	}
	if h.Name != ManifestName || h.Typeflag != tar.TypeReg || h.Size > maxManifest {
		return Manifest{}, nil, &RefusedError{Bundle: file, Problems: []string{fmt.Sprintf("not a bundle: the first member must be a regular file %s of at most %d bytes, got %q (%d bytes)", ManifestName, maxManifest, h.Name, h.Size)}}
	}
	raw, err := io.ReadAll(tr)
	if err != nil {
		return Manifest{}, nil, &RefusedError{Bundle: file, Problems: []string{fmt.Sprintf("reading %s: %v", ManifestName, err)}}
	}
	m, err := ParseManifest(raw)
	if err != nil {
		return Manifest{}, nil, &RefusedError{Bundle: file, Problems: problems(err)}
	}
	return m, raw, nil
}

// problems splits a multi-line validation error into one problem per line.
func problems(err error) []string { return strings.Split(err.Error(), "\n") }

// Verify reads the whole bundle and checks every member against the manifest
// (and the manifest against opts); it writes nothing. With opts.SHA256 the
// whole file's hash is checked first.
func Verify(file string, opts Options) (Manifest, error) {
	if err := checkWhole(file, opts); err != nil {
		return Manifest{}, err
	}
	m, _, err := walk(file, opts, fsroot.Root{}, "")
	return m, err
}

// checkWhole checks the whole bundle file against opts.SHA256 (if set) before
// anything of it is parsed or extracted.
func checkWhole(file string, opts Options) error {
	if opts.SHA256 == "" {
		return nil
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return &RefusedError{Bundle: file, Problems: []string{fmt.Sprintf("reading the bundle: %v", err)}}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != opts.SHA256 {
		return &RefusedError{Bundle: file, Problems: []string{fmt.Sprintf("bundle file: sha256 expected %s, actual %s (checked before reading any member)", opts.SHA256, got)}}
	}
	return nil
}

// Install verifies the bundle and makes dir (a node path, resolved in root)
// hold its manifest and artifacts. With opts.SHA256 the whole file's hash is
// checked first, before any member is read. Members are written to a staging
// directory beside dir while they are hashed; only a bundle that verifies as a
// whole replaces dir, otherwise the staging directory is removed and dir is
// untouched. Every path is resolved in the root and removals never follow a
// symlink (a symlink at dir is replaced, not followed). When dir already holds
// this bundle (same manifest, files of the listed sizes) the bundle is still
// verified but nothing is written, and changed is false.
func Install(file string, root fsroot.Root, dir string, opts Options) (m Manifest, changed bool, err error) {
	if err := checkWhole(file, opts); err != nil {
		return m, false, err
	}
	m, raw, err := ReadManifest(file)
	if err != nil {
		return m, false, err
	}
	if installed(root, dir, raw, m) {
		m, _, err = walk(file, opts, root, "")
		return m, false, err
	}
	parent, base := path.Split(path.Clean("/" + dir))
	if err := root.MkdirAll(parent, 0o755); err != nil {
		return m, false, err
	}
	// A run killed mid-install leaves its staging directory: remove it first.
	names, err := root.ReadDirNames(parent)
	if err != nil {
		return m, false, err
	}
	for _, n := range names {
		if strings.HasPrefix(n, "."+base+".stage-") {
			if err := root.RemoveAll(path.Join(parent, n)); err != nil {
				return m, false, err
			}
		}
	}
	stage, err := root.MkdirTemp(path.Join(parent, base))
	if err != nil {
		return m, false, err
	}
	defer root.RemoveAll(stage) // after a successful swap it no longer exists
	m, raw2, err := walk(file, opts, root, stage)
	if err != nil {
		return m, false, err
	}
	if !bytes.Equal(raw, raw2) {
		return m, false, &RefusedError{Bundle: file, Problems: []string{"the bundle changed while it was read"}}
	}
	if err := root.WriteAtomic(path.Join(stage, ManifestName), raw, 0o644); err != nil {
		return m, false, err
	}
	if err := root.SyncTree(stage); err != nil {
		return m, false, err
	}
	if err := root.Chmod(stage, 0o755); err != nil {
		return m, false, err
	}
	old := ""
	if root.Exists(dir) {
		old = stage + ".old"
		if err := root.Rename(dir, old); err != nil {
			return m, false, err
		}
	}
	if err := root.Rename(stage, dir); err != nil {
		if old != "" {
			_ = root.Rename(old, dir)
		}
		return m, false, err
	}
	if old != "" {
		if err := root.RemoveAll(old); err != nil {
			return m, true, err
		}
	}
	return m, true, nil
}

// installed reports whether dir holds the bundle of manifest raw: same manifest
// bytes and every artifact present with its size. (The hashes are checked again
// when the artifacts are copied from dir: every consumer pins them.)
func installed(root fsroot.Root, dir string, raw []byte, m Manifest) bool {
	have, err := root.ReadFile(path.Join(dir, ManifestName))
	if err != nil || !bytes.Equal(have, raw) {
		return false
	}
	for _, e := range m.Artifacts {
		fi, err := root.Lstat(path.Join(dir, e.File))
		if err != nil || !fi.Mode().IsRegular() || fi.Size() != e.Size {
			return false
		}
	}
	return true
}

// walk reads the bundle once: the manifest, checked against opts, then every
// member, hashed and, when stage is set, written under it. Every problem is
// collected; any problem refuses the bundle.
func walk(file string, opts Options, root fsroot.Root, stage string) (Manifest, []byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return Manifest{}, nil, fmt.Errorf("bundle: %w", err)
	}
	defer f.Close()
	whole := sha256.New()
	tr := tar.NewReader(io.TeeReader(f, whole))
	m, raw, err := readManifest(tr, file)
	if err != nil {
		return m, nil, err
	}
	refuse := &RefusedError{Bundle: file}
	if opts.Expect != nil {
		if err := m.Check(*opts.Expect); err != nil {
			refuse.Problems = append(refuse.Problems, problems(err)...)
			return m, raw, refuse // a bundle for another node is not read further
		}
	}
	byFile := map[string]Entry{}
	for _, e := range m.Artifacts {
		byFile[e.File] = e
	}
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			refuse.Problems = append(refuse.Problems, fmt.Sprintf("reading the bundle: %v", err))
			return m, raw, refuse
		}
		e, ok := byFile[h.Name]
		switch {
		case !ok:
			refuse.Problems = append(refuse.Problems, fmt.Sprintf("member %q is not in the manifest", h.Name))
			continue
		case seen[h.Name]:
			refuse.Problems = append(refuse.Problems, fmt.Sprintf("member %q appears twice", h.Name))
			continue
		case tarsafe.IsSparse(h):
			refuse.Problems = append(refuse.Problems, fmt.Sprintf("member %q is a sparse file: refused before writing", h.Name))
			continue
		case h.Typeflag != tar.TypeReg:
			refuse.Problems = append(refuse.Problems, fmt.Sprintf("member %q is not a regular file", h.Name))
			continue
		}
		seen[h.Name] = true
		if h.Size != e.Size {
			refuse.Problems = append(refuse.Problems, fmt.Sprintf("artifact %s (%s): size expected %d, actual %d: refused before writing", e.Name, e.File, e.Size, h.Size))
			continue
		}
		sum, err := copyMember(io.LimitReader(tr, e.Size), e, root, stage)
		if err != nil {
			refuse.Problems = append(refuse.Problems, fmt.Sprintf("artifact %s (%s): %v", e.Name, e.File, err))
			continue
		}
		if sum != e.SHA256 {
			refuse.Problems = append(refuse.Problems, fmt.Sprintf("artifact %s (%s): sha256 expected %s, actual %s", e.Name, e.File, e.SHA256, sum))
		}
	}
	for _, e := range m.Artifacts {
		if !seen[e.File] {
			refuse.Problems = append(refuse.Problems, fmt.Sprintf("artifact %s (%s) is missing", e.Name, e.File))
		}
	}
	if opts.SHA256 != "" {
		if _, err := io.Copy(io.Discard, io.TeeReader(f, whole)); err != nil {
			refuse.Problems = append(refuse.Problems, fmt.Sprintf("reading the bundle: %v", err))
		} else if got := hex.EncodeToString(whole.Sum(nil)); got != opts.SHA256 {
			refuse.Problems = append(refuse.Problems, fmt.Sprintf("bundle file: sha256 expected %s, actual %s", opts.SHA256, got))
		}
	}
	if len(refuse.Problems) > 0 {
		return m, raw, refuse
	}
	return m, raw, nil
}

// copyMember hashes the current member and, when stage (a node path in root)
// is set, writes it there.
func copyMember(r io.Reader, e Entry, root fsroot.Root, stage string) (string, error) {
	h := sha256.New()
	if stage == "" {
		if _, err := io.Copy(h, r); err != nil {
			return "", err
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	dst := path.Join(stage, path.Clean(e.File)) // File is validated: artifacts/NAME
	out, err := root.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(io.MultiWriter(out, h), r); err != nil {
		out.Close()
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// IsInstalled reports whether node directory dir of root already holds the
// bundle file (same manifest, artifacts of the listed sizes), without reading
// the artifacts.
func IsInstalled(file string, root fsroot.Root, dir string) bool {
	m, raw, err := ReadManifest(file)
	return err == nil && installed(root, dir, raw, m)
}
