package tasks

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	// Inflates about 25% faster than compress/gzip: extraction runs beside the
	// package install on small nodes, so its CPU time slows the install.
	"github.com/klauspost/compress/gzip"

	"github.com/provision-dev/provision/internal/background"
	"github.com/provision-dev/provision/internal/download"
	"github.com/provision-dev/provision/internal/fsroot"
	"github.com/provision-dev/provision/internal/tarsafe"
)

// Artifact is one file to download to a node path.
type Artifact struct {
	URL    string
	SHA256 string // empty: from the checksum file at ChecksumURL
	// ChecksumURL is the checksum file of an unpinned download under the
	// artifact's convention (internal/artifacts); empty means URL+".sha256".
	ChecksumURL string
	Path        string
	Mode        fs.FileMode
	// Size, when known (a bundle's manifest), bounds the download.
	Size int64
	// InRoot makes a file:// URL a node path (a bundle installed in the root).
	InRoot bool
}

func (a Artifact) request(root fsroot.Root) download.Request {
	return download.Request{URL: a.URL, SHA256: a.SHA256, ChecksumURL: a.ChecksumURL, Root: root, Dest: a.Path, Mode: a.Mode, MaxBytes: a.Size, SourceInRoot: a.InRoot}
}

// Download fetches independent artifacts in parallel. A target that already has
// the expected hash is not fetched again.
type Download struct {
	TaskName  string
	Artifacts []Artifact
}

func (t *Download) Name() string { return t.TaskName }

func (t *Download) Run(ctx context.Context, e *Env, dry bool) (Outcome, error) {
	if e.Downloader == nil {
		e.Downloader = &download.Downloader{Log: e.Log}
	}
	if dry {
		var would []string
		for _, a := range t.Artifacts {
			if a.SHA256 == "" {
				if !e.Root.Exists(a.Path) {
					would = append(would, a.Path)
					continue
				}
				sum, err := e.Downloader.Checksum(ctx, a.request(e.Root))
				if err != nil {
					return Outcome{}, err
				}
				a.SHA256 = sum
			}
			if have, err := download.RootFileSHA256(e.Root, a.Path); err != nil || have != a.SHA256 {
				would = append(would, a.Path)
				continue
			}
			e.SetSum(a.Path, a.SHA256)
		}
		if len(would) == 0 {
			return unchanged("%d artifacts present with the expected sha256", len(t.Artifacts))
		}
		return changed("download %s", strings.Join(would, ", "))
	}
	reqs := make([]download.Request, len(t.Artifacts))
	for i, a := range t.Artifacts {
		reqs[i] = a.request(e.Root)
	}
	res, err := e.Downloader.FetchAll(ctx, reqs)
	if err != nil {
		return Outcome{}, err
	}
	var got []string
	for i, r := range res {
		e.SetSum(t.Artifacts[i].Path, r.SHA256)
		if r.Downloaded {
			got = append(got, t.Artifacts[i].Path)
		}
	}
	if len(got) == 0 {
		return unchanged("%d artifacts present with the expected sha256", len(t.Artifacts))
	}
	return changed("downloaded %s", strings.Join(got, ", "))
}

// Extract unpacks the regular files of a .tar.gz (verified by a Download task of
// the same run) into Dest, in Go, resolved in the root (a symlink at Dest or
// under it never leads out). Files are written with their permission bits minus
// setuid, setgid, sticky and world-write; sparse members and members over
// MaxMember are refused before a byte is written. StripPrefix is removed from member names; with
// Only set, other members are ignored. A stamp under /var/lib/provision/extracted
// records the archive's hash and the files written, so a re-run with the same
// archive and intact files changes nothing.
type Extract struct {
	TaskName    string
	Archive     string
	Dest        string
	StripPrefix string
	Only        []string
}

func (t *Extract) Name() string { return t.TaskName }

type stamp struct {
	SHA256 string           `json:"sha256"`
	Files  map[string]int64 `json:"files"` // node path -> size
}

func (t *Extract) stampPath() string {
	return path.Join("/var/lib/provision/extracted", strings.ReplaceAll(t.TaskName, "/", "_")+".json")
}

func (t *Extract) Run(_ context.Context, e *Env, dry bool) (Outcome, error) {
	sum, known := e.Sum(t.Archive)
	if known && t.intact(e, sum) {
		return unchanged("%s holds %s", t.Dest, path.Base(t.Archive))
	}
	if dry {
		return changed("extract %s to %s", path.Base(t.Archive), t.Dest)
	}
	if !known {
		return Outcome{}, fmt.Errorf("%s was not verified by a download task in this run", t.Archive)
	}
	var files map[string]int64
	err := background.Run(func() (err error) { files, err = t.extract(e); return err })
	if err != nil {
		return Outcome{}, err
	}
	data, _ := json.Marshal(stamp{SHA256: sum, Files: files})
	if _, err := e.Root.WriteFile(t.stampPath(), data, 0o644); err != nil {
		return Outcome{}, err
	}
	names := make([]string, 0, len(files))
	for f := range files {
		names = append(names, path.Base(f))
	}
	sort.Strings(names)
	return changed("extracted %s to %s: %s", path.Base(t.Archive), t.Dest, strings.Join(names, " "))
}

func (t *Extract) intact(e *Env, sum string) bool {
	data, err := e.Root.ReadFile(t.stampPath())
	if err != nil {
		return false
	}
	var s stamp
	if json.Unmarshal(data, &s) != nil || s.SHA256 != sum || len(s.Files) == 0 {
		return false
	}
	for f, size := range s.Files {
		fi, err := e.Root.Lstat(f)
		if err != nil || !fi.Mode().IsRegular() || fi.Size() != size {
			return false
		}
	}
	return true
}

func (t *Extract) extract(e *Env) (map[string]int64, error) {
	f, err := e.Root.Open(t.Archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Archive, err)
	}
	tr := tar.NewReader(gz)
	only := map[string]bool{}
	for _, o := range t.Only {
		only[o] = true
	}
	files := map[string]int64{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.Archive, err)
		}
		if tarsafe.IsSparse(h) {
			return nil, fmt.Errorf("%s: member %q is a sparse file: refused", t.Archive, h.Name)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		name = strings.TrimPrefix(name, t.StripPrefix)
		if name == "" || (len(only) > 0 && !only[name]) {
			continue
		}
		dst := path.Join(t.Dest, name) // Clean'd under Dest: ".." cannot escape
		if !strings.HasPrefix(dst, strings.TrimSuffix(t.Dest, "/")+"/") {
			return nil, fmt.Errorf("%s: member %q escapes %s", t.Archive, h.Name, t.Dest)
		}
		if h.Size > tarsafe.MaxMember {
			return nil, fmt.Errorf("%s: member %q is %d bytes, more than the maximum of %d: refused", t.Archive, h.Name, h.Size, int64(tarsafe.MaxMember))
		}
		mode := tarsafe.Mode(h.Mode)
		out, err := e.Root.CreateTemp(dst, mode)
		if err != nil {
			return nil, err
		}
		n, err := io.Copy(out, io.LimitReader(tr, h.Size))
		if err != nil {
			out.Abort()
			return nil, fmt.Errorf("%s: %s: %w", t.Archive, h.Name, err)
		}
		if err := out.Commit(); err != nil {
			return nil, err
		}
		files[dst] = n
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no files to extract (prefix %q, only %v)", t.Archive, t.StripPrefix, t.Only)
	}
	return files, nil
}
