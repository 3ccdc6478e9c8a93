package bundle

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/internal/fsroot"
)

// upstreamSizes are the sizes of the real v1.31.4 amd64 artifacts (kubelet,
// CNI plugins v1.5.1 tgz, crictl v1.31.1 tgz, containerd 1.7.24 tgz, runc v1.2.3),
// by artifact name; an artifact without a size here is served at 10 MiB.
var upstreamSizes = map[string]int{
	artifacts.Kubelet: 78 << 20, artifacts.CNIPlugins: 50 << 20, artifacts.Crictl: 20 << 20,
	artifacts.Containerd: 35 << 20, artifacts.Runc: 11 << 20,
}

// BenchmarkBundle creates a rocky-9 bundle of upstream-sized (incompressible)
// artifacts from a loopback server, then verifies it, then installs it.
func BenchmarkBundle(b *testing.B) {
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	files := map[string][]byte{}
	for _, a := range artifacts.Configurable() {
		n, ok := upstreamSizes[a.Name]
		if !ok {
			n = 10 << 20
		}
		p := "/" + a.File
		buf := make([]byte, n)
		for i := 0; i+8 <= n; i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8; j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		files[p] = buf
	}
	srv := testServer(b, files)
	spec := testSpec(b, srv, files, "rocky-9")
	x := expect(b, "rocky-9")
	var create, verify, install time.Duration
	var size int64
	for b.Loop() {
		dir := b.TempDir()
		out := filepath.Join(dir, "bundle.tar")
		t0 := time.Now()
		if _, err := Create(context.Background(), spec, out, fastDL, nil); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := Verify(out, Options{Expect: x}); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if _, _, err := Install(out, fsroot.Host, filepath.Join(dir, "root", "bundle"), Options{Expect: x}); err != nil {
			b.Fatal(err)
		}
		create, verify, install = create+t1.Sub(t0), verify+t2.Sub(t1), install+time.Since(t2)
		fi, _ := os.Stat(out)
		size = fi.Size()
		os.RemoveAll(dir)
	}
	n := float64(b.N)
	b.ReportMetric(float64(size)/(1<<20), "bundle-MiB")
	b.ReportMetric(create.Seconds()/n, "create-s")
	b.ReportMetric(verify.Seconds()/n, "verify-s")
	b.ReportMetric(install.Seconds()/n, "install-s")
}
