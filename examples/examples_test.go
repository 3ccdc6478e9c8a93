// Package examples_test generates every example under examples/ and checks it
// with the real validators, so the documented examples cannot rot.
package examples_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	bconfig "github.com/coreos/butane/config"
	bcommon "github.com/coreos/butane/config/common"

	"github.com/provision-dev/provision/generate"
	"github.com/provision-dev/provision/generate/cloudinit"
	"github.com/provision-dev/provision/generate/ignition"
	"github.com/provision-dev/provision/osprofiles"
)

func TestExamples(t *testing.T) {
	configs, err := filepath.Glob(filepath.Join("*", "generate.yaml"))
	if err != nil || len(configs) < 2 {
		t.Fatalf("examples: %v %v", configs, err)
	}
	for _, cfg := range configs {
		t.Run(filepath.Dir(cfg), func(t *testing.T) {
			spec, err := generate.LoadConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			out, err := generate.Render(spec, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(out) > 8192 {
				t.Errorf("%d bytes, over the 8 KiB target", len(out))
			}
			switch generate.ResolvedFormat(spec) {
			case osprofiles.CloudInit:
				if _, err := exec.LookPath("cloud-init"); err != nil {
					t.Fatal("cloud-init not found: install it (apt-get install -y cloud-init)")
				}
				f := filepath.Join(t.TempDir(), "user-data")
				os.WriteFile(f, out, 0o600)
				if b, err := exec.Command("cloud-init", "schema", "--config-file", f).CombinedOutput(); err != nil || !strings.Contains(string(b), "Valid cloud-config") {
					t.Fatalf("cloud-init schema: %v\n%s", err, b)
				}
			case osprofiles.Butane:
				ign, rpt, err := bconfig.TranslateBytes(out, bcommon.TranslateBytesOptions{})
				if err != nil || len(rpt.Entries) > 0 {
					t.Fatalf("butane --strict: %v %s", err, rpt)
				}
				if r, err := ignition.Parse(spec.IgnitionVersion, ign); err != nil || len(r.Entries) > 0 {
					t.Fatalf("ignition: %v %s", err, r)
				}
			case osprofiles.Ignition:
				if r, err := ignition.Parse(spec.IgnitionVersion, out); err != nil || len(r.Entries) > 0 {
					t.Fatalf("ignition: %v %s", err, r)
				}
			}
			// The example's inputs are embedded byte for byte.
			ca, _ := os.ReadFile(spec.CACertFile)
			if generate.ResolvedFormat(spec) == osprofiles.CloudInit && !bytes.Equal(cloudInitFile(t, out, "/etc/kubernetes/pki/ca.crt"), ca) {
				t.Error("CA not embedded")
			}
		})
	}
}

// cloudInitFile returns the decoded contents of write_files' entry for path.
func cloudInitFile(t *testing.T, doc []byte, path string) []byte {
	t.Helper()
	files, err := cloudinit.Files(doc)
	if err != nil {
		t.Fatal(err)
	}
	return files[path]
}
