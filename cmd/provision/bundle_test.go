package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/node/nodeconfig"
)

// TestBundleCLI: bundle from a node config served on loopback, verify it, plan
// base from it with the server stopped.
func TestBundleCLI(t *testing.T) {
	files := map[string][]byte{} // /FILE of every artifact of internal/artifacts
	for _, a := range artifacts.Configurable() {
		files["/"+a.File] = []byte(a.Description)
	}
	srv := testutil.NewArtifactServer(t, files)
	cfg := nodeconfig.New("v1.37.2", "amd64")
	cfg.OSProfile = "flatcar" // no package manager: the dry run needs no chroot tools
	for _, a := range artifacts.Configurable() {
		cfg.Artifacts[a.Name] = v1alpha1.Artifact{URL: srv.URL + "/" + a.File, AllowHTTP: true} // the test server is plain http
	}
	y, _ := cfg.Marshal()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "node.yaml")
	os.WriteFile(cfgPath, y, 0o644)
	out := filepath.Join(dir, "bundle.tar")

	stdout, logs, err := runCLI(t, "bundle", "--config", cfgPath, "-o", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	for _, want := range []string{"kubelet v1.37.2, flatcar, amd64", "kubelet", "cniPlugins", srv.URL + "/crictl.tgz"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("bundle output lacks %q:\n%s", want, stdout)
		}
	}
	sum, _ := os.ReadFile(out + ".sha256")
	srv.Close()
	if stdout, _, err = runCLI(t, "bundle", "verify", out, "--sha256", strings.Fields(string(sum))[0]); err != nil {
		t.Errorf("bundle verify: %v\n%s", err, stdout)
	}
	if _, _, err = runCLI(t, "bundle", "verify", out, "--sha256", strings.Repeat("0", 64)); err == nil || !strings.Contains(err.Error(), "bundle file: sha256 expected") {
		t.Errorf("bundle verify with a wrong pin: %v", err)
	}

	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/provision"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/provision/node.yaml"), y, 0o644)
	stdout, logs, err = runCLI(t, "node", "base", "--dry-run", "--root", root, "--bundle", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	if !strings.Contains(stdout, "bundle/install") || !strings.Contains(stdout, "verify bundle.tar and extract it to /var/lib/provision/bundle") {
		t.Errorf("plan lacks the bundle task:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/provision/bundle")); err == nil {
		t.Errorf("--dry-run extracted the bundle")
	}
	if _, _, err = runCLI(t, "node", "join", "--root", root, "--bundle", out); err == nil || !strings.Contains(err.Error(), "--bundle and --bundle-sha256 are for base") {
		t.Errorf("join --bundle: %v", err)
	}
}

func TestBundleCLIErrors(t *testing.T) {
	dir := t.TempDir()
	_, _, err := runCLI(t, "bundle", "--kubelet-version", "1.31", "--os", "plan9", "--arch", "s390x")
	for _, want := range []string{"--kubelet-version: must be vMAJOR.MINOR.PATCH", "--os: unknown OS profile", "--arch: must be amd64 or arm64", "--output: is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	// A version outside provision's table has no default artifacts: refused, naming it.
	_, _, err = runCLI(t, "bundle", "--kubelet-version", "v1.38.0", "--os", "debian-12", "-o", filepath.Join(dir, "b.tar"))
	if err == nil || !strings.Contains(err.Error(), "--kubelet-version: kubelet v1.38.0 is newer than provision knows") {
		t.Errorf("err = %v", err)
	}
	cfg := nodeconfig.New("v1.37.2", "arm64")
	cfg.OSProfile = "debian-12"
	y, _ := cfg.Marshal()
	cfgPath := filepath.Join(dir, "node.yaml")
	os.WriteFile(cfgPath, y, 0o644)
	_, _, err = runCLI(t, "bundle", "--config", cfgPath, "--kubelet-version", "v1.36.3", "--arch", "amd64", "--os", "rocky-9", "-o", filepath.Join(dir, "b.tar"))
	for _, want := range []string{"--kubelet-version: v1.36.3 conflicts", "--arch: amd64 conflicts", "--os: rocky-9 conflicts"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("a failed bundle left files: %v", entries)
	}
}

// TestBundleCLITarballRuntime: a Debian node config with containerd.install:
// tarball bundles containerd and runc too, unpinned, checked through their
// checksum conventions (URL.sha256sum; runc.sha256sum beside the binary).
func TestBundleCLITarballRuntime(t *testing.T) {
	files := map[string][]byte{}
	for _, a := range artifacts.Configurable() {
		files["/"+a.File] = []byte(a.Description)
	}
	files["/r/runc.amd64"], files["/r/runc.arm64"] = []byte("runc amd64"), []byte("runc arm64")
	srv := testutil.NewArtifactServer(t, files)
	cfg := nodeconfig.New("v1.31.4", "amd64")
	cfg.OSProfile = "debian-12"
	cfg.Containerd.Install = v1alpha1.InstallTarball
	for _, a := range artifacts.Configurable() {
		cfg.Artifacts[a.Name] = v1alpha1.Artifact{URL: srv.URL + "/" + a.File, AllowHTTP: true}
	}
	cfg.Artifacts[artifacts.Runc] = v1alpha1.Artifact{URL: srv.URL + "/r/runc.amd64", AllowHTTP: true}
	y, _ := cfg.Marshal()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "node.yaml")
	os.WriteFile(cfgPath, y, 0o644)
	stdout, logs, err := runCLI(t, "bundle", "--config", cfgPath, "-o", filepath.Join(dir, "bundle.tar"))
	if err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	for _, want := range []string{"containerd", srv.URL + "/r/runc.amd64"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("bundle output lacks %q:\n%s", want, stdout)
		}
	}
	if srv.Hits("/containerd.tgz.sha256sum") != 1 || srv.Hits("/r/runc.sha256sum") != 1 {
		t.Errorf("checksum files fetched: containerd %d, runc %d; want 1 each", srv.Hits("/containerd.tgz.sha256sum"), srv.Hits("/r/runc.sha256sum"))
	}

	cfg.OSProfile = "flatcar"
	y, _ = cfg.Marshal()
	os.WriteFile(cfgPath, y, 0o644)
	if _, _, err := runCLI(t, "bundle", "--config", cfgPath, "-o", filepath.Join(dir, "b2.tar")); err == nil || !strings.Contains(err.Error(), "containerd.install: flatcar ships containerd in its image") {
		t.Errorf("flatcar with containerd.install: tarball: %v", err)
	}
}
