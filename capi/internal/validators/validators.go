// Package validators checks userdata the way provision's own tests do:
// cloud-config with Debian's `cloud-init schema`, Ignition with the Ignition
// parser of the spec version the document declares (generate/ignition.Parse).
// A missing validator fails the test; nothing is skipped.
package validators

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv1 "github.com/provision-dev/provision/capi/api/v1alpha1"
	"github.com/provision-dev/provision/generate/ignition"
)

// Userdata fails t unless value, in the data Secret's format, passes its validator.
func Userdata(t testing.TB, format string, value []byte) {
	t.Helper()
	switch format {
	case bootstrapv1.FormatCloudConfig:
		CloudConfig(t, value)
	case bootstrapv1.FormatIgnition:
		Ignition(t, value)
	default:
		t.Fatalf("format %q is neither %s nor %s", format, bootstrapv1.FormatCloudConfig, bootstrapv1.FormatIgnition)
	}
}

// CloudConfig runs `cloud-init schema --config-file` on doc (gunzipped first if gzipped).
func CloudConfig(t testing.TB, doc []byte) {
	t.Helper()
	if _, err := exec.LookPath("cloud-init"); err != nil {
		t.Fatal("cloud-init not found: install it (apt-get install -y cloud-init)")
	}
	if bytes.HasPrefix(doc, []byte{0x1f, 0x8b}) {
		r, err := gzip.NewReader(bytes.NewReader(doc))
		if err != nil {
			t.Fatalf("gunzip: %v", err)
		}
		if doc, err = io.ReadAll(r); err != nil {
			t.Fatalf("gunzip: %v", err)
		}
	}
	if !bytes.HasPrefix(doc, []byte("#cloud-config\n")) {
		t.Fatalf("cloud-config does not start with #cloud-config")
	}
	f := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(f, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("cloud-init", "schema", "--config-file", f).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Valid cloud-config") {
		t.Fatalf("cloud-init schema: %v\n%s", err, out)
	}
}

// Ignition parses doc with the Ignition parser of its declared spec version;
// any report entry (warning or error) fails.
func Ignition(t testing.TB, doc []byte) {
	t.Helper()
	var head struct {
		Ignition struct{ Version string } `json:"ignition"`
	}
	if err := json.Unmarshal(doc, &head); err != nil {
		t.Fatalf("ignition: %v", err)
	}
	r, err := ignition.Parse(head.Ignition.Version, doc)
	if err != nil || len(r.Entries) > 0 {
		t.Fatalf("ignition %s: %v %s", head.Ignition.Version, err, r)
	}
}
