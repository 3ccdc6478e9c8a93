package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errb.String(), err
}

func TestNodePlanCLI(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=flatcar\nVERSION_ID=4081.2.0\n"), 0o644)
	out, logs, err := runCLI(t, "node", "plan", "--root", root, "--kubelet-version", "v1.37.2", "--apiserver-url", "https://10.0.0.1:6443", "--token", "abcdef.0123456789abcdef")
	if err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	for _, want := range []string{"profile flatcar (from /etc/os-release)", "base   would-change  artifacts/download", "join   would-change  kubelet/bootstrap-kubeconfig", "/opt/bin/kubelet"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+logs, "0123456789abcdef") {
		t.Errorf("token printed")
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "etc")); len(entries) != 1 {
		t.Errorf("plan wrote files under /etc: %v", entries)
	}
	// --dry-run on base prints only base.
	out, _, err = runCLI(t, "node", "base", "--dry-run", "--root", root, "--kubelet-version", "v1.37.2")
	if err != nil || strings.Contains(out, "join ") || !strings.Contains(out, "base ") {
		t.Errorf("base --dry-run: %v\n%s", err, out)
	}
}

func TestNodeCLIErrors(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=arch\n"), 0o644)
	_, _, err := runCLI(t, "node", "plan", "--root", root, "--kubelet-version", "v1.37.2")
	if err == nil || !strings.Contains(err.Error(), `unsupported OS "arch"`) {
		t.Errorf("err = %v", err)
	}
	_, _, err = runCLI(t, "node", "plan", "--root", root, "--os", "plan9", "--kubelet-version", "v1.37.2")
	if err == nil || !strings.Contains(err.Error(), "supported are") {
		t.Errorf("err = %v", err)
	}
	_, _, err = runCLI(t, "node", "--root", root, "--config", filepath.Join(root, "missing.yaml"))
	if err == nil {
		t.Errorf("missing explicit config accepted")
	}
}

// TestNodeVersionPolicyCLI (issue 10): provision node refuses a version outside
// the table and an in-tree provider on 1.29+, and warns on stderr for a legacy minor.
func TestNodeVersionPolicyCLI(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=flatcar\nVERSION_ID=4081.2.0\n"), 0o644)
	tests := []struct {
		name         string
		args         []string
		err, warning string
	}{
		{"supported", []string{"--kubelet-version", "v1.37.2", "--cloud-provider", "external"}, "", ""},
		{"legacy warns", []string{"--kubelet-version", "v1.31.4"}, "", "warning: kubelet 1.31 is not supported (end of life upstream 2025-10-28; supported are 1.35, 1.36, 1.37)"},
		{"in-tree on 1.37", []string{"--kubelet-version", "v1.37.2", "--cloud-provider", "openstack"},
			`--cloud-provider / kubernetes.cloudProvider: "openstack" is an in-tree cloud provider: kubelet v1.37.2 (1.29 and newer) takes only "external": use external and run the provider's cloud-controller-manager`, ""},
		{"newer than the table", []string{"--kubelet-version", "v1.38.0"},
			"--kubelet-version / kubernetes.version: kubelet v1.38.0 is newer than provision knows (newest 1.37; supported are 1.35, 1.36, 1.37)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, err := runCLI(t, append([]string{"node", "plan", "--root", root}, tt.args...)...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			if tt.warning == "" && strings.Contains(stderr, "warning:") {
				t.Errorf("unexpected warning:\n%s", stderr)
			}
			if !strings.Contains(stderr, tt.warning) || strings.Contains(out, "warning:") {
				t.Errorf("stderr lacks %q (or stdout has it):\n%s", tt.warning, stderr)
			}
		})
	}
}
