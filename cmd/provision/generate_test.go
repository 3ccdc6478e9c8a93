package main

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/provision-dev/provision/generate/cloudinit"
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

// cloudInitText is every file a cloud-config writes, decoded (write_files
// entries may be gz+b64), concatenated in path order.
func cloudInitText(t *testing.T, doc string) string {
	t.Helper()
	files, err := cloudinit.Files([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(files)) {
		b.Write(files[p])
	}
	return b.String()
}

func fixture(name string) string {
	p, _ := filepath.Abs(filepath.Join("..", "..", "generate", "testdata", name))
	return p
}

func readmeArgs() []string {
	return []string{"--os", "ubuntu-22.04", "--kubelet-version", "v1.37.2", "--apiserver-url", "https://10.0.0.10:6443",
		"--token-file", fixture("token"), "--ca-cert", fixture("ca.crt"), "--cloud-provider", "external",
		"--cloud-config", fixture("cloud.conf"), "--cluster-dns", "10.96.0.10", "--hostname", "worker-1",
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
kubeletVersion: v1.36.3
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

// with returns args with flag set to value (replaced if present, else appended).
func with(args []string, flag, value string) []string {
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == flag {
			out[i+1] = value
			return out
		}
	}
	return append(out, flag, value)
}

// TestGenerateVersionPolicy (issue 10): the version table decides what generate
// accepts; a legacy minor renders with a warning on stderr, never silently.
func TestGenerateVersionPolicy(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		err     string // "" means it renders
		warning string // "" means no warning on stderr
	}{
		{"supported", readmeArgs(), "", ""},
		{"oldest supported", with(readmeArgs(), "--kubelet-version", "v1.35.4"), "", ""},
		{"legacy minor warns", with(readmeArgs(), "--kubelet-version", "v1.31.4"), "",
			"warning: kubelet 1.31 is not supported (end of life upstream 2025-10-28; supported are 1.35, 1.36, 1.37)"},
		{"in-tree provider on an old kubelet", with(with(readmeArgs(), "--kubelet-version", "v1.28.15"), "--cloud-provider", "openstack"), "",
			"warning: kubelet 1.28 is not supported"},
		{"in-tree provider on 1.37", with(readmeArgs(), "--cloud-provider", "openstack"),
			`--cloud-provider / cloudProvider: "openstack" is an in-tree cloud provider: kubelet v1.37.2 (1.29 and newer) takes only "external": use external and run the provider's cloud-controller-manager`, ""},
		{"in-tree provider on 1.29", with(with(readmeArgs(), "--kubelet-version", "v1.29.15"), "--cloud-provider", "aws"),
			`--cloud-provider / cloudProvider: "aws" is an in-tree cloud provider: kubelet v1.29.15`, ""},
		{"newer than the table", with(readmeArgs(), "--kubelet-version", "v1.38.0"),
			"--kubelet-version / kubeletVersion: kubelet v1.38.0 is newer than provision knows (newest 1.37; supported are 1.35, 1.36, 1.37): update provision", ""},
		{"older than the table", with(readmeArgs(), "--kubelet-version", "v1.20.15"),
			"--kubelet-version / kubeletVersion: kubelet v1.20.15 is older than provision renders (oldest 1.21; supported are 1.35, 1.36, 1.37)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := runGenerate(t, tt.args...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if stdout != "" {
					t.Fatal("output written on error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.warning == "" && strings.Contains(stderr, "warning") {
				t.Errorf("unexpected warning:\n%s", stderr)
			}
			if !strings.Contains(stderr, tt.warning) {
				t.Errorf("stderr lacks %q:\n%s", tt.warning, stderr)
			}
			if strings.Contains(stdout, "warning") {
				t.Errorf("the warning reached the userdata")
			}
		})
	}
}

// TestGenerateKubeletURLMismatch (issue 10): a config's kubelet URL naming
// another version than kubeletVersion is refused, naming both.
func TestGenerateKubeletURLMismatch(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ url, err string }{
		{"https://mirror.internal/release/v1.36.3/bin/linux/amd64/kubelet", "artifacts.kubelet.url: names kubelet v1.36.3 but kubeletVersion is v1.37.2"},
		{"https://mirror.internal/kubelet", ""},
		{"https://mirror.internal/release/v1.37.2/bin/linux/amd64/kubelet", ""},
	} {
		cfg := filepath.Join(dir, "generate.yaml")
		os.WriteFile(cfg, []byte("apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nartifacts:\n  kubelet:\n    url: "+tt.url+"\n"), 0o600)
		stdout, _, err := runGenerate(t, append(readmeArgs(), "--config", cfg)...)
		if tt.err == "" {
			if err != nil || !strings.Contains(cloudInitText(t, stdout), tt.url) {
				t.Errorf("%s: %v", tt.url, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: err = %v, want %q", tt.url, err, tt.err)
		}
	}
}

// TestGenerateNodeSettingsFlags: --cluster-dns, --node-label and --taint are
// repeatable and reach node.yaml; a refused label names its flag and field.
func TestGenerateNodeSettingsFlags(t *testing.T) {
	args := append(readmeArgs(), "--cluster-dns", "fd00::a", "--cluster-domain", "k8s.internal",
		"--node-label", "example.com/pool=gpu", "--node-label", "node.kubernetes.io/instance-type=m5.large",
		"--taint", "example.com/dedicated=gpu:NoSchedule", "--taint", "example.com/spot:PreferNoSchedule")
	stdout, _, err := runGenerate(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	files := cloudInitText(t, stdout)
	for _, want := range []string{"- 10.96.0.10\n", "- fd00::a\n", "clusterDomain: k8s.internal\n", "example.com/pool: gpu\n",
		"node.kubernetes.io/instance-type: m5.large\n", "- example.com/dedicated=gpu:NoSchedule\n", "- example.com/spot:PreferNoSchedule\n"} {
		if !strings.Contains(files, want) {
			t.Errorf("userdata lacks %q", want)
		}
	}
	_, _, err = runGenerate(t, append(readmeArgs(), "--node-label", "node-role.kubernetes.io/worker=")...)
	if err == nil || !strings.Contains(err.Error(), "--node-label / nodeLabels[node-role.kubernetes.io/worker]: label key") {
		t.Fatalf("err = %v", err)
	}
}
