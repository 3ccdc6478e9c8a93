package download

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provision-dev/provision/internal/testutil"
)

func fast() *Downloader {
	return &Downloader{Attempts: 4, BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond, StallTimeout: 300 * time.Millisecond}
}

func noTemps(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temp file left behind: %s", e.Name())
		}
	}
}

func TestFetch(t *testing.T) {
	payload := []byte(strings.Repeat("kubelet-binary ", 1000))
	good := testutil.SHA256(payload)
	tests := []struct {
		name     string
		handler  func(n int, w http.ResponseWriter, r *http.Request)
		sha      string // "" => good
		wantErr  string
		wantReqs int32
		noFile   bool
	}{
		{name: "500s then success", wantReqs: 3, handler: func(n int, w http.ResponseWriter, r *http.Request) {
			if n < 3 {
				http.Error(w, "boom", 500)
				return
			}
			w.Write(payload)
		}},
		{name: "cut mid-body then success", wantReqs: 2, handler: func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
				w.Write(payload[:100])
				hj, _ := w.(http.Hijacker)
				conn, _, _ := hj.Hijack()
				conn.Close()
				return
			}
			w.Write(payload)
		}},
		{name: "stall then success", wantReqs: 2, handler: func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
				w.Write(payload[:10])
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
				return
			}
			w.Write(payload)
		}},
		{name: "404 is not retried", wantReqs: 1, wantErr: "HTTP 404", noFile: true, handler: func(n int, w http.ResponseWriter, r *http.Request) {
			http.NotFound(w, r)
		}},
		{name: "mismatch is not retried and leaves no file", wantReqs: 1, sha: strings.Repeat("0", 64), noFile: true,
			wantErr: "sha256 mismatch for http://", handler: func(n int, w http.ResponseWriter, r *http.Request) { w.Write(payload) }},
		{name: "persistent 503 gives up", wantReqs: 4, wantErr: "gave up after 4 attempts", noFile: true, handler: func(n int, w http.ResponseWriter, r *http.Request) {
			http.Error(w, "busy", http.StatusServiceUnavailable)
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
			dest := filepath.Join(dir, "kubelet")
			sha := tc.sha
			if sha == "" {
				sha = good
			}
			res, err := fast().Fetch(context.Background(), Request{URL: srv.URL + "/kubelet", SHA256: sha, Dest: dest, Mode: 0o755})
			if got := reqs.Load(); got != tc.wantReqs {
				t.Errorf("requests = %d, want %d", got, tc.wantReqs)
			}
			noTemps(t, dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				if tc.sha != "" && (!strings.Contains(err.Error(), tc.sha) || !strings.Contains(err.Error(), good)) {
					t.Errorf("mismatch error must name expected and actual hash: %v", err)
				}
				if _, err := os.Stat(dest); tc.noFile && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("target exists after failure: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !res.Downloaded || res.SHA256 != good {
				t.Errorf("result = %+v", res)
			}
			got, _ := os.ReadFile(dest)
			if string(got) != string(payload) {
				t.Errorf("content differs")
			}
			if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o755 {
				t.Errorf("mode = %v", fi.Mode())
			}
		})
	}
}

func TestAlreadyPresentMakesNoRequest(t *testing.T) {
	payload := []byte("present")
	var reqs atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reqs.Add(1); w.Write(payload) }))
	defer srv.Close()
	dest := filepath.Join(t.TempDir(), "f")
	os.WriteFile(dest, payload, 0o644)
	res, err := fast().Fetch(context.Background(), Request{URL: srv.URL + "/f", SHA256: testutil.SHA256(payload), Dest: dest})
	if err != nil || res.Downloaded {
		t.Fatalf("res=%+v err=%v", res, err)
	}
	if reqs.Load() != 0 {
		t.Errorf("requests = %d, want 0", reqs.Load())
	}
}

