package tasks

import (
	"archive/tar"
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/provision-dev/provision/internal/fsroot"
	"github.com/provision-dev/provision/internal/logging"
	"github.com/provision-dev/provision/internal/runner"
	"github.com/provision-dev/provision/osprofiles"
)

// binaryTarball returns a .tar.gz of n copies of the test binary (Go
// binaries, like the CNI plugins and crictl) and its uncompressed size.
func binaryTarball(b *testing.B, n int) ([]byte, int64) {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	gz := stdgzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for i := range n {
		tw.WriteHeader(&tar.Header{Name: "./plugin-" + string(rune('a'+i)), Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	tw.Close()
	gz.Close()
	return buf.Bytes(), int64(n * len(data))
}

// BenchmarkInflate compares the standard library's gzip reader with the one
// Extract uses, on Go binaries (MB/s of uncompressed output).
func BenchmarkInflate(b *testing.B) {
	archive, size := binaryTarball(b, 3)
	for _, c := range []struct {
		name string
		open func(io.Reader) (io.Reader, error)
	}{
		{"stdlib", func(r io.Reader) (io.Reader, error) { return stdgzip.NewReader(r) }},
		{"klauspost", func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				r, err := c.open(bytes.NewReader(archive))
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, r)
				if err != nil || n < size {
					b.Fatalf("inflated %d bytes, %v", n, err)
				}
			}
		})
	}
}

// BenchmarkExtract measures the Extract task (inflate, untar, atomic fsync'd
// writes) into a fresh root each time.
func BenchmarkExtract(b *testing.B) {
	archive, size := binaryTarball(b, 3)
	sum := sha256.Sum256(archive)
	profile, err := osprofiles.Get("debian-12")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	for b.Loop() {
		b.StopTimer()
		dir, err := os.MkdirTemp("", "extract-bench")
		if err != nil {
			b.Fatal(err)
		}
		root, _ := fsroot.New(dir)
		e := &Env{Root: root, Runner: &runner.Fake{}, Profile: profile, Live: true, Log: logging.Discard()}
		os.MkdirAll(e.Root.Path("/var/cache/provision"), 0o755)
		os.WriteFile(e.Root.Path("/var/cache/provision/cni.tgz"), archive, 0o644)
		e.SetSum("/var/cache/provision/cni.tgz", hex.EncodeToString(sum[:]))
		b.StartTimer()
		o, err := (&Extract{TaskName: "cni/plugins", Archive: "/var/cache/provision/cni.tgz", Dest: "/opt/cni/bin"}).Run(context.Background(), e, false)
		if err != nil || o.Result != Changed {
			b.Fatalf("%+v %v", o, err)
		}
		b.StopTimer()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}
