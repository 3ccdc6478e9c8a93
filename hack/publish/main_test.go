package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"
)

// startEmulator runs fake-gcs-server in-process on loopback, stopped at cleanup, and points
// STORAGE_EMULATOR_HOST at it so the client is built exactly as main builds it.
func startEmulator(t *testing.T, bucket string) *storage.Client {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: "127.0.0.1", Port: 0, Writer: io.Discard,
	})
	if err != nil {
		t.Fatalf("start GCS emulator: %v", err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket})
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(srv.URL(), "http://"))
	// JSON reads: the emulator matches XML-API downloads by the public host name only.
	client, err := storage.NewClient(context.Background(), option.WithoutAuthentication(), storage.WithJSONReads())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func writeBuild(t *testing.T, dir, name string, content []byte, sum string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), content, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".sha256"), []byte(sum+"  "+name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPublishRoundTripThroughEmulator(t *testing.T) {
	client := startEmulator(t, "builds")
	dir := t.TempDir()
	bins := map[string][]byte{
		"provision-linux-amd64": bytes.Repeat([]byte("amd64"), 200000),
		"provision-linux-arm64": bytes.Repeat([]byte("arm64"), 150000),
	}
	for name, content := range bins {
		writeBuild(t, dir, name, content, fmt.Sprintf("%x", sha256.Sum256(content)))
	}
	var out bytes.Buffer
	if err := publish(context.Background(), client, dir, "gs://builds/provision/v0.1.0", "https://storage.googleapis.com", &out); err != nil {
		t.Fatalf("publish: %v", err)
	}
	for name, content := range bins {
		sum := fmt.Sprintf("%x", sha256.Sum256(content))
		want := fmt.Sprintf("--provision-source https://storage.googleapis.com/builds/provision/v0.1.0/%s --provision-sha256 %s", name, sum)
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
		r, err := client.Bucket("builds").Object("provision/v0.1.0/" + name).NewReader(context.Background())
		if err != nil {
			t.Fatalf("download %s back: %v (published: %s)", name, err, listObjects(t, client))
		}
		got, _ := io.ReadAll(r)
		r.Close()
		if fmt.Sprintf("%x", sha256.Sum256(got)) != sum {
			t.Errorf("%s: downloaded bytes differ from the build", name)
		}
	}
}

func TestPublishRefuses(t *testing.T) {
	client := startEmulator(t, "builds")
	tests := []struct {
		name, dest, wantErr string
		setup               func(dir string)
	}{
		{"bad dest", "s3://x/y", "must be gs://BUCKET", func(string) {}},
		{"no build", "gs://builds/p", "run hack/build.sh first", func(string) {}},
		{"hash mismatch", "gs://builds/p", "does not match", func(dir string) {
			writeBuild(t, dir, "provision-linux-amd64", []byte("tampered"), strings.Repeat("a", 64))
		}},
		{"missing bucket", "gs://nope/p", "upload gs://nope/p/provision-linux-amd64", func(dir string) {
			c := []byte("ok")
			writeBuild(t, dir, "provision-linux-amd64", c, fmt.Sprintf("%x", sha256.Sum256(c)))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(dir)
			err := publish(context.Background(), client, dir, tt.dest, "https://storage.googleapis.com", io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
			}
		})
	}
}

func listObjects(t *testing.T, client *storage.Client) string {
	var names []string
	it := client.Bucket("builds").Objects(context.Background(), nil)
	for {
		a, err := it.Next()
		if err != nil {
			break
		}
		names = append(names, fmt.Sprintf("%s(%d)", a.Name, a.Size))
	}
	return strings.Join(names, " ")
}
