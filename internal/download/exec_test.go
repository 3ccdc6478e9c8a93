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
	"testing"
	"time"

	"github.com/provision-dev/provision/internal/testutil"
)

// TestExecutableOnlyOnceVerified: a download with an executable mode is
// written to a temp file without execute bits, chmodded only after its sha256
// matched; a mismatch leaves no file, executable or not.
func TestExecutableOnlyOnceVerified(t *testing.T) {
	payload := []byte("#!/bin/sh\necho plugin\n" + strings.Repeat("#", 4096))
	half := len(payload) / 2
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
		w.Write(payload[:half])
		w.(http.Flusher).Flush()
		<-release
		w.Write(payload[half:])
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name string
		sha  string
	}{{"match", testutil.SHA256(payload)}, {"mismatch", strings.Repeat("0", 64)}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dest := filepath.Join(dir, "plugin")
			done := make(chan error, 1)
			go func() {
				_, err := fast().Fetch(context.Background(), Request{URL: srv.URL + "/plugin", SHA256: tc.sha, Dest: dest, Mode: 0o755})
				done <- err
			}()
			// Wait for the temp file to hold the first half, then check its mode.
			deadline := time.Now().Add(5 * time.Second)
			for seen := false; !seen; {
				if time.Now().After(deadline) {
					t.Fatal("no temp file with the first half")
				}
				ents, _ := os.ReadDir(dir)
				for _, e := range ents {
					fi, err := e.Info()
					if err != nil || !strings.HasSuffix(e.Name(), ".tmp") || fi.Size() < int64(half) {
						continue
					}
					seen = true
					if fi.Mode()&0o111 != 0 {
						t.Errorf("the unverified temp file is executable: %v", fi.Mode())
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
			release <- struct{}{}
			err := <-done
			fi, serr := os.Stat(dest)
			if tc.name == "match" {
				if err != nil || serr != nil || fi.Mode().Perm() != 0o755 {
					t.Fatalf("verified: %v, %v, %v", err, fi, serr)
				}
			} else {
				var mm *MismatchError
				if !errors.As(err, &mm) || serr == nil {
					t.Fatalf("mismatch: %v, the target: %v", err, serr)
				}
			}
			noTemps(t, dir)
		})
	}
}
