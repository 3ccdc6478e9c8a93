package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/fsroot"
)

// TestProxyUnits: with a proxy environment file, containerd gets a drop-in
// and the kubelet's drop-in reads it; neither copies a value.
func TestProxyUnits(t *testing.T) {
	srv := newArtifactServer(t)
	cfg := testConfig(srv, "debian-12")
	cfg.Proxy.EnvironmentFile = v1alpha1.ProxyEnvPath
	root := testRoot(t, "debian-12", &cfg)
	env := "http_proxy=http://u:secret@proxy:3128\n"
	os.WriteFile(filepath.Join(root, v1alpha1.ProxyEnvPath), []byte(env), 0o600)
	n := prepare(t, testOptions(root, newFakeHost(""), false, nil))
	if got, want := string(proxyDropIn(v1alpha1.ProxyEnvPath)), "# Written by provision.\n[Service]\nEnvironmentFile="+v1alpha1.ProxyEnvPath+"\n"; got != want {
		t.Errorf("containerd drop-in:\n%s\nwant:\n%s", got, want)
	}
	if d := string(n.kubeletDropIn()); !strings.Contains(d, "EnvironmentFile="+v1alpha1.ProxyEnvPath+"\n") || strings.Contains(d, "secret") {
		t.Errorf("kubelet drop-in:\n%s", d)
	}
	ts, err := n.Tasks(Base)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, task := range ts {
		found = found || task.Name() == tContainerdProxy
	}
	if !found {
		t.Errorf("base has no %s task", tContainerdProxy)
	}

	cfg.Proxy = v1alpha1.NodeProxy{}
	n = prepare(t, testOptions(testRoot(t, "debian-12", &cfg), newFakeHost(""), false, nil))
	if strings.Contains(string(n.kubeletDropIn()), "EnvironmentFile") {
		t.Error("kubelet drop-in reads an environment file without a proxy")
	}
}

// TestLoadProxyEnv: the file's variables reach the environment only when
// applied; a missing or bad file is an error naming no value.
func TestLoadProxyEnv(t *testing.T) {
	dir := t.TempDir()
	root, err := fsroot.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := v1alpha1.NodeProxy{EnvironmentFile: "/proxy.env"}
	if err := loadProxyEnv(root, p, true); err == nil || !strings.Contains(err.Error(), "proxy.environmentFile") {
		t.Errorf("missing file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "proxy.env"), []byte("PATH=secret-value\n"), 0o600)
	if err := loadProxyEnv(root, p, true); err == nil || strings.Contains(err.Error(), "secret-value") {
		t.Errorf("bad file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "proxy.env"), []byte("no_proxy=from-file.example\n"), 0o600)
	t.Setenv("no_proxy", "before")
	if err := loadProxyEnv(root, p, false); err != nil || os.Getenv("no_proxy") != "before" {
		t.Errorf("not applied: %v, no_proxy=%q", err, os.Getenv("no_proxy"))
	}
	if err := loadProxyEnv(root, p, true); err != nil || os.Getenv("no_proxy") != "from-file.example" {
		t.Errorf("applied: %v, no_proxy=%q", err, os.Getenv("no_proxy"))
	}
}
