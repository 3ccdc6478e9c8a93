package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/internal/kubeversions"
	"github.com/provision-dev/provision/node/nodeconfig"
)

// versionNode prepares a node of profile for a kubelet version with the
// default artifacts, cloud provider and cloud config path.
func versionNode(t *testing.T, profile, version, provider, cloudConfigPath string) *Node {
	t.Helper()
	cfg := nodeconfig.New(version, "amd64")
	cfg.Kubernetes.APIServerURL = "https://10.0.0.1:6443"
	cfg.Kubernetes.CloudProvider = provider
	cfg.Kubernetes.CloudConfigPath = cloudConfigPath
	root := testRoot(t, profile, &cfg)
	return prepare(t, testOptions(root, newFakeHost(""), false, nil))
}

// TestKubeletArgsFollowTheTable (issue 10): every version-dependent flag of the
// rendered drop-in and field of the KubeletConfiguration comes from the
// kubelet minor's row of internal/kubeversions.
func TestKubeletArgsFollowTheTable(t *testing.T) {
	const cc = v1alpha1.CloudConfigPath
	tests := []struct {
		name, profile, version, provider, cloudConfig string
		want, notWant                                 []string // in the drop-in
		configWant, configNotWant                     []string // in the KubeletConfiguration
	}{
		{name: "1.37 external with a cloud config", profile: "debian-12", version: "v1.37.2", provider: "external", cloudConfig: cc,
			want:       []string{"--cloud-provider=external"},
			notWant:    []string{"--cloud-config", "--container-runtime"},
			configWant: []string{"containerRuntimeEndpoint: unix:///run/containerd/containerd.sock", "crashLoopBackOff:"}},
		{name: "1.35 no provider", profile: "rocky-9", version: "v1.35.4",
			notWant:    []string{"--cloud-provider", "--cloud-config", "--container-runtime"},
			configWant: []string{"containerRuntimeEndpoint: unix:///run/containerd/containerd.sock"}, configNotWant: []string{"defaultPodSysctls"}},
		{name: "1.28 in-tree keeps --cloud-config", profile: "ubuntu-22.04", version: "v1.28.15", provider: "openstack", cloudConfig: cc,
			want:          []string{"--cloud-provider=openstack --cloud-config=" + cc},
			notWant:       []string{"--container-runtime"},
			configWant:    []string{"containerRuntimeEndpoint: unix:///run/containerd/containerd.sock", "imageMinimumGCAge"},
			configNotWant: []string{"imageMaximumGCAge", "crashLoopBackOff"}},
		{name: "1.28 external: no --cloud-config", profile: "ubuntu-22.04", version: "v1.28.15", provider: "external", cloudConfig: cc,
			want: []string{"--cloud-provider=external"}, notWant: []string{"--cloud-config"}},
		{name: "1.26 runtime endpoint is a flag", profile: "debian-12", version: "v1.26.15",
			want:          []string{"--container-runtime-endpoint=unix:///run/containerd/containerd.sock"},
			notWant:       []string{"--container-runtime=remote"},
			configNotWant: []string{"containerRuntimeEndpoint"}},
		{name: "1.23 containerd needs --container-runtime=remote", profile: "debian-12", version: "v1.23.17",
			want:          []string{"--container-runtime=remote --container-runtime-endpoint=unix:///run/containerd/containerd.sock"},
			configNotWant: []string{"containerRuntimeEndpoint", "imageMaximumGCAge"}},
		{name: "1.23 Docker through dockershim on ubuntu-18.04", profile: "ubuntu-18.04", version: "v1.23.17",
			notWant:       []string{"--container-runtime"},
			configNotWant: []string{"containerRuntimeEndpoint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := versionNode(t, tt.profile, tt.version, tt.provider, tt.cloudConfig)
			dropin := string(n.kubeletDropIn())
			for _, w := range tt.want {
				if !strings.Contains(dropin, w) {
					t.Errorf("drop-in lacks %q:\n%s", w, dropin)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(dropin, w) {
					t.Errorf("drop-in has %q:\n%s", w, dropin)
				}
			}
			kcfg, err := renderKubeletConfig(n.Config.Kubernetes, n.Release(), "")
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.configWant {
				if !strings.Contains(string(kcfg), w) {
					t.Errorf("KubeletConfiguration lacks %q:\n%s", w, kcfg)
				}
			}
			for _, w := range tt.configNotWant {
				if strings.Contains(string(kcfg), w) {
					t.Errorf("KubeletConfiguration has %q:\n%s", w, kcfg)
				}
			}
		})
	}
}

// TestNoCloudConfigFlagFrom134 (issue 10): for every minor of the table, the
// rendered drop-in never passes --cloud-config to a kubelet of 1.34 or newer
// (the flag is gone: the kubelet would exit), nor with an external provider,
// nor with an in-tree provider on 1.29+ even if validation were bypassed (the
// config is changed after Prepare validated it). The cloud config file is
// still installed, 0600.
func TestNoCloudConfigFlagFrom134(t *testing.T) {
	for minor := kubeversions.Oldest().Minor; minor <= kubeversions.Newest().Minor; minor++ {
		version := fmt.Sprintf("v1.%d.1", minor)
		r := kubeversions.MustFor(version)
		for _, provider := range []string{"external", "openstack"} {
			t.Run(version+"/"+provider, func(t *testing.T) {
				n := versionNode(t, "debian-12", version, "", "")
				n.Config.Kubernetes.CloudProvider = provider // bypasses validation on purpose
				n.Config.Kubernetes.CloudConfigPath = v1alpha1.CloudConfigPath
				dropin := string(n.kubeletDropIn())
				if !strings.Contains(dropin, "--cloud-provider="+provider) {
					t.Errorf("drop-in lacks --cloud-provider=%s:\n%s", provider, dropin)
				}
				has := strings.Contains(dropin, "--cloud-config")
				want := provider != "external" && minor < 29
				if has != want {
					t.Errorf("--cloud-config in the drop-in: %v, want %v:\n%s", has, want, dropin)
				}
				if has && (minor >= 34 || !r.HasFlag("--cloud-config")) {
					t.Errorf("--cloud-config passed to kubelet 1.%d, which has no such flag", minor)
				}
			})
		}
	}
}

// TestCloudConfigInstalledForExternal (issue 10): with an external provider on
// 1.37 join installs the cloud config (0600) and the kubelet gets no --cloud-config.
func TestCloudConfigInstalledForExternal(t *testing.T) {
	srv := newArtifactServer(t)
	cfg := testConfig(srv, "debian-12")
	cfg.Kubernetes.CloudProvider = "external"
	cfg.Kubernetes.CloudConfigPath = v1alpha1.CloudConfigPath
	root := testRoot(t, "debian-12", &cfg)
	os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/local/bin/kubelet"), []byte("x"), 0o755)
	dir := t.TempDir()
	cloud := filepath.Join(dir, "cloud.conf")
	os.WriteFile(cloud, []byte("[Global]\nauth-url = https://keystone\n"), 0o600)
	ca := filepath.Join(dir, "ca.crt")
	os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o644)
	opts := testOptions(root, newFakeHost(""), false, nil)
	opts.Flags.Token = testToken
	opts.Flags.CACert = ca
	opts.Flags.CloudConfig = cloud
	n := prepare(t, opts)
	list, err := n.Tasks(Join)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, task := range list {
		names = append(names, task.Name())
	}
	if !strings.Contains(strings.Join(names, " "), tCloudConfig) {
		t.Fatalf("join does not install the cloud config: %v", names)
	}
	if err := n.Run(context.Background(), Join); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, v1alpha1.CloudConfigPath))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cloud config: %v %v", fi, err)
	}
	dropin, _ := os.ReadFile(filepath.Join(root, KubeletDropInPath))
	if !strings.Contains(string(dropin), "--cloud-provider=external") || strings.Contains(string(dropin), "--cloud-config") {
		t.Fatalf("drop-in:\n%s", dropin)
	}
}

