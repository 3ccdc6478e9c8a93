package bundle

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/internal/download"
	"github.com/provision-dev/provision/internal/fsroot"
	"github.com/provision-dev/provision/osprofiles"
)

// Spec says what a bundle holds.
type Spec struct {
	KubeletVersion string
	Profile        osprofiles.Profile
	Arch           string
	// Artifacts are the node config's sources (mirrors and pinned sha256s honoured).
	Artifacts v1alpha1.Artifacts
	// ProvisionBinary is an optional local provision binary to include; its
	// sha256 is ProvisionSHA256 or read from ProvisionBinary + ".sha256".
	ProvisionBinary string
	ProvisionSHA256 string
}

// sources are the spec's downloads, by artifact name.
func (s Spec) sources() (map[string]download.Request, error) {
	out := map[string]download.Request{}
	var errs validation.Errors
	for _, name := range Required(s.Profile) {
		src := s.Artifacts.Get(name)
		if src.URL == "" {
			errs = append(errs, validation.FieldError{Field: "artifacts." + name + ".url", Message: "is required for " + s.Profile.Name})
			continue
		}
		out[name] = download.Request{URL: src.URL, SHA256: src.SHA256, ChecksumURL: artifacts.MustGet(name).ChecksumURL(src.URL)}
	}
	if s.ProvisionBinary != "" {
		abs, err := filepath.Abs(s.ProvisionBinary)
		if err != nil {
			return nil, fmt.Errorf("--provision-binary: %w", err)
		}
		sum := s.ProvisionSHA256
		if sum == "" {
			if _, err := os.Stat(abs + ".sha256"); err != nil {
				errs = append(errs, validation.FieldError{Field: "--provision-binary", Message: fmt.Sprintf("no %s.sha256 beside it (hack/build.sh writes one) and no --provision-sha256", s.ProvisionBinary)})
			}
		}
		out[artifacts.Provision] = download.Request{URL: (&url.URL{Scheme: "file", Path: abs}).String(), SHA256: sum}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// Create downloads every artifact of spec (checksums verified, pinned or .sha256)
// and writes the bundle to out atomically: out is either absent/unchanged or a
// complete bundle. It also writes out + ".sha256" ("HASH  NAME").
func Create(ctx context.Context, spec Spec, out string, dl *download.Downloader, log *slog.Logger) (Manifest, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if dl == nil {
		dl = &download.Downloader{Log: log}
	}
	srcs, err := spec.sources()
	if err != nil {
		return Manifest{}, err
	}
	out, err = filepath.Abs(out)
	if err != nil {
		return Manifest{}, fmt.Errorf("bundle: %w", err)
	}
	dir := filepath.Dir(out)
	stage, err := os.MkdirTemp(dir, "."+filepath.Base(out)+".stage-*")
	if err != nil {
		return Manifest{}, fmt.Errorf("bundle: %w", err)
	}
	defer os.RemoveAll(stage)

	names := make([]string, 0, len(srcs))
	for n := range srcs {
		names = append(names, n)
	}
	reqs := make([]download.Request, len(names))
	for i, n := range names {
		r := srcs[n]
		r.Dest = filepath.Join(stage, path.Base(FilePath(n)))
		reqs[i] = r
	}
	start := time.Now()
	res, err := dl.FetchAll(ctx, reqs)
	if err != nil {
		return Manifest{}, fmt.Errorf("bundle: %w", err)
	}
	m := Manifest{APIVersion: v1alpha1.APIVersion, Kind: Kind, KubeletVersion: spec.KubeletVersion, OSProfile: spec.Profile.Name, Arch: spec.Arch}
	for i, n := range names {
		fi, err := os.Stat(reqs[i].Dest)
		if err != nil {
			return Manifest{}, err
		}
		m.Artifacts = append(m.Artifacts, Entry{Name: n, File: FilePath(n), SHA256: res[i].SHA256, Size: fi.Size(), Source: download.Redact(reqs[i].URL)})
	}
	log.Info("bundle artifacts fetched", "artifacts", len(names), "bytes", m.TotalSize(), "duration", time.Since(start).Round(time.Millisecond))
	if err := m.Validate(); err != nil {
		return Manifest{}, err
	}

	f, err := fsroot.Host.CreateTemp(out, 0o644)
	if err != nil {
		return Manifest{}, fmt.Errorf("bundle: %w", err)
	}
	sum, err := Write(f, m, stage)
	if err != nil {
		f.Abort()
		return Manifest{}, err
	}
	if err := f.Commit(); err != nil {
		return Manifest{}, err
	}
	if err := fsroot.Host.WriteAtomic(out+".sha256", []byte(sum+"  "+filepath.Base(out)+"\n"), 0o644); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// Write writes the bundle of m to w, reading each artifact from dir/FILENAME,
// and returns the sha256 of the bytes written.
func Write(w io.Writer, m Manifest, dir string) (string, error) {
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(w, h))
	data, err := m.Marshal()
	if err != nil {
		return "", err
	}
	if err := tw.WriteHeader(header(ManifestName, int64(len(data)))); err != nil {
		return "", err
	}
	if _, err := tw.Write(data); err != nil {
		return "", err
	}
	for _, e := range sorted(m.Artifacts) {
		if err := writeMember(tw, e, filepath.Join(dir, path.Base(e.File))); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func writeMember(tw *tar.Writer, e Entry, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(header(e.File, e.Size)); err != nil {
		return err
	}
	n, err := io.Copy(tw, f)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", e.File, err)
	}
	if n != e.Size {
		return fmt.Errorf("bundle %s: %d bytes, the manifest says %d", e.File, n, e.Size)
	}
	return nil
}

// header is a member header with every varying field fixed.
func header(name string, size int64) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o644,
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatUSTAR,
	}
}

// sorted returns the entries sorted by file name.
func sorted(es []Entry) []Entry {
	out := append([]Entry(nil), es...)
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out
}
