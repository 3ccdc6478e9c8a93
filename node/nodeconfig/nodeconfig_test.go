package nodeconfig

import (
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/osprofiles"
)

func TestNewValidatesAndRoundTrips(t *testing.T) {
	c := New("v1.37.2", "arm64")
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
	if !strings.Contains(got.Artifacts[artifacts.Kubelet].URL, "/v1.37.2/bin/linux/arm64/kubelet") {
		t.Fatalf("kubelet url = %s", got.Artifacts[artifacts.Kubelet].URL)
	}
}

func TestValidateErrors(t *testing.T) {
	base := func() v1alpha1.NodeConfig { return New("v1.37.2", "amd64") }
	tests := []struct {
		name   string
		mutate func(*v1alpha1.NodeConfig)
		field  string
		msg    string
	}{
		{"bad version", func(c *v1alpha1.NodeConfig) { c.Kubernetes.Version = "1.31" }, "kubernetes.version", "vMAJOR.MINOR.PATCH"},
		{"bad arch", func(c *v1alpha1.NodeConfig) { c.Arch = "s390x" }, "arch", "amd64 or arm64"},
		{"bad profile", func(c *v1alpha1.NodeConfig) { c.OSProfile = "windows" }, "osProfile", "supported are"},
		{"http apiserver", func(c *v1alpha1.NodeConfig) { c.Kubernetes.APIServerURL = "http://x:6443" }, "kubernetes.apiServerURL", "https://"},
		{"bad sha", func(c *v1alpha1.NodeConfig) {
			c.Artifacts[artifacts.Kubelet] = v1alpha1.Artifact{SHA256: "XYZ", URL: c.Artifacts[artifacts.Kubelet].URL}
		}, "artifacts.kubelet.sha256", "64 lower-case hex"},
		{"missing url", func(c *v1alpha1.NodeConfig) {
			c.Artifacts[artifacts.CNIPlugins] = v1alpha1.Artifact{URL: "", SHA256: c.Artifacts[artifacts.CNIPlugins].SHA256}
		}, "artifacts.cniPlugins.url", "required"},
		{"absent required artifact", func(c *v1alpha1.NodeConfig) { delete(c.Artifacts, artifacts.Crictl) }, "artifacts.crictl.url", "required"},
		{"unknown artifact", func(c *v1alpha1.NodeConfig) { c.Artifacts["kubectl"] = v1alpha1.Artifact{URL: "https://m/kubectl"} }, "artifacts.kubectl", "unknown artifact (one of " + strings.Join(artifacts.ConfigNames(), ", ") + ")"},
		{"provision is no setting", func(c *v1alpha1.NodeConfig) { c.Artifacts[artifacts.Provision] = v1alpha1.Artifact{URL: "https://m/p"} }, "artifacts.provision", "unknown artifact"},
		{"optional artifact checked", func(c *v1alpha1.NodeConfig) { c.Artifacts[artifacts.Runc] = v1alpha1.Artifact{URL: "ftp://m/runc"} }, "artifacts.runc.url", "must be an https:// or file:// URL"},
		{"relative path", func(c *v1alpha1.NodeConfig) { c.Kubernetes.CACertPath = "ca.crt" }, "kubernetes.caCertPath", "absolute"},
		{"bad node ip", func(c *v1alpha1.NodeConfig) { c.Kubernetes.NodeIP = "10.0.0" }, "kubernetes.nodeIP", "IP address"},
		{"bad mirror", func(c *v1alpha1.NodeConfig) {
			c.Containerd.RegistryMirrors = map[string][]string{"docker.io": {"ftp://m"}}
		}, "containerd.registryMirrors[docker.io][0]", "must be an https:// or http:// URL"},
		{"bad kind", func(c *v1alpha1.NodeConfig) { c.Kind = "Node" }, "kind", `must be "NodeConfig"`},
		{"relative proxy env file", func(c *v1alpha1.NodeConfig) { c.Proxy.EnvironmentFile = "proxy.env" }, "proxy.environmentFile", "clean absolute path"},
		{"proxy env file with a newline", func(c *v1alpha1.NodeConfig) { c.Proxy.EnvironmentFile = "/p\nExecStartPre=/bin/sh" }, "proxy.environmentFile", "clean absolute path"},
		// Issue 12: every value that reaches a unit line, a command line or a file path.
		{"cloud provider with CR", func(c *v1alpha1.NodeConfig) { c.Kubernetes.CloudProvider = "external\r" }, "kubernetes.cloudProvider", `must be a provider name such as external (lower-case letters, digits, '-'), got "external\r"`},
		{"cloud provider with newline", func(c *v1alpha1.NodeConfig) { c.Kubernetes.CloudProvider = "external\nExecStartPre=/bin/sh" }, "kubernetes.cloudProvider", "must be a provider name"},
		{"path with dot-dot", func(c *v1alpha1.NodeConfig) { c.Kubernetes.KubeconfigPath = "/etc/kubernetes/../shadow" }, "kubernetes.kubeconfigPath", "must be a clean absolute path (no '..', '//', spaces or control characters)"},
		{"path with space", func(c *v1alpha1.NodeConfig) { c.Kubernetes.CloudConfigPath = "/etc/cloud config" }, "kubernetes.cloudConfigPath", "must be a clean absolute path"},
		{"kubelet config", func(c *v1alpha1.NodeConfig) {
			c.Kubernetes.KubeletConfig = map[string]any{"maxPods": 50, "evictionHrd": map[string]any{}}
		}, "kubernetes.kubeletConfig.evictionHrd", "is not a field of the kubelet's KubeletConfiguration"},
		{"node label", func(c *v1alpha1.NodeConfig) {
			c.Kubernetes.NodeLabels = map[string]string{"node-role.kubernetes.io/worker": ""}
		}, "kubernetes.nodeLabels[node-role.kubernetes.io/worker]", "NodeRestriction"},
		{"taint", func(c *v1alpha1.NodeConfig) { c.Kubernetes.Taints = []string{"a=b:Never"} }, "kubernetes.taints[0]", `unknown effect "Never"`},
		{"cluster domain", func(c *v1alpha1.NodeConfig) { c.Kubernetes.ClusterDomain = "cluster.local\n" }, "kubernetes.clusterDomain", "must be a DNS name (RFC 1123)"},
		{"apiserver credentials", func(c *v1alpha1.NodeConfig) { c.Kubernetes.APIServerURL = "https://u:p@10.0.0.1:6443" }, "kubernetes.apiServerURL", "must not carry credentials (user:password@): the node authenticates with the bootstrap token"},
		{"artifact credentials", func(c *v1alpha1.NodeConfig) {
			c.Artifacts[artifacts.Kubelet] = v1alpha1.Artifact{URL: "https://u:secret@m.internal/kubelet"}
		}, "artifacts.kubelet.url", "must not carry credentials (user:password@): URLs are written to world-readable files"},
		{"artifact http without opt-in", func(c *v1alpha1.NodeConfig) {
			c.Artifacts[artifacts.Crictl] = v1alpha1.Artifact{URL: "http://m.internal/crictl.tgz"}
		}, "artifacts.crictl.url", "must be an https:// or file:// URL (plain http only with allowHTTP: true on this artifact; pin sha256 too)"},
		{"artifact ftp with opt-in", func(c *v1alpha1.NodeConfig) {
			c.Artifacts[artifacts.Crictl] = v1alpha1.Artifact{URL: "ftp://m/c", AllowHTTP: true}
		}, "artifacts.crictl.url", "must be an https://, http:// or file:// URL"},
		{"registry host path", func(c *v1alpha1.NodeConfig) {
			c.Containerd.RegistryMirrors = map[string][]string{"../../etc": {"https://m"}}
		}, "containerd.registryMirrors", `registry "../../etc" must be a host[:port]`},
		{"registry host port", func(c *v1alpha1.NodeConfig) {
			c.Containerd.RegistryMirrors = map[string][]string{"m.internal:99999": {"https://m"}}
		}, "containerd.registryMirrors", "must be a host[:port]"},
		{"mirror credentials", func(c *v1alpha1.NodeConfig) {
			c.Containerd.RegistryMirrors = map[string][]string{"docker.io": {"https://u:p@m"}}
		}, "containerd.registryMirrors[docker.io][0]", "must not carry credentials"},
		{"sandbox image", func(c *v1alpha1.NodeConfig) { c.Containerd.SandboxImage = "pause 3.10" }, "containerd.sandboxImage", "must be an image reference"},
		{"yum without gpg", func(c *v1alpha1.NodeConfig) { c.Packages.Yum = &v1alpha1.YumRepository{BaseURL: "https://m/rocky"} }, "packages.yum.gpgCheck", "must be set to false explicitly when no gpgKey is given"},
		{"yum gpgCheck false with key", func(c *v1alpha1.NodeConfig) {
			c.Packages.Yum = &v1alpha1.YumRepository{BaseURL: "https://m/rocky", GPGKey: "file:///k", GPGCheck: new(bool)}
		}, "packages.yum.gpgCheck", "false contradicts gpgKey"},
		{"apt url credentials", func(c *v1alpha1.NodeConfig) {
			c.Packages.Apt = &v1alpha1.AptRepository{URL: "https://u:p@m/debian", Suite: "bookworm", Components: []string{"main"}}
		}, "packages.apt.url", "must not carry credentials"},
		{"apt suite newline", func(c *v1alpha1.NodeConfig) {
			c.Packages.Apt = &v1alpha1.AptRepository{URL: "https://m/debian", Suite: "bookworm\nTrusted: yes", Components: []string{"main"}}
		}, "packages.apt.suite", "must be a name such as"},
		// Issue 10: the version table decides the versions and the cloud providers.
		{"kubelet newer than the table", func(c *v1alpha1.NodeConfig) { version(c, "v1.38.0") }, "kubernetes.version",
			"kubelet v1.38.0 is newer than provision knows (newest 1.37; supported are 1.35, 1.36, 1.37): update provision"},
		{"kubelet older than the table", func(c *v1alpha1.NodeConfig) { version(c, "v1.19.16") }, "kubernetes.version",
			"kubelet v1.19.16 is older than provision renders (oldest 1.21; supported are 1.35, 1.36, 1.37)"},
		{"in-tree provider on 1.37", func(c *v1alpha1.NodeConfig) { c.Kubernetes.CloudProvider = "openstack" }, "kubernetes.cloudProvider",
			`"openstack" is an in-tree cloud provider: kubelet v1.37.2 (1.29 and newer) takes only "external": use external and run the provider's cloud-controller-manager`},
		{"in-tree provider on 1.35", func(c *v1alpha1.NodeConfig) { version(c, "v1.35.4"); c.Kubernetes.CloudProvider = "aws" }, "kubernetes.cloudProvider",
			`"aws" is an in-tree cloud provider: kubelet v1.35.4`},
		{"in-tree provider on 1.29", func(c *v1alpha1.NodeConfig) { version(c, "v1.29.0"); c.Kubernetes.CloudProvider = "gce" }, "kubernetes.cloudProvider",
			`"gce" is an in-tree cloud provider: kubelet v1.29.0`},
		{"kubelet URL of another version", func(c *v1alpha1.NodeConfig) {
			c.Artifacts[artifacts.Kubelet] = v1alpha1.Artifact{URL: "https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubelet"}
		}, "artifacts.kubelet.url", "names kubelet v1.36.3 but kubernetes.version is v1.37.2"},
		{"version changed, URL not", func(c *v1alpha1.NodeConfig) { c.Kubernetes.Version = "v1.36.3" }, "artifacts.kubelet.url",
			"names kubelet v1.37.2 but kubernetes.version is v1.36.3: point it at the v1.36.3 kubelet (or change the version)"},
		{"mirror kubelet file of another version", func(c *v1alpha1.NodeConfig) {
			c.Artifacts[artifacts.Kubelet] = v1alpha1.Artifact{URL: "file:///srv/mirror/kubelet-v1.37.1"}
		}, "artifacts.kubelet.url", "names kubelet v1.37.1 but kubernetes.version is v1.37.2"},
		{"containerd install", func(c *v1alpha1.NodeConfig) { c.Containerd.Install = "builtin" }, "containerd.install", `must be package or tarball (or empty: the OS profile's), got "builtin"`},
		{"containerd version", func(c *v1alpha1.NodeConfig) { c.Containerd.Version = "2.3" }, "containerd.version", `must be MAJOR.MINOR.PATCH (e.g. 2.3.7), got "2.3"`},
		{"containerd version and URL disagree", func(c *v1alpha1.NodeConfig) {
			c.Containerd.Version = "2.2.9"
		}, "containerd.version", "is 2.2.9 but artifacts.containerd.url is containerd 2.3.7: make them agree"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mutate(&c)
			errs, ok := validation.AsErrors(c.Validate("").Err())
			if !ok || len(errs) != 1 {
				t.Fatalf("want exactly one field error, got %v", errs)
			}
			if errs[0].Field != tt.field || !strings.Contains(errs[0].Message, tt.msg) {
				t.Fatalf("got %q, want field %q message containing %q", errs[0].Error(), tt.field, tt.msg)
			}
		})
	}
}

