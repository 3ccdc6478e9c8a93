package testenv

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// ModuleRoot returns the directory of provision's go.mod, found upwards from
// the test's working directory.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// GoBuild builds the package pkg of provision's module (e.g. "./cmd/provision")
// as a static binary at out.
func GoBuild(t testing.TB, pkg, out string, ldflags ...string) {
	t.Helper()
	done := Phase(t, "go build "+pkg)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	argv := []string{"go", "build", "-trimpath", "-o", out}
	if len(ldflags) > 0 {
		argv = append(argv, "-ldflags", strings.Join(ldflags, " "))
	}
	if _, err := run(ctx, ModuleRoot(t), []string{"CGO_ENABLED=0"}, append(argv, pkg)...); err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
}

// FakeKubelet builds the kubelet stand-in (internal/testenv/cmd/fake-kubelet)
// reporting version, for tests that install a kubelet but never run it.
func FakeKubelet(t testing.TB, dir, version string) string {
	t.Helper()
	out := filepath.Join(dir, "kubelet")
	GoBuild(t, "./internal/testenv/cmd/fake-kubelet", out, "-s -w -X main.version="+version)
	return out
}

// CrictlTarball packs the real crictl (CrictlBinary) as the upstream release
// tarball crictl-VERSION-linux-amd64.tar.gz, in dir.
func CrictlTarball(t testing.TB, dir, version string) string {
	t.Helper()
	bin := CrictlBinary(t)
	out := filepath.Join(dir, "crictl-"+version+"-linux-amd64.tar.gz")
	if err := TarGz(out, map[string]string{"crictl": bin}); err != nil {
		t.Fatal(err)
	}
	return out
}

// CNIPluginsTarball repacks the real plugins of Debian's containernetworking-plugins
// .deb (usr/lib/cni/*) as the upstream release tarball (plugins at the top), in dir.
func CNIPluginsTarball(t testing.TB, deb, dir string) string {
	t.Helper()
	x := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := run(ctx, "", nil, "dpkg-deb", "-x", deb, x); err != nil {
		t.Fatal(err)
	}
	plugins, _ := filepath.Glob(filepath.Join(x, "usr", "lib", "cni", "*"))
	if len(plugins) == 0 {
		t.Fatalf("no plugins under usr/lib/cni in %s", deb)
	}
	files := map[string]string{}
	for _, p := range plugins {
		files["./"+filepath.Base(p)] = p
	}
	out := filepath.Join(dir, "cni-plugins-linux-amd64.tgz")
	if err := TarGz(out, files); err != nil {
		t.Fatal(err)
	}
	return out
}

// TarGz writes a gzipped tarball of regular files (name in the archive → host
// path), in name order, with fixed ownership and times and the files' modes.
// Names are kept as given: upstream's CNI tarball says "./bridge", crictl's "crictl".
func TarGz(out string, files map[string]string) (err error) {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := addFile(tw, n, files[n]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func addFile(tw *tar.Writer, name, path string) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", path)
	}
	hdr := &tar.Header{Name: name, Mode: int64(st.Mode().Perm()), Size: st.Size(), Typeflag: tar.TypeReg,
		ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, src)
	return err
}
