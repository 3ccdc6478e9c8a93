package download

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/provision-dev/provision/internal/testutil"
)

// TestFaultMatrix extends TestFetch with the faults that never recover and
// with an older file already at the target: whatever happens, the target holds
// its old content or the complete new one, never part of it, and no temp file
// is left. Each case also bounds the time taken.
func TestFaultMatrix(t *testing.T) {
	payload := bytes.Repeat([]byte("containerd-shim "), 8<<10) // 128 KiB
	old := []byte("previous version\n")
	cut := func(chunked bool) func(n int, w http.ResponseWriter, r *http.Request) {
		return func(n int, w http.ResponseWriter, r *http.Request) {
			if !chunked {
				w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
			}
			w.Write(payload[:len(payload)/2])
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}
	}
	stall := func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
		w.Write(payload[:1000])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
	tests := []struct {
		name     string
		handler  func(n int, w http.ResponseWriter, r *http.Request)
		sha      string
		wantErr  string
		wantReqs int32
		within   time.Duration
		ok       bool
	}{
		{name: "cut mid-body every time (Content-Length)", handler: cut(false), wantReqs: 3, within: 2 * time.Second, wantErr: "reading body after 65536 bytes: unexpected EOF (gave up after 3 attempts)"},
		{name: "cut mid-body every time (chunked)", handler: cut(true), wantReqs: 3, within: 2 * time.Second, wantErr: "reading body after"},
		{name: "stalled server is refused within the bound", handler: stall, wantReqs: 3, within: 3 * time.Second, wantErr: "no data for 200ms after 1000 bytes"},
		{name: "500s then success replaces the old file", ok: true, wantReqs: 3, within: 2 * time.Second, handler: func(n int, w http.ResponseWriter, r *http.Request) {
			if n < 3 {
				http.Error(w, "oops", 500)
				return
			}
			w.Write(payload)
		}},
		{name: "stall then cut then success", ok: true, wantReqs: 3, within: 3 * time.Second, handler: func(n int, w http.ResponseWriter, r *http.Request) {
			switch n {
			case 1:
				stall(n, w, r)
			case 2:
				cut(false)(n, w, r)
			default:
				w.Write(payload)
			}
		}},
		{name: "wrong checksum keeps the old file", sha: strings.Repeat("1", 64), wantReqs: 1, within: time.Second, wantErr: "sha256 mismatch",
			handler: func(n int, w http.ResponseWriter, r *http.Request) { w.Write(payload) }},
		{name: "404 is not retried and keeps the old file", wantReqs: 1, within: time.Second, wantErr: "HTTP 404",
			handler: func(n int, w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }},
		{name: "403 is not retried", wantReqs: 1, within: time.Second, wantErr: "HTTP 403",
			handler: func(n int, w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusForbidden) }},
		{name: "429 is retried", wantReqs: 3, within: 2 * time.Second, wantErr: "gave up after 3 attempts",
			handler: func(n int, w http.ResponseWriter, r *http.Request) {
				http.Error(w, "slow down", http.StatusTooManyRequests)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var reqs atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tc.handler(int(reqs.Add(1)), w, r)
			}))
			defer srv.Close()
			dir := t.TempDir()
			dest := filepath.Join(dir, "containerd-shim")
			if err := os.WriteFile(dest, old, 0o755); err != nil {
				t.Fatal(err)
			}
			want := tc.sha
			if want == "" {
				want = testutil.SHA256(payload)
			}
			d := &Downloader{Attempts: 3, BaseDelay: 5 * time.Millisecond, MaxDelay: 10 * time.Millisecond, StallTimeout: 200 * time.Millisecond}
			start := time.Now()
			_, err := d.Fetch(context.Background(), Request{URL: srv.URL + "/containerd-shim", SHA256: want, Dest: dest, Mode: 0o755})
			took := time.Since(start)
			if took > tc.within {
				t.Errorf("took %s, bound %s", took, tc.within)
			}
			if got := reqs.Load(); got != tc.wantReqs {
				t.Errorf("requests = %d, want %d", got, tc.wantReqs)
			}
			noTemps(t, dir)
			got, rerr := os.ReadFile(dest)
			if rerr != nil {
				t.Fatalf("target gone: %v", rerr)
			}
			if tc.ok {
				if err != nil || !bytes.Equal(got, payload) {
					t.Fatalf("err = %v, %d bytes at the target", err, len(got))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if !bytes.Equal(got, old) {
				t.Errorf("target changed after a failed download: %d bytes", len(got))
			}
		})
	}
}

// tmpfs mounts a size-limited tmpfs on a temp dir, unmounted at cleanup.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("disk-full tests need root to mount a tmpfs: run as root")
	}
	if _, err := exec.LookPath("mount"); err != nil {
		t.Fatal("mount(8) is missing: apt-get install mount")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestDiskFull: a download larger than the target filesystem fails at once (no
// retry: a full disk is not transient), naming the target path and the cause,
// and leaves neither a file nor a temp file.
func TestDiskFull(t *testing.T) {
	dir := tmpfs(t, "1m")
	payload := bytes.Repeat([]byte("0123456789abcdef"), 128<<10) // 2 MiB
	var reqs atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reqs.Add(1); w.Write(payload) }))
	defer srv.Close()
	dest := filepath.Join(dir, "kubelet")
	_, err := fast().Fetch(context.Background(), Request{URL: srv.URL + "/kubelet", SHA256: testutil.SHA256(payload), Dest: dest, Mode: 0o755})
	if err == nil || !errors.Is(err, syscall.ENOSPC) || !strings.HasPrefix(err.Error(), "write "+dest+": ") {
		t.Fatalf("err = %v, want ENOSPC naming %s", err, dest)
	}
	t.Logf("disk full: %v", err)
	if reqs.Load() != 1 {
		t.Errorf("requests = %d: a full disk must not be retried", reqs.Load())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left behind on the full filesystem: %v", ents)
	}
}
