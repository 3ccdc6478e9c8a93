package fsroot

import (
	"os"
	"testing"
)

// BenchmarkConfinedRead and BenchmarkPlainRead price the confinement of a read
// (resolve in the root, reopen through procfs) against os.ReadFile; base does
// a few hundred file operations.
func BenchmarkConfinedRead(b *testing.B) {
	r, _ := New(b.TempDir())
	r.WriteFile("/etc/provision/node.yaml", []byte("apiVersion: x\n"), 0o644)
	for b.Loop() {
		if _, err := r.ReadFile("/etc/provision/node.yaml"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlainRead(b *testing.B) {
	r, _ := New(b.TempDir())
	r.WriteFile("/etc/provision/node.yaml", []byte("apiVersion: x\n"), 0o644)
	p := r.Path("/etc/provision/node.yaml")
	for b.Loop() {
		if _, err := os.ReadFile(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConfinedWriteUnchanged is the common case of a re-run: compare, no write.
func BenchmarkConfinedWriteUnchanged(b *testing.B) {
	r, _ := New(b.TempDir())
	data := []byte("version = 3\n")
	r.WriteFile("/etc/containerd/config.toml", data, 0o644)
	for b.Loop() {
		if _, err := r.WriteFile("/etc/containerd/config.toml", data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}
