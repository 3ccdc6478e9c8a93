package testutil

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

func TestTarGzSortedAndDeterministic(t *testing.T) {
	files := map[string]string{"b": "2", "./a": "1", "dir/c": "3"}
	one, two := TarGz(t, files), TarGz(t, files)
	if !bytes.Equal(one, two) {
		t.Fatal("the same files gave different tarballs")
	}
	if !bytes.Equal(one, TarGz(t, map[string][]byte{"b": []byte("2"), "./a": []byte("1"), "dir/c": []byte("3")})) {
		t.Fatal("string and []byte contents gave different tarballs")
	}
	zr, err := gzip.NewReader(bytes.NewReader(one))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if h.Mode != 0o755 || h.ModTime.Unix() != 0 || string(b) != files[h.Name] {
			t.Errorf("%s: mode %o time %v contents %q", h.Name, h.Mode, h.ModTime, b)
		}
		got = append(got, h.Name)
	}
	if want := []string{"./a", "b", "dir/c"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("order %v, want %v", got, want)
	}
}

func TestSHA256(t *testing.T) {
	const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" // FIPS 180-2 example
	if got := SHA256([]byte("abc")); got != abc {
		t.Errorf("SHA256(abc) = %s", got)
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := SHA256File(t, p); got != abc {
		t.Errorf("SHA256File = %s", got)
	}
}

func TestArtifactServer(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 20000) // several 64 KiB chunks
	s := NewArtifactServer(t, map[string][]byte{"/dl/kubelet": big})
	get := func(p string) (int, []byte) {
		resp, err := http.Get(s.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	if code, b := get("/dl/kubelet"); code != http.StatusOK || !bytes.Equal(b, big) {
		t.Fatalf("kubelet: %d, %d bytes", code, len(b))
	}
	if code, b := get("/dl/kubelet.sha256"); code != http.StatusOK || string(b) != SHA256(big)+"  kubelet\n" {
		t.Fatalf("sidecar: %d %q", code, b)
	}
	if code, _ := get("/missing"); code != http.StatusNotFound {
		t.Fatalf("missing: %d", code)
	}
	if s.Hits("/dl/kubelet") != 1 || s.Total() != 3 {
		t.Errorf("hits %d, total %d", s.Hits("/dl/kubelet"), s.Total())
	}
	if url, sum := s.URLAndSum("/dl/kubelet"); url != s.URL+"/dl/kubelet" || sum != SHA256(big) {
		t.Errorf("URLAndSum = %s %s", url, sum)
	}
}

// TestGoldenComparesAndFails: a matching golden passes, a different one fails
// the test (checked on a sub-test's recorder).
func TestGoldenComparesAndFails(t *testing.T) {
	if *update {
		t.Skip("-update rewrites instead of comparing")
	}
	p := filepath.Join(t.TempDir(), "g", "out.txt")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("same\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	Golden(t, p, []byte("same\n"))
	rec := &recorder{TB: t}
	Golden(rec, p, []byte("other\n"))
	if !rec.failed {
		t.Error("a different output passed the golden check")
	}
}

type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }
func (r *recorder) Fatal(...any)          { r.failed = true }
