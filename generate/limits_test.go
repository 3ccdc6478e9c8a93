package generate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/internal/yamlsafe"
)

// TestParseConfigRefusesCostlyDocuments: alias expansion, deep nesting and
// oversize documents are refused before decoding (see internal/yamlsafe), with
// the usual "parse GenerateConfig: " context and the line and limit.
func TestParseConfigRefusesCostlyDocuments(t *testing.T) {
	head := "apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\n"
	tests := []struct{ name, doc, err string }{
		{"anchor", head + "os: &o debian-12\nhostname: *o\n", "line 3: YAML anchors (&name) are not allowed"},
		{"alias expansion", head + "sshAuthorizedKeys: &a [k,k,k,k,k,k,k,k,k,k]\nx: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n", "line 3: YAML anchors"},
		{"nested flow", head + "os: " + strings.Repeat("[", 9000) + strings.Repeat("]", 9000) + "\n", "line 3: nesting deeper than the limit of 64 levels"},
		{"nested block", head + "sshAuthorizedKeys:\n" + strings.Repeat("- ", 9000) + "\n", "line 4: nesting deeper than the limit of 64 levels"},
		{"over 1 MiB", head + "cloudConfig: \"" + strings.Repeat("a", yamlsafe.MaxBytes) + "\"\n", "larger than the limit of 1048576 bytes (1 MiB)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.doc), t.TempDir())
			if err == nil || !strings.HasPrefix(err.Error(), "parse GenerateConfig: ") || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %v, want parse GenerateConfig: ...%s", err, tt.err)
			}
		})
	}
}

func TestLoadConfigRefusesLargeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "generate.yaml")
	data, err := os.ReadFile(filepath.Join("..", "examples", "openstack-ubuntu", "generate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	big := append(data, []byte("\n# "+strings.Repeat("x", yamlsafe.MaxBytes)+"\n")...)
	if err := os.WriteFile(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), "generate.yaml: document is larger than the limit of 1048576 bytes") {
		t.Fatalf("LoadConfig(%d bytes) = %v", len(big), err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path); err != nil {
		t.Fatalf("LoadConfig(example) = %v", err)
	}
}
