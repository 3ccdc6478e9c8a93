package v1alpha1

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/validation"
)

// TestEveryFieldDocumented: the public API documents every type and field.
func TestEveryFieldDocumented(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, e.Name(), nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	n := 0
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, s := range g.Specs {
				ts := s.(*ast.TypeSpec)
				st, ok := ts.Type.(*ast.StructType)
				if !ok || !ts.Name.IsExported() {
					continue
				}
				if g.Doc == nil {
					t.Errorf("type %s has no doc comment", ts.Name)
				}
				for _, fl := range st.Fields.List {
					n++
					if fl.Doc == nil && fl.Comment == nil {
						t.Errorf("%s.%s has no doc comment", ts.Name, fl.Names[0])
					}
				}
			}
		}
	}
	if n < 40 {
		t.Fatalf("checked only %d fields", n)
	}
}

func TestSetDefaults(t *testing.T) {
	var c NodeConfig
	c.Kubernetes.Version = "v1.37.2"
	c.Kubernetes.KubeconfigPath = "/custom/kubelet.conf"
	c.SetDefaults()
	want := NodeConfig{APIVersion: APIVersion, Kind: NodeConfigKind, Kubernetes: Kubernetes{Version: "v1.37.2", CACertPath: CACertPath,
		BootstrapKubeconfigPath: BootstrapKubeconfigPath, KubeconfigPath: "/custom/kubelet.conf", ClusterDomain: DefaultClusterDomain}, Containerd: Containerd{SandboxImage: "registry.k8s.io/pause:3.10.2"}}
	if got, w := yamlOf(t, c), yamlOf(t, want); got != w {
		t.Fatalf("got %s\nwant %s", got, w)
	}
	// The pause image follows the kubelet minor; a version outside the table
	// gets none (Validate refuses the version).
	for version, pause := range map[string]string{"v1.35.4": "registry.k8s.io/pause:3.10.1", "v1.31.4": "registry.k8s.io/pause:3.10", "v1.23.17": "registry.k8s.io/pause:3.6", "v1.99.0": "", "": ""} {
		c := NodeConfig{Kubernetes: Kubernetes{Version: version}}
		c.SetDefaults()
		if c.Containerd.SandboxImage != pause {
			t.Errorf("kubelet %q: sandbox image %q, want %q", version, c.Containerd.SandboxImage, pause)
		}
		c = NodeConfig{Kubernetes: Kubernetes{Version: version}, Containerd: Containerd{SandboxImage: "mirror.internal/pause:3.10"}}
		c.SetDefaults()
		if c.Containerd.SandboxImage != "mirror.internal/pause:3.10" {
			t.Errorf("kubelet %q: a given sandbox image was replaced by %q", version, c.Containerd.SandboxImage)
		}
	}
	var g GenerateConfig
	g.SetDefaults()
	if g.Arch != DefaultArch || g.ClusterDomain != DefaultClusterDomain {
		t.Fatalf("arch = %q, clusterDomain = %q", g.Arch, g.ClusterDomain)
	}
}

func yamlOf(t *testing.T, c NodeConfig) string {
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestGenerateConfigValidate: the config's own checks, all problems at once,
// each with its field path, in document order.
func TestGenerateConfigValidate(t *testing.T) {
	c := GenerateConfig{APIVersion: "v2", OS: "plan9", Format: "yaml", KubeletVersion: "1.31", APIServerURL: "http://x",
		Token: "secret-token", TokenFile: "/t", CloudConfigFile: "/c", Hostname: "A", SSHAuthorizedKeys: []string{"x"},
		ProvisionSource: "https://u:p@x/p", NodeIP: "x", Artifacts: Artifacts{"runc": Artifact{SHA256: "x"}}}
	es := c.Validate("")
	var fields []string
	for _, e := range es {
		fields = append(fields, e.Field)
		if strings.Contains(e.Message, "secret-token") || strings.Contains(e.Message, "u:p") {
			t.Errorf("%s quotes a secret: %s", e.Field, e.Message)
		}
	}
	want := "apiVersion os format kubeletVersion apiServerURL token caCert cloudProvider hostname sshAuthorizedKeys[0] provisionSource provisionSHA256 nodeIP artifacts.runc.sha256"
	if got := strings.Join(fields, " "); got != want {
		t.Fatalf("fields = %s\nwant     %s\n%v", got, want, validation.Errors(es))
	}
}
