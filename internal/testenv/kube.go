package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// EtcdVersion is the etcd hack/build-kube.sh builds next to Kubernetes.
const EtcdVersion = "v3.5.16"

// CrictlVersion is the crictl hack/build-kube.sh builds: the cri-tools release
// of the newest supported minor (the proxy serves v1.34.0 and v1.37.0, not
// v1.35.0/v1.36.0). crictl speaks CRI v1, so it works with every kubelet and
// containerd version the tests use.
const CrictlVersion = "v1.37.0"

// KubeBinaries runs hack/build-kube.sh for version, which builds kubelet,
// kube-apiserver, kube-controller-manager, kubectl and etcd from the Go module
// proxy into the cache once (a cold build takes about 8 minutes on 2 cores) and
// checks the cached binaries' versions on every later call. It returns the
// directory of the Kubernetes binaries and the path of etcd.
func KubeBinaries(t testing.TB, version string) (kubeDir, etcd string) {
	t.Helper()
	done := Phase(t, "kube binaries "+version)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	root := ModuleRoot(t)
	cache := CacheDir(t)
	out, err := run(ctx, root, []string{"PROVISION_TEST_CACHE=" + cache, "ETCD_VERSION=" + EtcdVersion, "CRICTL_VERSION=" + CrictlVersion},
		"bash", filepath.Join(root, "hack", "build-kube.sh"), version)
	if err != nil {
		t.Fatalf("hack/build-kube.sh %s: %v", version, err)
	}
	t.Logf("build-kube: %s", lastLines(out, 2))
	kubeDir = filepath.Join(cache, "kube", version)
	etcd = filepath.Join(cache, "etcd", EtcdVersion, "etcd")
	for _, p := range []string{filepath.Join(kubeDir, "kubelet"), filepath.Join(kubeDir, "kube-apiserver"), filepath.Join(kubeDir, "kube-controller-manager"), etcd} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("build-kube: %v", err)
		}
	}
	return kubeDir, etcd
}

// CrictlBinary returns the real crictl that hack/build-kube.sh builds (and caches)
// from the Go module proxy (ONLY=crictl: no Kubernetes build).
func CrictlBinary(t testing.TB) string {
	t.Helper()
	done := Phase(t, "crictl "+CrictlVersion)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	root := ModuleRoot(t)
	cache := CacheDir(t)
	if _, err := run(ctx, root, []string{"PROVISION_TEST_CACHE=" + cache, "CRICTL_VERSION=" + CrictlVersion, "ONLY=crictl"},
		"bash", filepath.Join(root, "hack", "build-kube.sh")); err != nil {
		t.Fatalf("hack/build-kube.sh (crictl %s): %v", CrictlVersion, err)
	}
	p := filepath.Join(cache, "crictl", CrictlVersion, "crictl")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("build-kube: %v", err)
	}
	return p
}

// KubeletBinary returns the kubelet of version that hack/build-kube.sh builds
// (ONLY=kubelet: the other binaries of that version are not built), for a node
// whose kubelet differs from the cluster's version.
func KubeletBinary(t testing.TB, version string) string {
	t.Helper()
	done := Phase(t, "kubelet "+version)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	root := ModuleRoot(t)
	cache := CacheDir(t)
	if _, err := run(ctx, root, []string{"PROVISION_TEST_CACHE=" + cache, "ONLY=kubelet"},
		"bash", filepath.Join(root, "hack", "build-kube.sh"), version); err != nil {
		t.Fatalf("hack/build-kube.sh (kubelet %s): %v", version, err)
	}
	p := filepath.Join(cache, "kube", version, "kubelet")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("build-kube: %v", err)
	}
	return p
}
