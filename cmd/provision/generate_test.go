package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runGenerate(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	root := newRootCmd()
	root.SetOut(&o)
	root.SetErr(&e)
	root.SetArgs(append([]string{"generate"}, args...))
	err = root.Execute()
	return o.String(), e.String(), err
}

func fixture(name string) string {
	p, _ := filepath.Abs(filepath.Join("..", "..", "generate", "testdata", name))
	return p
}

func readmeArgs() []string {
	return []string{"--os", "ubuntu-22.04", "--kubelet-version", "v1.31.4", "--apiserver-url", "https://10.0.0.10:6443",
		"--token-file", fixture("token"), "--ca-cert", fixture("ca.crt"), "--cloud-provider", "openstack",
		"--cloud-config", fixture("cloud.conf"), "--hostname", "worker-1",
		"--ssh-authorized-key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3f5Q2Xq0yQmQ7cX9mJtq3VbqHq3oYkq7o0Jm3sR1z ops",
		"--ssh-authorized-key", "ssh-rsa AAAAB3NzaC1yc2EA second",
		"--provision-source", "https://example.com/provision/v0.1.0/provision-linux-amd64",
		"--provision-sha256", strings.Repeat("ab", 32)}
}

func TestGenerateWritesOutputAtomically0600(t *testing.T) {
	out := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runGenerate(t, append(readmeArgs(), "-o", out)...)
	if err != nil {
		t.Fatal(err)
	}
	if stdout != "" {
		t.Fatalf("stdout not empty with -o: %q", stdout)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("output mode %v %v", st.Mode(), err)
	}
	b, _ := os.ReadFile(out)
	if !bytes.HasPrefix(b, []byte("#cloud-config\n")) || !bytes.Contains(b, []byte("second")) {
		t.Fatalf("output: %.60s", b)
	}
	for _, s := range []string{"bytes raw", "gzip", "base64", "AWS EC2", "OpenStack Nova", "Azure", "Hetzner", "GCP", "vSphere", "fits"} {
		if !strings.Contains(stderr, s) {
			t.Errorf("size report lacks %q:\n%s", s, stderr)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".user-data.tmp-*")); len(m) > 0 {
		t.Fatalf("temp files left: %v", m)
	}
	// Deterministic: a second run gives the same bytes, and stdout equals the file.
	stdout, _, err = runGenerate(t, readmeArgs()...)
	if err != nil || stdout != string(b) {
		t.Fatalf("stdout differs from -o output (err %v)", err)
	}
}

func TestGenerateFailureWritesNothing(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "user-data")
	args := append(readmeArgs(), "-o", out, "--token", "abcdef.SECRETSECRETSECRE", "--hostname", "bad_name", "--kubelet-version", "1.31")
	stdout, stderr, err := runGenerate(t, args...)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, s := range []string{"--token-file / token:", "--hostname / hostname:", "--kubelet-version / kubeletVersion:"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q: %v", s, err)
		}
	}
	if strings.Contains(err.Error()+stderr+stdout, "SECRET") || strings.Contains(err.Error(), "abcdef") {
		t.Fatal("the token leaked")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 || stdout != "" {
		t.Fatalf("something was written: %v %q", entries, stdout)
	}
}

func TestGenerateMaxSize(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "user-data")
	_, stderr, err := runGenerate(t, append(readmeArgs(), "-o", out, "--max-size", "1000")...)
	if err == nil || !strings.Contains(err.Error(), "--max-size") || !strings.Contains(err.Error(), "over the limit of 1000") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(stderr, "bytes raw") {
		t.Fatal("no size report")
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("output written over --max-size")
	}
	if _, _, err := runGenerate(t, append(readmeArgs(), "-o", out, "--max-size", "16384")...); err != nil {
		t.Fatal(err)
	}
}

func TestGenerateConfigMergedWithFlags(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{"ca.crt": fixture("ca.crt"), "token": fixture("token")} {
		b, _ := os.ReadFile(src)
		os.WriteFile(filepath.Join(dir, name), b, 0o600)
	}
	cfg := filepath.Join(dir, "generate.yaml")
	os.WriteFile(cfg, []byte(`apiVersion: provision.dev/v1alpha1
kind: GenerateConfig
os: flatcar
format: butane
kubeletVersion: v1.30.0
apiServerURL: https://10.0.0.10:6443
tokenFile: token
caCertFile: ca.crt
hostname: from-config
sshAuthorizedKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3f5Q2Xq0yQmQ7cX9mJtq3VbqHq3oYkq7o0Jm3sR1z cfg"]
provisionSource: https://example.com/p
provisionSHA256: `+strings.Repeat("cd", 32)+"\n"), 0o600)
	stdout, _, err := runGenerate(t, "--config", cfg, "--hostname", "from-flag", "--format", "ignition")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stdout, `{"ignition":{"version":"3.4.0"}`) {
		t.Fatalf("--format flag did not override: %.50s", stdout)
	}
	if !strings.Contains(stdout, "from-flag") || strings.Contains(stdout, "from-config") {
		t.Fatal("--hostname flag did not override the config")
	}
	if !strings.Contains(stdout, `"name":"core"`) || !strings.Contains(stdout, " cfg") {
		t.Fatal("config's SSH key for core missing")
	}
	stdout, _, err = runGenerate(t, "--config", cfg)
	if err != nil || !strings.HasPrefix(stdout, "variant: flatcar\n") {
		t.Fatalf("config alone: %v %.40s", err, stdout)
	}
	if _, _, err := runGenerate(t, "--config", filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("missing config accepted")
	}
}
