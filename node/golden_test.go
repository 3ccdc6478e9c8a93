package node

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/node/nodeconfig"
	"github.com/provision-dev/provision/osprofiles"
)

// goldenConfig is a pinned config with fixed URLs (a plan of a fresh root makes no request).
func goldenConfig(version string) v1alpha1.NodeConfig {
	c := nodeconfig.New(version, "amd64")
	c.Kubernetes.APIServerURL = "https://10.0.0.1:6443"
	c.Kubernetes.ClusterDNS = []string{"10.96.0.10"}
	c.Kubernetes.ClusterDomain = "cluster.local"
	c.Kubernetes.CloudProvider = "external"
	c.Kubernetes.NodeIP = "10.0.0.20"
	c.Kubernetes.NodeLabels = map[string]string{"example.com/pool": "gpu", "node.kubernetes.io/instance-type": "m5.large"}
	c.Kubernetes.Taints = []string{"example.com/dedicated=gpu:NoSchedule", "example.com/a:PreferNoSchedule"}
	c.Kubernetes.KubeletExtraArgs = map[string]string{"provider-id": "openstack:///0c5b6bc1", "hostname-override": "worker-1"}
	c.Kubernetes.KubeletConfig = map[string]any{"maxPods": 50, "evictionHard": map[string]any{"memory.available": "500Mi"}, "systemReserved": nil}
	for name, a := range c.Artifacts {
		a.SHA256 = strings.Repeat("ab", 32)
		c.Artifacts[name] = a
	}
	c.Containerd.RegistryMirrors = map[string][]string{"docker.io": {"https://mirror.internal"}}
	return c
}

type goldenCase struct {
	profile, version, file string
	// install is containerd.install ("" for the profile's way).
	install osprofiles.RuntimeSource
}

func goldenCases() []goldenCase {
	var cs []goldenCase
	for _, p := range osprofiles.All() {
		cs = append(cs, goldenCase{profile: p.Name, version: "v1.37.2", file: p.Name})
	}
	return append(cs,
		goldenCase{profile: "ubuntu-18.04", version: "v1.23.17", file: "ubuntu-18.04-kubelet-1.23"},
		goldenCase{profile: "centos-7", version: "v1.23.17", file: "centos-7-kubelet-1.23"},
		// An apt profile taking containerd 2.x and runc from the release assets.
		goldenCase{profile: "debian-12", version: "v1.37.2", file: "debian-12-containerd-tarball", install: v1alpha1.InstallTarball})
}

// TestPreviewGolden: `provision node plan` (Preview) of a fresh root, per OS profile (detected from the os-release fixture).
func TestPreviewGolden(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.file, func(t *testing.T) {
			cfg := goldenConfig(c.version)
			cfg.Containerd.Install = c.install
			root := testRoot(t, c.profile, &cfg)
			opts := testOptions(root, newFakeHost(""), true, nil)
			opts.Flags.Token = testToken
			n := prepare(t, opts)
			entries, err := n.Preview(context.Background(), Base, Join)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			n.WritePreview(&out, entries)
			testutil.Golden(t, filepath.Join("testdata", "plan", c.file+".golden"), out.Bytes())
			if _, err := os.Stat(filepath.Join(root, StatusPath)); err == nil {
				t.Errorf("plan wrote a status file")
			}
			if _, err := os.Stat(filepath.Join(root, KubeletConfigPath)); err == nil {
				t.Errorf("plan wrote a file")
			}
		})
	}
}

// TestFilesGolden: every text file base and join write, per OS profile.
func TestFilesGolden(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.file, func(t *testing.T) {
			srv := newArtifactServer(t)
			cfg := goldenConfig(c.version)
			cfg.Containerd.Install = c.install
			tc := testConfig(srv, "")
			cfg.Artifacts = tc.Artifacts
			root := testRoot(t, c.profile, &cfg)
			before := map[string]bool{}
			filepath.WalkDir(root, func(p string, d fs.DirEntry, _ error) error { before[p] = true; return nil })
			opts := testOptions(root, newFakeHost(""), false, nil)
			opts.Flags.Token = testToken
			n := prepare(t, opts)
			if err := n.Run(context.Background(), Base); err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Join(root, "etc/kubernetes/pki"), 0o755)
			os.WriteFile(filepath.Join(root, cfg.Kubernetes.CACertPath), []byte("CA"), 0o644)
			if err := n.Run(context.Background(), Join); err != nil {
				t.Fatal(err)
			}
			var files []string
			filepath.WalkDir(root, func(p string, d fs.DirEntry, _ error) error {
				rel := "/" + strings.TrimPrefix(p, root+"/")
				if !before[p] && d.Type().IsRegular() && (strings.HasPrefix(rel, "/etc/") || strings.HasPrefix(rel, "/var/lib/kubelet/")) {
					files = append(files, rel)
				}
				return nil
			})
			sort.Strings(files)
			var out bytes.Buffer
			for _, f := range files {
				data, _ := os.ReadFile(filepath.Join(root, f))
				fi, _ := os.Stat(filepath.Join(root, f))
				if f == cfg.Kubernetes.BootstrapKubeconfigPath {
					data = bytes.ReplaceAll(data, []byte(testToken), []byte("<token>"))
				}
				data = bytes.ReplaceAll(data, []byte(srv.URL), []byte("http://artifacts.test"))
				fmt.Fprintf(&out, "==> %s (%04o)\n%s\n", f, fi.Mode().Perm(), data)
			}
			testutil.Golden(t, filepath.Join("testdata", "files", c.file+".golden"), out.Bytes())
		})
	}
}
