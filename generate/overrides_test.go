package generate

import (
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/generate/setup"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/node/nodeconfig"
	"github.com/provision-dev/provision/osprofiles"
)

// Overrides from the GenerateConfig land in the node config the machine reads, and a
// prebaked image's unit runs only join.
func TestOverridesReachNodeConfig(t *testing.T) {
	pin := strings.Repeat("c", 64)
	tests := []struct {
		name   string
		mutate func(*v1alpha1.GenerateConfig)
		check  func(t *testing.T, nc v1alpha1.NodeConfig, unit string)
	}{
		{"artifact mirror with pin", func(s *v1alpha1.GenerateConfig) {
			s.Artifacts = v1alpha1.Artifacts{artifacts.Kubelet: v1alpha1.Artifact{URL: "http://10.0.0.2/kubelet", SHA256: pin, AllowHTTP: true}}
		}, func(t *testing.T, nc v1alpha1.NodeConfig, _ string) {
			if nc.Artifacts[artifacts.Kubelet] != (v1alpha1.Artifact{URL: "http://10.0.0.2/kubelet", SHA256: pin, AllowHTTP: true}) {
				t.Fatalf("kubelet = %+v", nc.Artifacts[artifacts.Kubelet])
			}
			if !strings.HasPrefix(nc.Artifacts[artifacts.CNIPlugins].URL, "https://github.com/containernetworking/") {
				t.Fatalf("unset override changed the default: %+v", nc.Artifacts[artifacts.CNIPlugins])
			}
		}},
		{"pin the default url", func(s *v1alpha1.GenerateConfig) {
			s.Artifacts = v1alpha1.Artifacts{artifacts.Crictl: v1alpha1.Artifact{SHA256: pin}}
		}, func(t *testing.T, nc v1alpha1.NodeConfig, _ string) {
			if nc.Artifacts[artifacts.Crictl].SHA256 != pin || !strings.Contains(nc.Artifacts[artifacts.Crictl].URL, "cri-tools") {
				t.Fatalf("crictl = %+v", nc.Artifacts[artifacts.Crictl])
			}
		}},
		{"mirrors, sandbox image, node ip", func(s *v1alpha1.GenerateConfig) {
			s.NodeIP = "10.213.0.1"
			s.Packages.Apt = &v1alpha1.AptRepository{URL: "http://10.213.0.2/debian", Suite: "bookworm", Components: []string{"main"}, Exclusive: true}
			s.Containerd = v1alpha1.Containerd{SandboxImage: "mirror.internal/pause:3.10", RegistryMirrors: map[string][]string{"docker.io": {"https://mirror.internal"}}}
		}, func(t *testing.T, nc v1alpha1.NodeConfig, _ string) {
			if nc.Kubernetes.NodeIP != "10.213.0.1" || nc.Packages.Apt == nil || !nc.Packages.Apt.Exclusive ||
				nc.Containerd.SandboxImage != "mirror.internal/pause:3.10" || nc.Containerd.RegistryMirrors["docker.io"][0] != "https://mirror.internal" {
				t.Fatalf("node config = %+v", nc)
			}
		}},
		{"containerd from the release tarball on debian, at a chosen version", func(s *v1alpha1.GenerateConfig) {
			s.Containerd.Install, s.Containerd.Version = v1alpha1.InstallTarball, "2.2.9"
		}, func(t *testing.T, nc v1alpha1.NodeConfig, _ string) {
			if nc.Containerd.Install != v1alpha1.InstallTarball || nc.Containerd.Version != "2.2.9" {
				t.Fatalf("containerd = %+v", nc.Containerd)
			}
			if u := nc.Artifacts[artifacts.Containerd].URL; u != "https://github.com/containerd/containerd/releases/download/v2.2.9/containerd-2.2.9-linux-amd64.tar.gz" {
				t.Fatalf("containerd url = %q, want 2.2.9's", u)
			}
			if !strings.Contains(nc.Artifacts[artifacts.Runc].URL, "/runc.amd64") {
				t.Fatalf("no runc artifact for a tarball runtime: %+v", nc.Artifacts)
			}
		}},
		{"containerd from the package: no tarball artifacts", func(s *v1alpha1.GenerateConfig) {}, func(t *testing.T, nc v1alpha1.NodeConfig, _ string) {
			if _, ok := nc.Artifacts[artifacts.Containerd]; ok || nc.Containerd.Install != "" {
				t.Fatalf("debian-12 by default lists %+v, install %q", nc.Artifacts, nc.Containerd.Install)
			}
		}},
		{"cluster dns and domain", func(s *v1alpha1.GenerateConfig) {
			s.ClusterDNS, s.ClusterDomain = []string{"10.96.0.10", "fd00::a"}, "k8s.internal"
		}, func(t *testing.T, nc v1alpha1.NodeConfig, _ string) {
			if strings.Join(nc.Kubernetes.ClusterDNS, ",") != "10.96.0.10,fd00::a" || nc.Kubernetes.ClusterDomain != "k8s.internal" {
				t.Fatalf("kubernetes = %+v", nc.Kubernetes)
			}
		}},
		{"cluster domain default", func(s *v1alpha1.GenerateConfig) { s.ClusterDNS = []string{"10.96.0.10"} }, func(t *testing.T, nc v1alpha1.NodeConfig, _ string) {
			if nc.Kubernetes.ClusterDomain != v1alpha1.DefaultClusterDomain {
				t.Fatalf("clusterDomain = %q", nc.Kubernetes.ClusterDomain)
			}
		}},
		{"node labels and taints", func(s *v1alpha1.GenerateConfig) {
			s.NodeLabels = map[string]string{"example.com/pool": "gpu", "node.kubernetes.io/instance-type": "m5.large"}
			s.Taints = []string{"example.com/dedicated=gpu:NoSchedule"}
		}, func(t *testing.T, nc v1alpha1.NodeConfig, _ string) {
			if len(nc.Kubernetes.NodeLabels) != 2 || nc.Kubernetes.NodeLabels["example.com/pool"] != "gpu" ||
				strings.Join(nc.Kubernetes.Taints, ",") != "example.com/dedicated=gpu:NoSchedule" {
				t.Fatalf("kubernetes = %+v", nc.Kubernetes)
			}
		}},
		{"serving certificate bootstrap", func(s *v1alpha1.GenerateConfig) { s.ServerTLSBootstrap = true }, func(t *testing.T, nc v1alpha1.NodeConfig, _ string) {
			if !nc.Kubernetes.ServerTLSBootstrap {
				t.Fatalf("kubernetes = %+v", nc.Kubernetes)
			}
		}},
		{"kubelet config", func(s *v1alpha1.GenerateConfig) {
			s.KubeletConfig = map[string]any{"maxPods": 50, "evictionHard": map[string]any{"memory.available": "500Mi"}}
		}, func(t *testing.T, nc v1alpha1.NodeConfig, _ string) {
			if nc.Kubernetes.KubeletConfig["maxPods"] != float64(50) || nc.Kubernetes.KubeletConfig["evictionHard"].(map[string]any)["memory.available"] != "500Mi" {
				t.Fatalf("kubeletConfig = %+v", nc.Kubernetes.KubeletConfig)
			}
		}},
		{"kubelet extra args", func(s *v1alpha1.GenerateConfig) {
			s.KubeletExtraArgs = map[string]string{"provider-id": "openstack:///0c5b6bc1", "hostname-override": "worker-1"}
		}, func(t *testing.T, nc v1alpha1.NodeConfig, _ string) {
			if len(nc.Kubernetes.KubeletExtraArgs) != 2 || nc.Kubernetes.KubeletExtraArgs["provider-id"] != "openstack:///0c5b6bc1" {
				t.Fatalf("kubeletExtraArgs = %+v", nc.Kubernetes.KubeletExtraArgs)
			}
		}},
		{"prebaked", func(s *v1alpha1.GenerateConfig) { s.Prebaked = true }, func(t *testing.T, _ v1alpha1.NodeConfig, unit string) {
			if !strings.Contains(unit, "Environment=PROVISION_PHASE=join") {
				t.Fatalf("prebaked unit does not join only:\n%s", unit)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := readmeSpec(t, "debian-12")
			tt.mutate(&s)
			p, err := BuildPlan(s)
			if err != nil {
				t.Fatal(err)
			}
			var nc v1alpha1.NodeConfig
			for _, f := range p.Files {
				if f.Path == v1alpha1.NodeConfigPath {
					if nc, err = nodeconfig.Parse(f.Contents); err != nil {
						t.Fatalf("node.yaml does not parse back: %v", err)
					}
				}
			}
			var unit string
			for _, u := range p.Units {
				if u.Name == setup.UnitName {
					unit = u.Contents
				}
			}
			tt.check(t, nc, unit)
			for _, f := range osprofiles.Formats() {
				if _, err := Render(s, f); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
			}
		})
	}
}
