package nodeconfig

import (
	"reflect"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
)

// FuzzParse feeds arbitrary node.yaml documents. Properties: no panic; a
// rejected document gets a "parse node config" YAML error or field errors that
// each name a field and say what is allowed; an accepted one validates, and
// marshals to a document that parses back to the same config (stable).
//
//	go test ./node/nodeconfig -run '^$' -fuzz FuzzParse -fuzztime 60s
func FuzzParse(f *testing.F) {
	full := New("v1.37.2", "arm64")
	full.OSProfile = "rocky-9"
	full.Kubernetes.APIServerURL = "https://10.0.0.1:6443"
	full.Kubernetes.CloudProvider = "external"
	full.Kubernetes.CloudConfigPath = v1alpha1.CloudConfigPath
	full.Kubernetes.NodeIP = "fd00::5"
	full.Kubernetes.ClusterDNS = []string{"10.96.0.10", "fd00::a"}
	full.Kubernetes.NodeLabels = map[string]string{"example.com/pool": "gpu", "kubernetes.io/arch": "arm64"}
	full.Kubernetes.Taints = []string{"example.com/gpu=true:NoSchedule", "spot:PreferNoSchedule"}
	full.Kubernetes.ServerTLSBootstrap = true
	full.Kubernetes.KubeletConfig = map[string]any{"maxPods": 60, "evictionHard": map[string]any{"memory.available": "300Mi"}, "kubeReserved": nil}
	full.Kubernetes.KubeletExtraArgs = map[string]string{"provider-id": "openstack:///0c5b", "v": "2"}
	full.Containerd.RegistryMirrors = map[string][]string{"docker.io": {"https://a.internal", "http://b.internal:5000"}, "ghcr.io": {"https://c.internal"}}
	full.Containerd.Registries = map[string]v1alpha1.Registry{"10.0.0.5:5000": {CAPath: v1alpha1.RegistryCAPath("10.0.0.5:5000")}, "dev.internal": {SkipVerify: true}}
	full.Containerd.CredentialsFile = v1alpha1.RegistryCredentialsPath
	full.Packages.Yum = &v1alpha1.YumRepository{BaseURL: "https://m.internal/rocky/9", GPGKey: "file:///etc/pki/rpm-gpg/key", Exclusive: true}
	for _, c := range []v1alpha1.NodeConfig{New("v1.37.2", "amd64"), full} {
		data, err := c.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	apt := New("v1.29.0", "amd64")
	apt.Packages.Apt = &v1alpha1.AptRepository{URL: "file:///srv/apt", Suite: "bookworm", Components: []string{"main", "contrib"}, SignedBy: "/etc/apt/keyrings/m.gpg"}
	if data, err := apt.Marshal(); err == nil {
		f.Add(data)
	}
	f.Add([]byte("apiVersion: provision.dev/v1alpha1\nkind: v1alpha1.NodeConfig\nkubernetes:\n  version: 1.31\n  clusterDNS: [\"x\"]\nartifacts: {}\n"))
	f.Add([]byte("kind: [\nx"))
	f.Add([]byte("apiVersion: provision.dev/v1alpha1\nkind: v1alpha1.NodeConfig\nbogus: true\n"))
	f.Add([]byte("containerd:\n  registryMirrors:\n    \"bad/host\": [\"ftp://x\"]\n"))
	f.Add([]byte("containerd:\n  credentialsFile: rel\n  registries:\n    r.internal: {caPath: x, skipVerify: true, password: p, caCert: c}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if es, ok := validation.AsErrors(err); ok {
				if len(es) == 0 {
					t.Fatal("empty Errors")
				}
				for _, e := range es {
					if e.Field == "" || e.Message == "" {
						t.Fatalf("error names no field: %+v", e)
					}
				}
				return
			}
			if !strings.HasPrefix(err.Error(), "parse node config: ") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		if err := c.Validate("").Err(); err != nil {
			t.Fatalf("Parse accepted what Validate rejects: %v", err)
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatalf("accepted config does not marshal: %v", err)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("marshalled config does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(normal(back), normal(c)) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, back)
		}
		again, _ := back.Marshal()
		if string(again) != string(out) {
			t.Fatalf("marshal not stable:\n%s\n---\n%s", out, again)
		}
	})
}

// normal maps empty slices and maps to nil (omitempty drops them on marshal).
func normal(c v1alpha1.NodeConfig) v1alpha1.NodeConfig {
	if len(c.Kubernetes.ClusterDNS) == 0 {
		c.Kubernetes.ClusterDNS = nil
	}
	if len(c.Containerd.RegistryMirrors) == 0 {
		c.Containerd.RegistryMirrors = nil
	}
	for h, m := range c.Containerd.RegistryMirrors {
		if len(m) == 0 {
			c.Containerd.RegistryMirrors[h] = nil
		}
	}
	if c.Packages.Apt != nil && len(c.Packages.Apt.Components) == 0 {
		c.Packages.Apt.Components = nil
	}
	return c
}
