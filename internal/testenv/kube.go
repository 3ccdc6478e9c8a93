package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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
// kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and etcd from
// the Go module proxy into the cache once (a cold build takes about 8 minutes on
// 2 cores) and checks the cached binaries' versions on every later call,
// building only those missing. It returns the
// directory of the Kubernetes binaries and the path of etcd.
func KubeBinaries(t testing.TB, version string) (kubeDir, etcd string) {
	t.Helper()
	done := Phase(t, "kube binaries "+version)
	defer done()
	out := buildKube(t, 40*time.Minute, []string{"ETCD_VERSION=" + EtcdVersion, "CRICTL_VERSION=" + CrictlVersion}, version)
	t.Logf("build-kube: %s", lastLines(out, 2))
	cache := CacheDir(t)
	kubeDir = filepath.Join(cache, "kube", version)
	etcd = filepath.Join(cache, "etcd", EtcdVersion, "etcd")
	bins := []string{etcd}
	for _, b := range []string{"kubelet", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"} {
		bins = append(bins, filepath.Join(kubeDir, b))
	}
	mustExist(t, bins...)
	return kubeDir, etcd
}

// buildKube runs hack/build-kube.sh with the cache and env (and args), bounded
// by timeout, and returns its output; a failure fails the test.
func buildKube(t testing.TB, timeout time.Duration, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	root := ModuleRoot(t)
	env = append([]string{"PROVISION_TEST_CACHE=" + CacheDir(t)}, env...)
	out, err := run(ctx, root, env, append([]string{"bash", filepath.Join(root, "hack", "build-kube.sh")}, args...)...)
	if err != nil {
		t.Fatalf("hack/build-kube.sh %s %s: %v", strings.Join(env[1:], " "), strings.Join(args, " "), err)
	}
	return out
}

// mustExist fails the test unless every path exists.
func mustExist(t testing.TB, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("build-kube: %v", err)
		}
	}
}

// CrictlBinary returns the real crictl that hack/build-kube.sh builds (and caches)
// from the Go module proxy (ONLY=crictl: no Kubernetes build).
func CrictlBinary(t testing.TB) string {
	t.Helper()
	done := Phase(t, "crictl "+CrictlVersion)
	defer done()
	buildKube(t, 15*time.Minute, []string{"CRICTL_VERSION=" + CrictlVersion, "ONLY=crictl"})
	p := filepath.Join(CacheDir(t), "crictl", CrictlVersion, "crictl")
	mustExist(t, p)
	return p
}

// KubeletBinary returns the kubelet of version that hack/build-kube.sh builds
// (ONLY=kubelet: the other binaries of that version are not built), for a node
// whose kubelet differs from the cluster's version.
func KubeletBinary(t testing.TB, version string) string {
	t.Helper()
	done := Phase(t, "kubelet "+version)
	defer done()
	buildKube(t, 40*time.Minute, []string{"ONLY=kubelet"}, version)
	p := filepath.Join(CacheDir(t), "kube", version, "kubelet")
	mustExist(t, p)
	return p
}
