package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ContainerdVersion and RuncVersion are what hack/build-containerd.sh builds
// for the tests of the tarball runtime: the defaults of internal/artifacts.
const (
	ContainerdVersion = "v2.3.7"
	RuncVersion       = "v1.3.7"
)

// Release is containerd and runc laid out as their upstream release assets.
type Release struct {
	// ContainerdDir holds containerd-X.Y.Z-linux-amd64.tar.gz and its .sha256sum
	// (and bin/, the unpacked binaries).
	ContainerdDir, ContainerdTarball string
	// RuncDir holds runc.amd64 and runc.sha256sum.
	RuncDir string
}

// ContainerdRelease runs hack/build-containerd.sh, which builds containerd
// (containerd, containerd-shim-runc-v2, ctr) and runc from the Go module proxy
// into the cache once (about 6 and 2 minutes cold on 2 cores) and checks the
// cached files on every later call.
func ContainerdRelease(t testing.TB) Release {
	t.Helper()
	done := Phase(t, "containerd "+ContainerdVersion+" and runc "+RuncVersion)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	root := ModuleRoot(t)
	cache := CacheDir(t)
	out, err := run(ctx, root, []string{"PROVISION_TEST_CACHE=" + cache}, "bash", filepath.Join(root, "hack", "build-containerd.sh"), ContainerdVersion, RuncVersion)
	if err != nil {
		t.Fatalf("hack/build-containerd.sh: %v", err)
	}
	t.Logf("build-containerd: %s", lastLines(out, 2))
	r := Release{
		ContainerdDir: filepath.Join(cache, "containerd", ContainerdVersion),
		RuncDir:       filepath.Join(cache, "runc", RuncVersion),
	}
	r.ContainerdTarball = "containerd-" + strings.TrimPrefix(ContainerdVersion, "v") + "-linux-amd64.tar.gz"
	for _, p := range []string{filepath.Join(r.ContainerdDir, r.ContainerdTarball), filepath.Join(r.ContainerdDir, r.ContainerdTarball+".sha256sum"),
		filepath.Join(r.RuncDir, "runc.amd64"), filepath.Join(r.RuncDir, "runc.sha256sum")} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("build-containerd: %v", err)
		}
	}
	return r
}
