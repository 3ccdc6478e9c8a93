package download

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provision-dev/provision/internal/testutil"
)

// TestBoundsAndChecksumFiles is the download fault table of issue 12: a
// redirect from https to http, an endless or oversized body, a dripping
// server, and checksum files of several entries. Every refusal names the
// cause, is not retried (except the dripping server, which the overall
// deadline ends), leaves the old target intact and no temp file.
func TestBoundsAndChecksumFiles(t *testing.T) {
	payload := bytes.Repeat([]byte("containerd-shim "), 8<<10) // 128 KiB
	old := []byte("previous version\n")
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(payload) }))
	defer plain.Close()
	other := strings.Repeat("1", 64)
	tests := []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request)
		pinned  bool  // false: the hash comes from URL.sha256
		maxReq  int64 // Request.MaxBytes
		maxDL   int64 // Downloader.MaxBytes
		wantErr string
		reqs    int32 // requests of the artifact itself
		within  time.Duration
	}{
		{name: "https redirect to http is refused", pinned: true, reqs: 1, within: time.Second,
			wantErr: "refusing the redirect from https://127.0.0.1", handler: func(w http.ResponseWriter, r *http.Request) {
				u := strings.Replace(plain.URL, "http://", "http://user:secret@", 1)
				http.Redirect(w, r, u+"/containerd-shim", http.StatusFound)
			}},
		{name: "endless body is cut at the default bound", pinned: true, maxDL: 1 << 20, reqs: 1, within: 2 * time.Second,
			wantErr: "more than the maximum of 1048576 bytes for this artifact: download stopped", handler: func(w http.ResponseWriter, r *http.Request) {
				for r.Context().Err() == nil {
					if _, err := w.Write(payload); err != nil {
						return
					}
				}
			}},
		{name: "announced length over the pinned size is refused before the body", pinned: true, maxReq: 1000, reqs: 1, within: time.Second,
			wantErr: fmt.Sprintf("the server announces %d bytes, more than the maximum of 1000 bytes", len(payload)), handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
				w.Write(payload)
			}},
		{name: "chunked body over the pinned size is cut", pinned: true, maxReq: 1000, reqs: 1, within: time.Second,
			wantErr: "more than the maximum of 1000 bytes", handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write(payload[:600])
				w.(http.Flusher).Flush()
				w.Write(payload[600:])
			}},
		{name: "dripping server ends at the overall deadline", pinned: true, within: 2 * time.Second, reqs: 1,
			wantErr: "not finished after 700ms (the overall deadline of a download)", handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
				for i := 0; r.Context().Err() == nil && i < len(payload); i++ {
					w.Write(payload[i : i+1])
					w.(http.Flusher).Flush()
					time.Sleep(50 * time.Millisecond)
				}
			}},
		{name: "checksum file: the entry naming the artifact, not the first line", reqs: 1, within: time.Second,
			handler: sums(payload, other+"  crictl.tgz\n"+testutil.SHA256(payload)+" *containerd-shim\n")},
		{name: "checksum file: no entry for the artifact is refused", reqs: 0, within: time.Second,
			wantErr: `.sha256: 2 entries and none for "containerd-shim" (entries: crictl.tgz, runc): refusing to guess`,
			handler: sums(payload, other+"  crictl.tgz\n"+testutil.SHA256(payload)+"  runc\n")},
		{name: "checksum file: two hashes for the artifact are refused", reqs: 0, within: time.Second,
			wantErr: ".sha256: two different hashes for containerd-shim",
			handler: sums(payload, testutil.SHA256(payload)+"  containerd-shim\n"+other+"  ./containerd-shim\n")},
	}
	tried, refused := 0, 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var reqs atomic.Int32
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !strings.HasSuffix(r.URL.Path, ".sha256") {
					reqs.Add(1)
				}
				tc.handler(w, r)
			})
			srv := httptest.NewTLSServer(h)
			defer srv.Close()
			dir := t.TempDir()
			dest := filepath.Join(dir, "containerd-shim")
			if err := os.WriteFile(dest, old, 0o755); err != nil {
				t.Fatal(err)
			}
			req := Request{URL: srv.URL + "/containerd-shim", Dest: dest, Mode: 0o755, MaxBytes: tc.maxReq}
			if tc.pinned {
				req.SHA256 = testutil.SHA256(payload)
			}
			d := &Downloader{Client: srv.Client(), Attempts: 3, BaseDelay: 5 * time.Millisecond, MaxDelay: 10 * time.Millisecond,
				StallTimeout: 200 * time.Millisecond, Deadline: 700 * time.Millisecond, MaxBytes: tc.maxDL}
			start := time.Now()
			_, err := d.Fetch(context.Background(), req)
			if took := time.Since(start); took > tc.within {
				t.Errorf("took %s, bound %s", took, tc.within)
			}
			if got := reqs.Load(); got != tc.reqs {
				t.Errorf("artifact requests = %d, want %d", got, tc.reqs)
			}
			noTemps(t, dir)
			got, _ := os.ReadFile(dest)
			tried++
			if tc.wantErr == "" {
				if err != nil || !bytes.Equal(got, payload) {
					t.Fatalf("err = %v, %d bytes at the target", err, len(got))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error shows a credential: %v", err)
			}
			if !bytes.Equal(got, old) {
				t.Errorf("target changed after a refused download: %d bytes", len(got))
			}
			refused++
			t.Logf("refused: %v", err)
		})
	}
	t.Logf("download faults tried %d, refused %d (the others: the expected file)", tried, refused)
}

// sums serves payload and, at .sha256, the checksum file body.
func sums(payload []byte, body string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".sha256") {
			w.Write([]byte(body))
			return
		}
		w.Write(payload)
	}
}