// TestKubeletSupportInStatus (issue 10): every run records the kubelet
// version's support in status.json; a legacy minor carries the warning that
// provision node also prints on stderr (Warnings).
func TestKubeletSupportInStatus(t *testing.T) {
	tests := []struct {
		version, support, eol, warning string
	}{
		{"v1.37.2", "supported", "2027-10-28", ""},
		{"v1.35.4", "supported", "2027-02-28", ""},
		{"v1.31.4", "legacy", "2025-10-28", "kubelet 1.31 is not supported (end of life upstream 2025-10-28; supported are 1.35, 1.36, 1.37)"},
		{"v1.23.17", "legacy", "2023-02-28", "kubelet 1.23 is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			srv := newArtifactServer(t)
			cfg := testConfig(srv, "debian-12")
			cfg.Kubernetes.Version = tt.version
			cfg.Containerd.SandboxImage = ""
			root := testRoot(t, "debian-12", &cfg)
			n := prepare(t, testOptions(root, newFakeHost(""), false, nil))
			if got := strings.Join(n.Warnings(), "\n"); (tt.warning == "") != (got == "") || !strings.Contains(got, tt.warning) {
				t.Errorf("Warnings() = %q, want %q", got, tt.warning)
			}
			n.Run(context.Background(), Join) // fails (no kubelet binary): status is written all the same
			raw, err := os.ReadFile(filepath.Join(root, StatusPath))
			if err != nil {
				t.Fatal(err)
			}
			st := readStatus(t, root)
			ks := st.KubeletSupport
			if ks == nil || ks.Version != tt.version || string(ks.Support) != tt.support || ks.EOL != tt.eol || !strings.Contains(ks.Warning, tt.warning) || (tt.warning == "") != (ks.Warning == "") {
				t.Fatalf("kubeletSupport = %+v, want %s %s %s %q\n%s", ks, tt.version, tt.support, tt.eol, tt.warning, raw)
			}
			if !strings.Contains(string(raw), `"kubeletSupport": {`) {
				t.Errorf("status.json:\n%s", raw)
			}
			// The pause image follows the minor too (the config's default).
			if want := kubeversions.MustFor(tt.version).PauseImage; n.Config.Containerd.SandboxImage != want {
				t.Errorf("sandbox image %q, want %q", n.Config.Containerd.SandboxImage, want)
			}
		})
	}
}

