// Package validators checks userdata the way provision's own tests do:
// cloud-config with Debian's `cloud-init schema`, Ignition with the Ignition
// parser of the spec version the document declares (generate/ignition.Parse).
// A missing validator fails the test; nothing is skipped.
package validators

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vincent-petithory/dataurl"
	"sigs.k8s.io/yaml"

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
		doc = gunzip(t, doc)
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

// Files decodes the files the userdata writes, by path: cloud-config
// write_files (plain, b64 or gz+b64, the document gzipped or not) or Ignition
// storage.files (data URLs, gzip compression).
func Files(t testing.TB, format string, value []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	switch format {
	case bootstrapv1.FormatCloudConfig:
		if bytes.HasPrefix(value, []byte{0x1f, 0x8b}) {
			value = gunzip(t, value)
		}
		var doc struct {
			WriteFiles []struct{ Path, Content, Encoding string } `json:"write_files"`
		}
		if err := yaml.Unmarshal(value, &doc); err != nil {
			t.Fatalf("cloud-config: %v", err)
		}
		for _, f := range doc.WriteFiles {
			switch f.Encoding {
			case "":
				out[f.Path] = []byte(f.Content)
			case "b64", "base64":
				out[f.Path] = unbase64(t, f.Content)
			case "gz+b64", "gzip+base64":
				out[f.Path] = gunzip(t, unbase64(t, f.Content))
			default:
				t.Fatalf("%s: encoding %q", f.Path, f.Encoding)
			}
		}
	case bootstrapv1.FormatIgnition:
		var doc struct {
			Storage struct {
				Files []struct {
					Path     string
					Contents struct{ Source, Compression string }
				}
			}
		}
		if err := json.Unmarshal(value, &doc); err != nil {
			t.Fatalf("ignition: %v", err)
		}
		for _, f := range doc.Storage.Files {
			d, err := dataurl.DecodeString(f.Contents.Source)
			if err != nil {
				t.Fatalf("%s: %v", f.Path, err)
			}
			b := d.Data
			if f.Contents.Compression == "gzip" {
				b = gunzip(t, b)
			}
			out[f.Path] = b
		}
	default:
		t.Fatalf("format %q", format)
	}
	return out
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

func unbase64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64: %v", err)
	}
	return b
}

// Hostname is the hostname the userdata sets: cloud-config's hostname, or
// Ignition's /etc/hostname; "" if none.
func Hostname(t testing.TB, format string, value []byte) string {
	t.Helper()
	if format == bootstrapv1.FormatIgnition {
		return strings.TrimSpace(string(Files(t, format, value)["/etc/hostname"]))
	}
	if bytes.HasPrefix(value, []byte{0x1f, 0x8b}) {
		value = gunzip(t, value)
	}
	var doc struct{ Hostname string }
	if err := yaml.Unmarshal(value, &doc); err != nil {
		t.Fatalf("cloud-config: %v", err)
	}
	return doc.Hostname
}
