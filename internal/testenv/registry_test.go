//go:build e2e

package testenv

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRegistryPush starts the real registry (distribution, built from the Go
// module proxy) on loopback and proves PushImage against it: the image pushed
// is the image served back, byte for byte and by digest, to its user only;
// anonymous requests and a wrong password are refused; the log names the user
// of every request; a second push uploads nothing. It needs no root.
func TestRegistryPush(t *testing.T) {
	r := StartRegistry(t, nil, "pusher")
	img := PauseOCIImage(t, map[string][]byte{"etc/e2e-image-id": []byte(randomHex(t, 8))})
	r.Push(t, "e2e/app", "1", img)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	get := func(path, user, password string) (int, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", ImageManifestType)
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := r.Client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, body
	}

	code, h, body := get("/v2/e2e/app/manifests/1", r.Username, r.Password)
	if code != http.StatusOK || string(body) != string(img.Manifest) || h.Get("Docker-Content-Digest") != img.ManifestDigest {
		t.Errorf("manifest by tag: %d, digest %s (want %s), %d bytes (want %d)", code, h.Get("Docker-Content-Digest"), img.ManifestDigest, len(body), len(img.Manifest))
	}
	for _, b := range img.Blobs {
		code, _, body := get("/v2/e2e/app/blobs/"+b.Digest, r.Username, r.Password)
		if code != http.StatusOK || digestOf(body) != b.Digest {
			t.Errorf("blob %s: %d, %d bytes with digest %s", b.Digest, code, len(body), digestOf(body))
		}
	}

	for _, tc := range []struct {
		name, path, user, password string
	}{
		{"anonymous /v2/", "/v2/", "", ""},
		{"anonymous manifest", "/v2/e2e/app/manifests/1", "", ""},
		{"anonymous blob", "/v2/e2e/app/blobs/" + img.Blobs[1].Digest, "", ""},
		{"wrong password", "/v2/e2e/app/manifests/1", r.Username, r.Password + "x"},
		{"unknown user", "/v2/e2e/app/manifests/1", "nobody", r.Password},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, h, _ := get(tc.path, tc.user, tc.password); code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("GET %s: %d, WWW-Authenticate %q; want 401 with a Basic challenge", tc.path, code, h.Get("WWW-Authenticate"))
			}
		})
	}

	wrong := r.Password[:len(r.Password)-1] + "!"
	err := PushImage(ctx, r.Client, r.URL, r.Username, wrong, "e2e/app", "2", img)
	switch {
	case !errors.Is(err, ErrUnauthorized):
		t.Errorf("push with a wrong password: %v, want ErrUnauthorized", err)
	case strings.Contains(err.Error(), wrong):
		t.Errorf("the push error holds the password: %v", err)
	}

	// Only the test's CA vouches for the registry.
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}, Timeout: 10 * time.Second}
	if resp, err := plain.Get(r.URL + "/v2/"); err == nil {
		resp.Body.Close()
		t.Errorf("a client without the test CA reached the registry: %s", resp.Status)
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the test CA: %v, want a certificate error", err)
	}

	posts := func() int {
		n := 0
		for _, req := range r.Requests(t) {
			if req.Method == http.MethodPost {
				n++
			}
		}
		return n
	}
	before := posts()
	r.Push(t, "e2e/app", "1", img)
	if after := posts(); after != before {
		t.Errorf("a second push of the same image opened %d uploads, want none (the blobs exist)", after-before)
	}

	reqs := r.Requests(t)
	var manifestPut, pulls, refused int
	for _, req := range reqs {
		switch {
		case req.Method == http.MethodPut && req.URI == "/v2/e2e/app/manifests/1" && req.Status == http.StatusCreated:
			manifestPut++
			if req.User != "pusher" {
				t.Errorf("manifest PUT logged as user %q, want pusher", req.User)
			}
		case req.Method == http.MethodGet && req.Status == http.StatusOK:
			pulls++
			if req.User != "pusher" {
				t.Errorf("%s %s logged as user %q, want pusher", req.Method, req.URI, req.User)
			}
		case req.Status == http.StatusUnauthorized:
			refused++
		}
	}
	// Refused: the five anonymous or bad requests, the wrong password's HEAD.
	if manifestPut != 2 || pulls != 1+len(img.Blobs) || refused < 6 {
		t.Errorf("registry log: %d manifest PUTs (want 2), %d authenticated GETs (want %d), %d refused (want 6 or more)\n%s",
			manifestPut, pulls, 1+len(img.Blobs), refused, r.Log(40))
	}
	if strings.Contains(r.Log(1000), r.Password) {
		t.Errorf("the registry's log holds the password")
	}
	t.Logf("registry %s: %d requests logged (%d refused), image %s (%d bytes of blobs)", r.Host, len(reqs), refused, img.ManifestDigest, blobBytes(img))
}

func blobBytes(img *Image) int {
	n := 0
	for _, b := range img.Blobs {
		n += len(b.Data)
	}
	return n
}
