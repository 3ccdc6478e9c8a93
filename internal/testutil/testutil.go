// Package testutil holds the helpers the packages' tests share: golden files
// rewritten by the -update flag, in-memory tarballs, sha256 sums and a loopback
// server of fake release artifacts. Import it from _test.go files only.
package testutil

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files instead of comparing with them")

// Golden compares got with the golden file path, or, with -update, rewrites
// the file (review the diff before committing it).
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test with -update and review the diff)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run go test with -update and review the diff):\n--- got ---\n%.2000s", path, got)
	}
}

// SHA256 is the lower-case hex sha256 of b.
func SHA256(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// SHA256File is the lower-case hex sha256 of the file at path.
func SHA256File(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("hash %s: %v", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TarGz is a gzipped tarball of regular files (name in the archive → contents),
// in name order, mode 0755, time 0: the same files give the same bytes.
func TarGz[V string | []byte](t testing.TB, files map[string]V) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b := []byte(files[n])
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ArtifactServer serves fake release artifacts (URL path → contents) on
// loopback, in 64 KiB flushed chunks so a download spans many reads, and
// counts the requests per path. For each file it also serves the checksum files
// of every convention of internal/artifacts: path.sha256 and path.sha256sum
// ("<hex>  <base name>", as release pages do) and, in each directory,
// <dir>/<name>.sha256sum listing every file of the directory (runc's
// runc.sha256sum) unless a file of that path is served. It is closed when the test ends.
type ArtifactServer struct {
	*httptest.Server
	Files map[string][]byte
	mu    sync.Mutex
	hits  map[string]int
}

// NewArtifactServer starts an ArtifactServer of files.
func NewArtifactServer(t testing.TB, files map[string][]byte) *ArtifactServer {
	s := &ArtifactServer{Files: files, hits: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		b, ok := s.Files[r.URL.Path]
		if !ok {
			b, ok = s.sums(r.URL.Path)
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		for len(b) > 0 {
			n := min(len(b), 64<<10)
			if _, err := w.Write(b[:n]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			b = b[n:]
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// sums builds the checksum file at p, if p names one.
func (s *ArtifactServer) sums(p string) ([]byte, bool) {
	for _, suffix := range []string{".sha256", ".sha256sum"} {
		if name, ok := strings.CutSuffix(p, suffix); ok {
			if f, found := s.Files[name]; found {
				return []byte(SHA256(f) + "  " + path.Base(name) + "\n"), true
			}
		}
	}
	if !strings.HasSuffix(p, ".sha256sum") {
		return nil, false
	}
	dir := path.Dir(p)
	var names []string
	for name := range s.Files {
		if path.Dir(name) == dir {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, false
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		b.WriteString(SHA256(s.Files[name]) + "  " + path.Base(name) + "\n")
	}
	return []byte(b.String()), true
}

// Hits is the number of requests for path.
func (s *ArtifactServer) Hits(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// Total is the number of requests for any path.
func (s *ArtifactServer) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.hits {
		n += v
	}
	return n
}

// URLAndSum are the URL and the sha256 of the artifact at path.
func (s *ArtifactServer) URLAndSum(path string) (url, sum string) {
	return s.URL + path, SHA256(s.Files[path])
}
