package nodeconfig

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/internal/yamlsafe"
)

// costlyInputs are documents that cost go-yaml super-linear time (alias
// expansion, deep nesting) or are over the size limit. Before yamlsafe, on a
// 2-core machine shared with other jobs, "aliases 10^4" took ~4 ms for 175
// bytes (~25 ms per KiB) and the 9,000-level ones 40-120 ms for 18-45 KiB
// (2-7 ms per KiB). They are also in testdata/fuzz/FuzzParse.
func costlyInputs() []struct{ name, doc, err string } {
	return []struct{ name, doc, err string }{
		{"aliases 10^4", "a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n" +
			"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n", "line 1: YAML anchors (&name) are not allowed"},
		{"alias only", "apiVersion: provision.dev/v1alpha1\nkind: *k\n", "line 2: YAML aliases (*name) are not allowed"},
		{"9000 nested flow sequences", strings.Repeat("[", 9000) + strings.Repeat("]", 9000), "line 1: nesting deeper than the limit of 64 levels"},
		{"9000 nested flow mappings", "x: " + strings.Repeat("{a: ", 9000) + strings.Repeat("}", 9000), "line 1: nesting deeper than the limit of 64 levels"},
		{"9000 nested block sequences", strings.Repeat("- ", 9000), "line 1: nesting deeper than the limit of 64 levels"},
		{"over 1 MiB", "kind: \"" + strings.Repeat("a", yamlsafe.MaxBytes) + "\"\n", "larger than the limit of 1048576 bytes (1 MiB)"},
	}
}

func TestParseRefusesCostlyDocuments(t *testing.T) {
	for _, tt := range costlyInputs() {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil || !strings.HasPrefix(err.Error(), "parse node config: ") || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %v, want parse node config: ...%s", err, tt.err)
			}
		})
	}
}

func TestLoadRefusesLargeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.yaml")
	good, err := New("v1.37.2", "amd64").Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// A valid document padded with a comment past the limit.
	big := append(good, []byte("# "+strings.Repeat("x", yamlsafe.MaxBytes)+"\n")...)
	if err := os.WriteFile(path, big, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "node.yaml: document is larger than the limit of 1048576 bytes") {
		t.Fatalf("Load(%d bytes) = %v", len(big), err)
	}
	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("Load(valid) = %v", err)
	}
}

// BenchmarkParse reports ns/op and MB/s of Parse for a real node.yaml, the
// costly documents (now refused before decoding), and the largest accepted
// shapes: 1 MiB of flat keys and a long list, which decode in linear time.
//
//	go test ./node/nodeconfig -run '^$' -bench BenchmarkParse
func BenchmarkParse(b *testing.B) {
	full := New("v1.37.2", "arm64")
	full.Containerd.RegistryMirrors = map[string][]string{"docker.io": {"https://a.internal", "http://b.internal:5000"}}
	good, err := full.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	inputs := []struct{ name, doc string }{{"node.yaml", string(good)}}
	for _, tt := range costlyInputs() {
		inputs = append(inputs, struct{ name, doc string }{tt.name, tt.doc})
	}
	var keys, list strings.Builder
	keys.WriteString("containerd:\n  registryMirrors:\n")
	for i := 0; keys.Len() < yamlsafe.MaxBytes-64; i++ {
		fmt.Fprintf(&keys, "    m%06d.internal: []\n", i)
	}
	list.WriteString(string(good) + "  clusterDNS:\n")
	for list.Len() < yamlsafe.MaxBytes-64 {
		list.WriteString("  - 10.96.0.10\n")
	}
	inputs = append(inputs, struct{ name, doc string }{"1 MiB of keys", keys.String()}, struct{ name, doc string }{"1 MiB list", list.String()})
	for _, in := range inputs {
		data := []byte(in.doc)
		b.Run(strings.ReplaceAll(in.name, " ", "_"), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				_, _ = Parse(data)
			}
		})
	}
}
