package nodeconfig

import (
	"strings"
	"testing"

	"github.com/provision-dev/provision/internal/artifacts"
)

func TestNewValidatesAndRoundTrips(t *testing.T) {
	c := New("v1.31.4", "arm64")
	c.OSProfile = "flatcar"
	c.Containerd.RegistryMirrors = map[string][]string{"docker.io": {"https://mirror.example"}}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(Marshal(New)): %v\n%s", err, out)
	}
	again, _ := got.Marshal()
	if string(again) != string(out) {
		t.Fatalf("not stable:\n%s\n---\n%s", out, again)
	}
	if !strings.Contains(got.Artifacts[artifacts.Kubelet].URL, "/v1.31.4/bin/linux/arm64/kubelet") {
		t.Fatalf("kubelet url = %s", got.Artifacts[artifacts.Kubelet].URL)
	}
}

func TestValidateErrors(t *testing.T) {
	base := func() NodeConfig { return New("v1.31.4", "amd64") }
	tests := []struct {
		name   string
		mutate func(*NodeConfig)
		field  string
		msg    string
	}{
		{"bad version", func(c *NodeConfig) { c.Kubernetes.Version = "1.31" }, "kubernetes.version", "vMAJOR.MINOR.PATCH"},
		{"bad arch", func(c *NodeConfig) { c.Arch = "s390x" }, "arch", "amd64 or arm64"},
		{"bad profile", func(c *NodeConfig) { c.OSProfile = "windows" }, "osProfile", "supported are"},
		{"http apiserver", func(c *NodeConfig) { c.Kubernetes.APIServerURL = "http://x:6443" }, "kubernetes.apiServerURL", "https://"},
		{"bad sha", func(c *NodeConfig) {
			c.Artifacts[artifacts.Kubelet] = Artifact{SHA256: "XYZ", URL: c.Artifacts[artifacts.Kubelet].URL}
		}, "artifacts.kubelet.sha256", "64 lower-case hex"},
		{"missing url", func(c *NodeConfig) {
			c.Artifacts[artifacts.CNIPlugins] = Artifact{URL: "", SHA256: c.Artifacts[artifacts.CNIPlugins].SHA256}
		}, "artifacts.cniPlugins.url", "required"},
		{"absent required artifact", func(c *NodeConfig) { delete(c.Artifacts, artifacts.Crictl) }, "artifacts.crictl.url", "required"},
		{"unknown artifact", func(c *NodeConfig) { c.Artifacts["kubectl"] = Artifact{URL: "https://m/kubectl"} }, "artifacts.kubectl", "unknown artifact (one of " + strings.Join(artifacts.ConfigNames(), ", ") + ")"},
		{"provision is no setting", func(c *NodeConfig) { c.Artifacts[artifacts.Provision] = Artifact{URL: "https://m/p"} }, "artifacts.provision", "unknown artifact"},
		{"optional artifact checked", func(c *NodeConfig) { c.Artifacts[artifacts.Runc] = Artifact{URL: "ftp://m/runc"} }, "artifacts.runc.url", "http(s)://"},
		{"relative path", func(c *NodeConfig) { c.Kubernetes.CACertPath = "ca.crt" }, "kubernetes.caCertPath", "absolute"},
		{"bad node ip", func(c *NodeConfig) { c.Kubernetes.NodeIP = "10.0.0" }, "kubernetes.nodeIP", "IP address"},
		{"bad mirror", func(c *NodeConfig) { c.Containerd.RegistryMirrors = map[string][]string{"docker.io": {"ftp://m"}} }, "containerd.registryMirrors[docker.io][0]", "http(s)"},
		{"bad kind", func(c *NodeConfig) { c.Kind = "Node" }, "kind", `must be "NodeConfig"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mutate(&c)
			errs, ok := AsErrors(c.Validate())
			if !ok || len(errs) != 1 {
				t.Fatalf("want exactly one field error, got %v", errs)
			}
			if errs[0].Field != tt.field || !strings.Contains(errs[0].Message, tt.msg) {
				t.Fatalf("got %q, want field %q message containing %q", errs[0].Error(), tt.field, tt.msg)
			}
		})
	}
}

func TestValidateCollectsAll(t *testing.T) {
	c := New("bad", "x")
	c.Kubernetes.NodeIP = "nope"
	errs, _ := AsErrors(c.Validate())
	if len(errs) != 3 {
		t.Fatalf("want 3 errors at once, got %d: %v", len(errs), errs)
	}
}

func TestParseStrict(t *testing.T) {
	_, err := Parse([]byte("apiVersion: provision.dev/v1alpha1\nkind: NodeConfig\nbogus: 1\n"))
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown field must be rejected, got %v", err)
	}
}

func TestValidatePackages(t *testing.T) {
	c := New("v1.31.4", "amd64")
	c.Packages.Apt = &AptRepository{URL: "ftp://x", Suite: "", SignedBy: "key.gpg", Trusted: true}
	errs, _ := AsErrors(c.Validate())
	want := []string{"packages.apt.components", "packages.apt.signedBy", "packages.apt.suite", "packages.apt.trusted", "packages.apt.url"}
	if len(errs) != len(want) {
		t.Fatalf("got %v", errs)
	}
	for i, f := range want {
		if errs[i].Field != f {
			t.Errorf("error %d field %q, want %q", i, errs[i].Field, f)
		}
	}
}
