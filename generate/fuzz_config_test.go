package generate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/generate/ignition"
	"github.com/provision-dev/provision/osprofiles"
)

// FuzzParseConfig feeds arbitrary GenerateConfig documents (file paths resolve
// under testdata/, so "tokenFile: token" and "caCertFile: ca.crt" work).
// Properties: no panic; a parse error is an apiVersion field error or a YAML
// error; a parsed config either fails Validate with field errors (every entry
// names a field and has a message, none quotes the token) or renders a
// document its format's parser accepts.
//
//	go test ./generate -run '^$' -fuzz FuzzParseConfig -fuzztime 60s
func FuzzParseConfig(f *testing.F) {
	base, err := filepath.Abs("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, ex := range []string{"openstack-ubuntu", "flatcar-butane"} {
		data, err := os.ReadFile(filepath.Join("..", "examples", ex, "generate.yaml"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nos: rocky-9\nformat: ignition\nignitionVersion: \"3.5\"\nkubeletVersion: v1.37.2\n" +
		"apiServerURL: https://[fd00::1]:6443\ntoken: abcdef.0123456789abcdef\ncaCertFile: ca.crt\nprovisionSource: http://mirror:8080/p\nallowHTTPSource: true\n" +
		"provisionSHA256: " + strings.Repeat("0", 64) + "\ngzip: true\nnodeIP: 10.0.0.5\nprebaked: true\n" +
		"artifacts:\n  kubelet:\n    url: https://m.internal/kubelet\n    sha256: " + strings.Repeat("a", 64) + "\n" +
		"packages:\n  yum:\n    baseURL: https://m.internal/rocky\n    exclusive: true\n" +
		"containerd:\n  registryMirrors:\n    docker.io: [\"https://mirror.internal\"]\n"))
	// Issue 11: the kubelet settings of a node pool.
	f.Add([]byte("apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nos: ubuntu-24.04\nkubeletVersion: v1.37.2\n" +
		"apiServerURL: https://10.0.0.10:6443\ntokenFile: token\ncaCertFile: ca.crt\nprovisionSource: https://example.com/p\n" +
		"provisionSHA256: " + strings.Repeat("0", 64) + "\nclusterDNS: [10.96.0.10]\nclusterDomain: cluster.local\n" +
		"nodeLabels: {example.com/pool: gpu, node.kubernetes.io/instance-type: m5.large}\ntaints: [\"example.com/gpu=true:NoSchedule\"]\n" +
		"serverTLSBootstrap: true\nkubeletConfig: {maxPods: 60, kubeReserved: {cpu: 200m}, evictionHard: {memory.available: 300Mi}, systemReserved: null}\n" +
		"kubeletExtraArgs: {provider-id: \"openstack:///0c5b\"}\n"))
	// Issue 11: the proxy, with credentials.
	f.Add([]byte("apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nos: flatcar\nkubeletVersion: v1.37.2\n" +
		"apiServerURL: https://10.0.0.10:6443\ntokenFile: token\ncaCertFile: ca.crt\nprovisionSource: https://example.com/p\n" +
		"provisionSHA256: " + strings.Repeat("0", 64) + "\nproxy: {httpProxy: \"http://u:p%40ss@proxy:3128\", httpsProxy: \"http://proxy:3128\", noProxy: \".internal,10.0.0.0/8\"}\n"))
	f.Add([]byte("apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nos: debian-12\nproxy: {httpProxy: \"socks5://x\", noProxy: \"a,,b\"}\n"))
	// Issue 11: image credential providers, a valid one and one bad in every field.
	f.Add([]byte("apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nos: ubuntu-24.04\nkubeletVersion: v1.37.2\n" +
		"apiServerURL: https://10.0.0.10:6443\ntokenFile: token\ncaCertFile: ca.crt\nprovisionSource: https://example.com/p\n" +
		"provisionSHA256: \"" + strings.Repeat("0", 64) + "\"\nimageCredentialProviders:\n- name: ecr-credential-provider\n" +
		"  matchImages: [\"*.dkr.ecr.*.amazonaws.com\", \"registry.example.com:5000/team\"]\n  defaultCacheDuration: 12h\n" +
		"  args: [get-credentials]\n  env: [{name: AWS_PROFILE, value: nodes}]\n" +
		"  url: https://example.com/ecr-credential-provider\n  sha256: " + strings.Repeat("a", 64) + "\n"))
	f.Add([]byte("apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nos: debian-12\nkubeletVersion: v1.25.16\n" +
		"kubeletExtraArgs: {image-credential-provider-config: /x}\nimageCredentialProviders:\n" +
		"- {name: ../x, matchImages: [\"https://gcr.io\", \"a..b\", \"reg?.io\", \"x:99999\"], defaultCacheDuration: -1h, apiVersion: v2,\n" +
		"   args: [\"a\\nb\"], env: [{name: 1A, value: x}, {name: 1A}], url: \"http://u:p@x/p\", sha256: ABC}\n" +
		"- {name: ../x, matchImages: [], defaultCacheDuration: 12 hours}\n"))
	// Issue 11: the cluster's ranges, added to noProxy (dual-stack), and bad ones.
	f.Add([]byte("apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nos: ubuntu-24.04\nkubeletVersion: v1.37.2\n" +
		"apiServerURL: https://api.internal:6443\ntokenFile: token\ncaCertFile: ca.crt\nprovisionSource: https://example.com/p\n" +
		"provisionSHA256: \"" + strings.Repeat("0", 64) + "\"\nclusterDNS: [10.96.0.10, \"fd00:10:96::a\"]\n" +
		"podCIDRs: [10.244.0.0/16, \"fd00:10:244::/56\"]\nserviceCIDRs: [10.96.0.0/12, \"FD00:10:96::/112\"]\n" +
		"proxy: {httpsProxy: \"http://u:p@proxy:3128\", noProxy: \"10.96.0.0/12,.internal\"}\n"))
	f.Add([]byte("apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nos: debian-12\nclusterDNS: [10.0.0.10]\n" +
		"podCIDRs: [10.244.1.0/16, \"fe80::%eth0/64\", 10.0.0.0/8]\nserviceCIDRs: [10.96.0.0/33, \"\"]\n"))
	f.Add([]byte("apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nos: debian-12\npodCIDRs: 10.244.0.0/16\nserviceCIDRs: [[1]]\n"))
	f.Add([]byte("apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nos: debian-12\nkubeletVersion: v1.22.17\n" +
		"nodeLabels: {node-role.kubernetes.io/worker: \"\"}\ntaints: [\"a:Never\"]\nkubeletConfig: {authorization: {mode: AlwaysAllow}, maxPod: 1}\n" +
		"kubeletExtraArgs: {--v: \"2\", network-plugin: cni}\n"))
	// Issue 11: a private registry (CA file, credentials, mirror), a development one, a token; and bad ones.
	f.Add([]byte("apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nos: ubuntu-24.04\nkubeletVersion: v1.37.2\n" +
		"apiServerURL: https://10.0.0.10:6443\ntokenFile: token\ncaCertFile: ca.crt\nprovisionSource: https://example.com/p\n" +
		"provisionSHA256: " + strings.Repeat("ab", 32) + "\ncontainerd:\n  registryMirrors: {registry.example.com: [\"https://10.0.0.5:5000\"]}\n" +
		"  registries:\n    10.0.0.5:5000: {caCertFile: ca.crt, username: puller, password: \"p@ss w0rd\"}\n" +
		"    dev.internal: {skipVerify: true}\n    ghcr.internal: {identityToken: tok}\n"))
	f.Add([]byte("apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nos: flatcar\ncontainerd:\n  credentialsFile: x\n" +
		"  registries:\n    \"a/b\": {}\n    r.internal: {caCert: x, caCertFile: y, caPath: z, skipVerify: true, username: \"u:1\", identityToken: \"t\\n\"}\n"))
	// Issue 11: extra files and units (CABPK's escape hatch).
	f.Add([]byte(extrasYAML("flatcar", "ignition") + "- path: /opt/bin/x\n  mode: 0755\n  source: https://example.com/x\n  sha256: " + strings.Repeat("c", 64) + "\n"))
	f.Add([]byte(extrasYAML("ubuntu-24.04", "cloud-init") + "- path: /etc/provision/x\n  mode: 04755\n  source: http://example.com/x\n" +
		"- path: /etc/a\n  content: x\n  sha256: abc\n"))
	f.Add([]byte("apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nos: [a, b]\n"))
	f.Add([]byte("apiVersion: v0\n"))
	f.Add([]byte("{\"apiVersion\":\"provision.dev/v1alpha1\",\"kind\":\"GenerateConfig\",\"unknown\":1}"))
	f.Add([]byte("apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nos: debian-12\ntokenFile: token\ncaCertFile: ca.crt\ncloudConfig: \"a: b\\n\"\n&x [*x]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseConfig(data, base)
		if err != nil {
			var es validation.Errors
			if errors.As(err, &es) {
				if len(es) != 1 || es[0].Field != "apiVersion" {
					t.Fatalf("parse error names no field: %+v", es)
				}
				return
			}
			if !strings.HasPrefix(err.Error(), "parse "+v1alpha1.GenerateConfigKind+": ") {
				t.Fatalf("parse error without context: %v", err)
			}
			return
		}
		format := ResolvedFormat(s)
		out, err := Render(s, "")
		if err != nil {
			var es validation.Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("rejected without field errors: %T %v", err, err)
			}
			for _, e := range es {
				if e.Field == "" || e.Message == "" {
					t.Fatalf("error names no field: %+v", e)
				}
			}
			if tok := s.Token; len(tok) >= 8 && !strings.Contains(string(data), tok+tok) && strings.Contains(err.Error(), tok) {
				t.Fatalf("error quotes the token: %v", err)
			}
			return
		}
		if len(out) == 0 {
			t.Fatal("accepted config, empty document")
		}
		prof, err := osprofiles.Get(s.OS)
		if err != nil {
			t.Fatalf("accepted an unknown OS %q", s.OS)
		}
		switch format {
		case osprofiles.Ignition:
			v := s.IgnitionVersion
			if v == "" {
				v = ignition.DefaultVersion
			}
			if _, err := ignition.Parse(v, out); err != nil {
				t.Fatalf("accepted config, invalid Ignition %s: %v", v, err)
			}
		case osprofiles.Butane:
			translateButane(t, out) // Butane's strict translation must accept it
		case osprofiles.CloudInit:
			decodeAny(t, out, format, prof, "", s.Gzip)
		}
	})
}