// TestNodeConfigVersionPolicy (issue 10): a hand-written node config (or the
// node flags) outside the version policy is refused before anything runs,
// naming the field, the version and the fix.
func TestNodeConfigVersionPolicy(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *v1alpha1.NodeConfig)
		flags  Flags
		want   string
	}{
		{name: "in-tree provider on 1.37", mutate: func(c *v1alpha1.NodeConfig) { c.Kubernetes.CloudProvider = "openstack" },
			want: `kubernetes.cloudProvider: "openstack" is an in-tree cloud provider: kubelet v1.37.2 (1.29 and newer) takes only "external": use external and run the provider's cloud-controller-manager`},
		{name: "kubelet URL of another version", mutate: func(c *v1alpha1.NodeConfig) {
			c.Artifacts[artifacts.Kubelet] = v1alpha1.Artifact{URL: "https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubelet"}
		}, want: "artifacts.kubelet.url: names kubelet v1.36.3 but kubernetes.version is v1.37.2"},
		{name: "version edited, URL not", mutate: func(c *v1alpha1.NodeConfig) { c.Kubernetes.Version = "v1.36.3" },
			want: "artifacts.kubelet.url: names kubelet v1.37.2 but kubernetes.version is v1.36.3"},
		{name: "version outside the table", mutate: func(c *v1alpha1.NodeConfig) { c.Kubernetes.Version = "v1.38.1" },
			want: "kubernetes.version: kubelet v1.38.1 is newer than provision knows (newest 1.37; supported are 1.35, 1.36, 1.37)"},
		{name: "flags: in-tree provider", flags: Flags{KubeletVersion: "v1.36.3", CloudProvider: "aws"},
			want: `--cloud-provider / kubernetes.cloudProvider: "aws" is an in-tree cloud provider: kubelet v1.36.3`},
		{name: "flags: version outside the table", flags: Flags{KubeletVersion: "v1.20.15"},
			want: "--kubelet-version / kubernetes.version: kubelet v1.20.15 is older than provision renders (oldest 1.21; supported are 1.35, 1.36, 1.37)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg *v1alpha1.NodeConfig
			if tt.mutate != nil {
				c := nodeconfig.New("v1.37.2", "amd64")
				tt.mutate(&c)
				cfg = &c
			}
			root := testRoot(t, "debian-12", cfg)
			opts := testOptions(root, newFakeHost(""), false, nil)
			opts.Flags = tt.flags
			_, err := Prepare(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if _, err := os.Stat(filepath.Join(root, StatusPath)); err == nil {
				t.Error("a refused config ran")
			}
		})
	}
}