// version sets the config's kubelet version and its default artifacts (a
// mirror URL without a version for one outside the table).
func version(c *v1alpha1.NodeConfig, v string) {
	c.Kubernetes.Version = v
	c.Artifacts = DefaultArtifacts(v, "amd64")
	for _, a := range artifacts.Configurable() {
		if c.Artifacts[a.Name].URL == "" || a.Name == artifacts.Kubelet {
			c.Artifacts[a.Name] = v1alpha1.Artifact{URL: "https://mirror.internal/" + a.File}
		}
	}
}

// TestValidateAcceptsVersionPolicy: what the version table allows validates.
func TestValidateAcceptsVersionPolicy(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*v1alpha1.NodeConfig)
	}{
		{"1.35", func(c *v1alpha1.NodeConfig) { *c = New("v1.35.4", "amd64") }},
		{"legacy 1.23", func(c *v1alpha1.NodeConfig) { *c = New("v1.23.17", "amd64") }},
		{"in-tree provider on 1.28", func(c *v1alpha1.NodeConfig) {
			*c = New("v1.28.15", "amd64")
			c.Kubernetes.CloudProvider, c.Kubernetes.CloudConfigPath = "openstack", v1alpha1.CloudConfigPath
		}},
		{"external with a cloud config", func(c *v1alpha1.NodeConfig) {
			c.Kubernetes.CloudProvider, c.Kubernetes.CloudConfigPath = "external", v1alpha1.CloudConfigPath
		}},
		{"mirror kubelet without a version", func(c *v1alpha1.NodeConfig) {
			c.Artifacts[artifacts.Kubelet] = v1alpha1.Artifact{URL: "https://mirror.internal/kubelet"}
		}},
		{"version-like host", func(c *v1alpha1.NodeConfig) {
			c.Artifacts[artifacts.Kubelet] = v1alpha1.Artifact{URL: "https://v1.36.3.mirror.internal/kubelet"}
		}},
		{"mirror kubelet of the version", func(c *v1alpha1.NodeConfig) {
			c.Artifacts[artifacts.Kubelet] = v1alpha1.Artifact{URL: "https://mirror.internal/v1.37.2/kubelet"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New("v1.37.2", "amd64")
			tt.mutate(&c)
			if err := c.Validate("").Err(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestValidateCollectsAll(t *testing.T) {
	c := New("v1.37.2", "x")
	c.Kubernetes.Version = "bad"
	c.Kubernetes.NodeIP = "nope"
	errs, _ := validation.AsErrors(c.Validate("").Err())
	if len(errs) != 3 {
		t.Fatalf("want 3 errors at once, got %d: %v", len(errs), errs)
	}
}

func TestParseStrict(t *testing.T) {
	_, err := Parse([]byte("apiVersion: provision.dev/v1alpha1\nkind: v1alpha1.NodeConfig\nbogus: 1\n"))
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown field must be rejected, got %v", err)
	}
}

func TestValidatePackages(t *testing.T) {
	c := New("v1.37.2", "amd64")
	c.Packages.Apt = &v1alpha1.AptRepository{URL: "ftp://x", Suite: "", SignedBy: "key.gpg", Trusted: true}
	errs, _ := validation.AsErrors(c.Validate("").Err())
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

// TestValidAccepted: the opt-ins make the matching values valid.
func TestValidAccepted(t *testing.T) {
	no := false
	for name, mutate := range map[string]func(*v1alpha1.NodeConfig){
		"http artifacts with allowHTTP": func(c *v1alpha1.NodeConfig) {
			c.Artifacts[artifacts.Kubelet] = v1alpha1.Artifact{URL: "http://10.0.0.2/kubelet", AllowHTTP: true}
		},
		"yum without key, gpgCheck false": func(c *v1alpha1.NodeConfig) {
			c.Packages.Yum = &v1alpha1.YumRepository{BaseURL: "http://m/rocky", GPGCheck: &no}
		},
		"registry host with port and IPv6": func(c *v1alpha1.NodeConfig) {
			c.Containerd.RegistryMirrors = map[string][]string{"m.internal:5000": {"http://m:5000"}, "[fd00::1]:5000": {"https://m"}, "_default": {"https://m"}}
		},
		"file artifact": func(c *v1alpha1.NodeConfig) { c.Artifacts[artifacts.Runc] = v1alpha1.Artifact{URL: "file:///srv/runc"} },
	} {
		c := New("v1.37.2", "amd64")
		mutate(&c)
		if err := c.Validate("").Err(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestParseDefaults: a hand-written config without the well-known paths gets
// them; the document's identity is never defaulted.
func TestParseDefaults(t *testing.T) {
	doc := "apiVersion: provision.dev/v1alpha1\nkind: NodeConfig\nkubernetes:\n  version: v1.37.2\nartifacts:\n  kubelet: {url: https://m/k}\n  cniPlugins: {url: https://m/c}\n  crictl: {url: https://m/r}\n"
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kubernetes.CACertPath != v1alpha1.CACertPath || c.Kubernetes.KubeconfigPath != v1alpha1.KubeconfigPath || c.Containerd.SandboxImage != "registry.k8s.io/pause:3.10.2" {
		t.Fatalf("defaults not applied: %+v", c)
	}
	_, err = Parse([]byte(strings.Replace(doc, "kind: NodeConfig\n", "", 1)))
	if err == nil || !strings.Contains(err.Error(), `kind: must be "NodeConfig", got ""`) {
		t.Fatalf("missing kind: %v", err)
	}
}

// TestValidateProfile: containerd.install and containerd.version against the
// OS profile, with the field and the fix in the message; what a tarball
// install needs.
func TestValidateProfile(t *testing.T) {
	noRunc := func(c *v1alpha1.NodeConfig) { delete(c.Artifacts, artifacts.Runc) }
	tests := []struct {
		profile, install, version string
		mutate                    func(*v1alpha1.NodeConfig)
		field, msg                string // "" = valid
	}{
		{profile: "debian-12"},
		{profile: "debian-12", install: "package"},
		{profile: "debian-12", install: "tarball"},
		{profile: "debian-12", install: "tarball", version: "2.3.7"},
		{profile: "rocky-9"},
		{profile: "rocky-9", install: "tarball", version: "v2.3.7"},
		{profile: "flatcar"},
		{profile: "flatcar", install: "tarball", field: "containerd.install", msg: "flatcar ships containerd in its image: leave install empty"},
		{profile: "fedora-coreos", install: "package", field: "containerd.install", msg: "fedora-coreos ships containerd in its image"},
		{profile: "rocky-9", install: "package", field: "containerd.install", msg: "rocky-9 has no containerd package provision installs: use tarball (or leave it empty)"},
		{profile: "debian-12", version: "2.3.7", field: "containerd.version", msg: "is the version of the release tarball, but containerd comes from the containerd package on debian-12: drop it, or set install: tarball"},
		{profile: "flatcar", version: "2.3.7", field: "containerd.version", msg: "containerd comes from the image on flatcar"},
		{profile: "debian-12", install: "tarball", mutate: noRunc, field: "artifacts.runc.url", msg: "is required: containerd comes from the release tarball on this node (containerd.install: tarball)"},
		{profile: "rocky-9", mutate: noRunc, field: "artifacts.runc.url", msg: "(the rocky-9 profile's default)"},
		{profile: "debian-12", mutate: noRunc},
	}
	for _, tt := range tests {
		t.Run(tt.profile+"/"+tt.install+"/"+tt.version+"/"+tt.field, func(t *testing.T) {
			p, err := osprofiles.Get(tt.profile)
			if err != nil {
				t.Fatal(err)
			}
			c := New("v1.37.2", "amd64")
			c.Containerd.Install = osprofiles.RuntimeSource(tt.install)
			c.Containerd.Version = tt.version
			if tt.mutate != nil {
				tt.mutate(&c)
			}
			if err := c.Validate("").Err(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			errs := c.ValidateProfile("", p)
			if tt.field == "" {
				if len(errs) > 0 {
					t.Fatalf("want valid, got %v", errs)
				}
				return
			}
			if len(errs) != 1 || errs[0].Field != tt.field || !strings.Contains(errs[0].Message, tt.msg) {
				t.Fatalf("got %v, want one error on %s containing %q", errs, tt.field, tt.msg)
			}
		})
	}
}

// TestTarballVersion: containerd.version, else the version the tarball URL
// names, else the default tarball's.
func TestTarballVersion(t *testing.T) {
	def := artifacts.MustGet(artifacts.Containerd).Version
	for _, tc := range []struct{ version, url, want string }{
		{"", "", def},
		{"", "https://m/containerd-1.7.24-linux-amd64.tar.gz", "1.7.24"},
		{"", "https://m/containerd-static-2.2.9-linux-arm64.tar.gz?sig=x", "2.2.9"},
		{"", "https://m/ctrd.tgz", def},
		{"", "https://m/containerd-2.3.7-linux-amd64.tar.gz.bak", def},
		{"v2.0.7", "https://m/ctrd.tgz", "2.0.7"},
	} {
		if got := (v1alpha1.Containerd{Version: tc.version}).TarballVersion(tc.url); got != tc.want {
			t.Errorf("TarballVersion(%q, %q) = %q, want %q", tc.version, tc.url, got, tc.want)
		}
	}
}
