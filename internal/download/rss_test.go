package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// pattern is a deterministic, incompressible-enough stream of n bytes, generated on the fly.
type pattern struct{ n, off int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if rem := p.n - p.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	for i := range b {
		x := uint64(p.off + int64(i))
		x ^= x >> 7
		b[i] = byte(x*0x9E3779B97F4A7C15>>56) ^ byte(x)
	}
	p.off += int64(len(b))
	return len(b), nil
}

func streamServer(t testing.TB, size int64) (*httptest.Server, string) {
	h := sha256.New()
	io.Copy(h, &pattern{n: size})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		io.CopyBuffer(w, &pattern{n: size}, make([]byte, 64<<10))
	}))
	t.Cleanup(srv.Close)
	return srv, hex.EncodeToString(h.Sum(nil))
}

func vmHWM() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

// TestPeakRSS100MB downloads 100 MB in a child process (the server stays in the
// parent) and asserts the child's peak RSS stays under 40 MiB.
func TestPeakRSS100MB(t *testing.T) {
	if url := os.Getenv("PROVISION_RSS_CHILD_URL"); url != "" {
		t.Skip("parent-only") // the child runs TestRSSChild
	}
	const size = 100 << 20
	srv, sha := streamServer(t, size)
	dest := filepath.Join(t.TempDir(), "big")
	cmd := exec.Command(os.Args[0], "-test.run=^TestRSSChild$", "-test.v")
	cmd.Env = append(os.Environ(), "PROVISION_RSS_CHILD_URL="+srv.URL+"/big", "PROVISION_RSS_CHILD_SHA="+sha, "PROVISION_RSS_CHILD_DEST="+dest)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var peak int64
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "PEAK_RSS_BYTES="); ok {
			peak, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if peak == 0 {
		t.Fatalf("child reported no peak RSS:\n%s", out)
	}
	t.Logf("peak RSS while downloading 100 MB: %.1f MiB", float64(peak)/(1<<20))
	if peak >= 40<<20 {
		t.Errorf("peak RSS %.1f MiB, want < 40 MiB", float64(peak)/(1<<20))
	}
	if fi, err := os.Stat(dest); err != nil || fi.Size() != size {
		t.Errorf("downloaded file: %v", err)
	}
}

func TestRSSChild(t *testing.T) {
	url := os.Getenv("PROVISION_RSS_CHILD_URL")
	if url == "" {
		t.Skip("run by TestPeakRSS100MB")
	}
	_, err := (&Downloader{}).Fetch(context.Background(), Request{URL: url, SHA256: os.Getenv("PROVISION_RSS_CHILD_SHA"), Dest: os.Getenv("PROVISION_RSS_CHILD_DEST")})
	if err != nil {
		t.Fatal(err)
	}
	peak, err := vmHWM()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("PEAK_RSS_BYTES=%d\n", peak)
}

func BenchmarkDownload100MB(b *testing.B) {
	const size = 100 << 20
	srv, sha := streamServer(b, size)
	dir := b.TempDir()
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dest := filepath.Join(dir, fmt.Sprint("big", i))
		if _, err := (&Downloader{}).Fetch(context.Background(), Request{URL: srv.URL, SHA256: sha, Dest: dest}); err != nil {
			b.Fatal(err)
		}
		os.Remove(dest)
	}
}