func TestChecksumFromSHA256File(t *testing.T) {
	payload := []byte("cni plugins")
	for name, body := range map[string]string{
		"hash only":         testutil.SHA256(payload) + "\n",
		"hash and filename": strings.ToUpper(testutil.SHA256(payload)) + "  cni.tgz\n",
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, ".sha256") {
					fmt.Fprint(w, body)
					return
				}
				w.Write(payload)
			}))
			defer srv.Close()
			dest := filepath.Join(t.TempDir(), "cni.tgz")
			res, err := fast().Fetch(context.Background(), Request{URL: srv.URL + "/cni.tgz", Dest: dest})
			if err != nil || !res.Downloaded || res.SHA256 != testutil.SHA256(payload) {
				t.Fatalf("res=%+v err=%v", res, err)
			}
		})
	}
	t.Run("bad checksum file", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>not a hash</html>") }))
		defer srv.Close()
		_, err := fast().Fetch(context.Background(), Request{URL: srv.URL + "/x", Dest: filepath.Join(t.TempDir(), "x")})
		if err == nil || !strings.Contains(err.Error(), "64 hex digits") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestFetchAllParallel(t *testing.T) {
	const n = 4
	var mu sync.Mutex
	inflight, peak := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inflight++
		peak = max(peak, inflight)
		mu.Unlock()
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		inflight--
		mu.Unlock()
		w.Write([]byte(r.URL.Path))
	}))
	defer srv.Close()
	dir := t.TempDir()
	var reqs []Request
	for i := range n {
		p := fmt.Sprintf("/a%d", i)
		reqs = append(reqs, Request{URL: srv.URL + p, SHA256: testutil.SHA256([]byte(p)), Dest: filepath.Join(dir, p)})
	}
	res, err := fast().FetchAll(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	if peak < 2 {
		t.Errorf("not parallel: peak %d requests in flight", peak)
	}
	for i, r := range res {
		if !r.Downloaded {
			t.Errorf("request %d not downloaded", i)
		}
	}
}

func TestFileURL(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.WriteFile(src, []byte("local"), 0o644)
	dest := filepath.Join(t.TempDir(), "dst")
	if _, err := fast().Fetch(context.Background(), Request{URL: "file://" + src, SHA256: testutil.SHA256([]byte("local")), Dest: dest}); err != nil {
		t.Fatal(err)
	}
}

func TestRedactsCredentials(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	u := strings.Replace(srv.URL, "http://", "http://user:s3cret@", 1)
	_, err := fast().Fetch(context.Background(), Request{URL: u + "/x", SHA256: strings.Repeat("a", 64), Dest: filepath.Join(t.TempDir(), "x")})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("err = %v", err)
	}
}

// TestChecksumURL: an unpinned download reads its checksum from ChecksumURL
// when the request gives one (never URL+".sha256"), takes the entry naming the
// artifact's file from a file listing several, and refuses a checksum file over
// MaxChecksumBytes.
func TestChecksumURL(t *testing.T) {
	payload := []byte("runc binary")
	sum := testutil.SHA256(payload)
	other := strings.Repeat("cd", 32)
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		switch r.URL.Path {
		case "/v1/runc.amd64":
			w.Write(payload)
		case "/v1/runc.sha256sum":
			fmt.Fprintf(w, "%s  runc.arm64\n%s  runc.amd64\n%s  runc.tar.xz\n", other, sum, other)
		case "/v1/big.sha256sum":
			w.Write([]byte(strings.Repeat(other+"  padding\n", MaxChecksumBytes/70+1) + sum + "  runc.amd64\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	req := Request{URL: srv.URL + "/v1/runc.amd64", ChecksumURL: srv.URL + "/v1/runc.sha256sum", Dest: filepath.Join(dir, "runc")}
	if got := req.SumURL(); got != req.ChecksumURL {
		t.Errorf("SumURL = %q, want the ChecksumURL", got)
	}
	res, err := fast().Fetch(context.Background(), req)
	if err != nil || res.SHA256 != sum {
		t.Fatalf("Fetch = %+v, %v; want sha256 %s", res, err, sum)
	}
	if strings.Join(paths, ",") != "/v1/runc.sha256sum,/v1/runc.amd64" {
		t.Errorf("requests %v: want the checksum file, then the artifact (never URL+.sha256)", paths)
	}
	if got := (Request{URL: "https://x/kubelet"}).SumURL(); got != "https://x/kubelet.sha256" {
		t.Errorf("default SumURL = %q", got)
	}

	req.ChecksumURL = srv.URL + "/v1/big.sha256sum"
	req.Dest = filepath.Join(dir, "runc2")
	_, err = fast().Fetch(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "more than 4096 bytes") {
		t.Errorf("checksum file over %d bytes: err = %v, want a refusal", MaxChecksumBytes, err)
	}
	if _, serr := os.Stat(req.Dest); serr == nil {
		t.Errorf("a refused checksum file left %s", req.Dest)
	}
}
