package yamlsafe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestCheck(t *testing.T) {
	deepIndent := ""
	for i := 0; i < MaxDepth+1; i++ {
		deepIndent += strings.Repeat(" ", i) + "k:\n"
	}
	tests := []struct {
		name string
		doc  string
		err  string // substring; empty means accepted
	}{
		{"node config", "apiVersion: provision.dev/v1alpha1\nkind: NodeConfig\nkubernetes:\n  apiServerURL: https://[fd00::1]:6443\n  clusterDNS:\n  - 10.96.0.10\ncontainerd:\n  registryMirrors:\n    docker.io: [\"https://a.internal\", 'http://b:5000']\n", ""},
		{"& and * inside scalars", "url: https://m/x?a=1&b=2\nimage: reg/p:*latest\nsandboxImage: x &y *z\nq: \"&a\"\ns: '*b'\n# comment &c *d\nt: v # &e\n", ""},
		{"block scalar content", "cloudConfig: |\n  [Global]\n  *not: &an alias\n  - - - - - - -\n  [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\nkind: x\n", ""},
		{"multi-line quoted", "a: \"x\n  *y [[[[\n  z\"\nb: 'p\n  &q'\n", ""},
		{"folded plain scalar", "a: long text\n  *continued &here\n- b\n", ""},
		{"flow collections", "a: {b: [c, {d: e}], f: \"g\"}\nh: [\n  1,\n  2]\n", ""},
		{"JSON", `{"apiVersion":"provision.dev/v1alpha1","kind":"NodeConfig","a":{"b":[1,2]}}`, ""},
		{"tag", "a: !!str 5\n", ""},
		{"anchor", "a: &x [1]\nb: *x\n", "line 1: YAML anchors"},
		{"alias", "a: [1]\nb: *x\n", "line 2: YAML aliases"},
		{"alias key", "*x : 1\n", "line 1: YAML aliases"},
		{"alias in flow", "a: [1,\n *x]\n", "line 2: YAML aliases"},
		{"alias in sequence", "a:\n- *x\n", "line 2: YAML aliases"},
		{"anchor after tag", "a: !!map &x {}\n", "line 1: YAML anchors"},
		{"alias after quoted line", "a: \"x\n y\"\nb: *c\n", "line 3: YAML aliases"},
		{"alias after block scalar", "a: |\n  t\nb: *c\n", "line 3: YAML aliases"},
		{"alias after plain continuation", "a: b\n  c\nd: *e\n", "line 3: YAML aliases"},
		{"deep flow", strings.Repeat("[", MaxDepth+1), "line 1: nesting deeper than the limit of 64 levels"},
		{"deep flow map", "x: " + strings.Repeat("{a: ", MaxDepth+1), "nesting deeper"},
		{"deep compact sequence", strings.Repeat("- ", MaxDepth+1), "nesting deeper"},
		{"deep block mapping", deepIndent, "line 65: nesting deeper"},
		{"max flow", strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1), ""},
		{"too large", "a: \"" + strings.Repeat("x", MaxBytes) + "\"\n", "larger than the limit of 1048576 bytes (1 MiB)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check([]byte(tt.doc))
			if tt.err == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %v, want an error containing %q", err, tt.err)
			}
		})
	}
}

// TestCheckAgreesWithDecoder: every accepted document of the table that the
// real decoder reads decodes to a value without an alias, and every refused
// anchor/alias document really holds one for the decoder (it decodes or fails
// on the alias), so Check's lexical reading matches go-yaml's on these cases.
func TestCheckAgreesWithDecoder(t *testing.T) {
	for _, doc := range []string{
		"a: &x [1]\nb: *x\n",
		"a: [1,\n &x 2, *x]\n",
		"a:\n- &x 1\n- *x\n",
	} {
		var v any
		if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatalf("decoder refuses %q: %v", doc, err)
		}
		if err := Check([]byte(doc)); err == nil {
			t.Errorf("Check accepts the aliases of %q", doc)
		}
	}
	for _, doc := range []string{
		"url: https://m/x?a=1&b=2\n",
		"a: x &y *z\n",
		"a: |\n  *x\n",
		"a: long text\n  *continued\n",
	} {
		var v map[string]string
		if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatalf("decoder refuses %q: %v", doc, err)
		}
		if err := Check([]byte(doc)); err != nil {
			t.Errorf("Check refuses %q (%v); decoded: %q", doc, err, v)
		}
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.yaml")
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(small, []byte("a: b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, make([]byte, MaxBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := ReadFile(small); err != nil || string(data) != "a: b\n" {
		t.Fatalf("small: %q %v", data, err)
	}
	if _, err := ReadFile(big); err == nil || !strings.Contains(err.Error(), "big.yaml: document is larger than the limit") {
		t.Fatalf("big: %v", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Fatalf("missing: %v", err)
	}
}

// BenchmarkCheck: the pre-check is one pass over the bytes (MB/s).
func BenchmarkCheck(b *testing.B) {
	var doc strings.Builder
	doc.WriteString("containerd:\n  registryMirrors:\n")
	for doc.Len() < MaxBytes-64 {
		doc.WriteString("    docker.io: [\"https://a.internal/x?a=1&b=2\", 'http://b:5000'] # *c\n")
	}
	data := []byte(doc.String())
	if err := Check(data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_ = Check(data)
	}
}
