package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHandlerAndFlags(t *testing.T) {
	dir := t.TempDir()
	bin := []byte("not really a binary")
	sum := fmt.Sprintf("%x", sha256.Sum256(bin))
	if err := os.WriteFile(filepath.Join(dir, "provision-linux-amd64"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "provision-linux-amd64.sha256"), []byte(sum+"  provision-linux-amd64\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".secret"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler(dir))
	defer srv.Close()

	var out bytes.Buffer
	if err := printFlags(&out, dir, srv.URL); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("--provision-source %s/provision-linux-amd64 --provision-sha256 %s", srv.URL, sum)
	if !strings.Contains(out.String(), want) {
		t.Fatalf("flags output %q lacks %q", out.String(), want)
	}

	tests := []struct {
		path string
		code int
		body []byte
	}{
		{"/provision-linux-amd64", 200, bin},
		{"/", 404, nil},
		{"/.secret", 404, nil},
		{"/../../etc/passwd", 404, nil},
		{"/missing", 404, nil},
	}
	for _, tt := range tests {
		resp, err := http.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code || (tt.body != nil && !bytes.Equal(body, tt.body)) {
			t.Errorf("GET %s = %d %q, want %d", tt.path, resp.StatusCode, body, tt.code)
		}
	}
}

func TestPrintFlagsRejectsBadSum(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "provision-linux-amd64.sha256"), []byte("xyz\n"), 0o644)
	if err := printFlags(io.Discard, dir, "http://x"); err == nil || !strings.Contains(err.Error(), "expected") {
		t.Fatalf("want error, got %v", err)
	}
}
