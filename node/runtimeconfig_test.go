package node

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/osprofiles"
)

// TestContainerdConfigGolden: containerd's config.toml for each format, as a
// golden file (rewritten with -update), and parsed back: every setting sits at
// the key path its containerd version reads (containerd's docs/cri/config.md
// and internal/cri/config of v2.3.7; version 2 as 1.6/1.7 read it).
func TestContainerdConfigGolden(t *testing.T) {
	const cri2, img3, rt3 = "io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime"
	runc2 := []string{"plugins", cri2, "containerd", "runtimes", "runc"}
	runc3 := []string{"plugins", rt3, "containerd", "runtimes", "runc"}
	mirrors := map[string][]string{"docker.io": {"https://mirror.internal"}}
	for _, tc := range []struct {
		name string
		f    containerdFormat
		want map[string]any // key path (dot-joined, plugin names quoted) -> value
	}{
		{"v2", containerdFormat{Version: 2}, map[string]any{
			"version":                                         int64(2),
			key("plugins", cri2, "sandbox_image"):             "registry.k8s.io/pause:3.10",
			key(append(runc2, "runtime_type")...):             "io.containerd.runc.v2",
			key(append(runc2, "options", "SystemdCgroup")...): true,
			key("plugins", cri2, "registry", "config_path"):   ContainerdCertsDir,
			key("plugins", cri2, "cni", "bin_dir"):            CNIBinDir,
			key("plugins", cri2, "cni", "conf_dir"):           CNIConfDir,
			key("plugins", cri2, "restrict_oom_score_adj"):    nil,
		}},
		{"v2-in-container", containerdFormat{Version: 2, InContainer: true}, map[string]any{
			key("plugins", cri2, "restrict_oom_score_adj"): true,
		}},
		{"v2-tarball-1.7", containerdFormat{Version: 2, Runc: "/usr/local/bin/runc"}, map[string]any{
			key(append(runc2, "options", "BinaryName")...): "/usr/local/bin/runc",
		}},
		{"v4", containerdFormat{Version: 4, CNIBinDirs: true, Runc: "/usr/local/bin/runc"}, map[string]any{
			"version": int64(4),
			key("plugins", img3, "pinned_images", "sandbox"):          "registry.k8s.io/pause:3.10",
			key("plugins", img3, "registry", "config_path"):           ContainerdCertsDir,
			key(append(runc3, "runtime_type")...):                     "io.containerd.runc.v2",
			key(append(runc3, "options", "SystemdCgroup")...):         true,
			key(append(runc3, "options", "BinaryName")...):            "/usr/local/bin/runc",
			key("plugins", rt3, "containerd", "default_runtime_name"): "runc",
			key("plugins", rt3, "cni", "bin_dirs"):                    []any{CNIBinDir},
			key("plugins", rt3, "cni", "bin_dir"):                     nil,
			key("plugins", rt3, "cni", "conf_dir"):                    CNIConfDir,
			key("plugins", rt3, "restrict_oom_score_adj"):             nil,
			key("plugins", cri2):                                      nil,
		}},
		{"v4-in-container", containerdFormat{Version: 4, CNIBinDirs: true, InContainer: true}, map[string]any{
			key("plugins", rt3, "restrict_oom_score_adj"):  true,
			key("plugins", img3, "restrict_oom_score_adj"): nil,
		}},
		{"v3-containerd-2.2", containerdFormat{Version: 3, CNIBinDirs: true}, map[string]any{
			"version": int64(3),
			key("plugins", img3, "pinned_images", "sandbox"): "registry.k8s.io/pause:3.10",
			key("plugins", rt3, "cni", "bin_dirs"):           []any{CNIBinDir},
		}},
		{"v3-containerd-2.0", containerdFormat{Version: 3}, map[string]any{
			key("plugins", rt3, "cni", "bin_dir"):  CNIBinDir,
			key("plugins", rt3, "cni", "bin_dirs"): nil,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := renderContainerdConfig(v1alpha1.Containerd{SandboxImage: "registry.k8s.io/pause:3.10", RegistryMirrors: mirrors}, tc.f, nil)
			if err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, filepath.Join("testdata", "containerd", tc.name+".toml"), out)
			var tree map[string]any
			if err := toml.Unmarshal(out, &tree); err != nil {
				t.Fatalf("does not parse: %v\n%s", err, out)
			}
			for k, want := range tc.want {
				got, ok := lookup(tree, k)
				if want == nil {
					if ok {
						t.Errorf("%s = %v, want it absent", k, got)
					}
					continue
				}
				if !ok || !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v (present %v), want %#v", k, got, ok, want)
				}
			}
		})
	}
	if _, err := renderContainerdConfig(v1alpha1.Containerd{SandboxImage: "registry.k8s.io/pause:3.10"}, containerdFormat{Version: 1}, nil); err == nil {
		t.Error("version 1: no error")
	}
}

// key joins a TOML key path with a separator no key contains.
func key(parts ...string) string { return strings.Join(parts, "|") }

func lookup(tree map[string]any, k string) (any, bool) {
	var cur any = tree
	for _, p := range strings.Split(k, "|") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// TestContainerdFormat: which format a node writes. A tarball install knows its
// containerd (containerd.version, else the version its URL names, else the
// default 2.3.7): version 4 for 2.3+, 3 for 2.0-2.2 (bin_dirs from 2.1), 2 for 1.x; a package
// or an OS image's containerd gets version 2, which 1.x reads and 2.x migrates.
func TestContainerdFormat(t *testing.T) {
	for _, tc := range []struct {
		name, profile, install, version, url string
		want                                 containerdFormat
	}{
		{"rocky default tarball", "rocky-9", "", "", "", containerdFormat{Version: 4, CNIBinDirs: true, Runc: "/usr/local/bin/runc"}},
		{"rocky 1.7 tarball by URL", "rocky-9", "", "", "https://m/containerd-1.7.24-linux-amd64.tar.gz", containerdFormat{Version: 2, Runc: "/usr/local/bin/runc"}},
		{"rocky 2.0 by version", "rocky-9", "", "2.0.7", "https://m/ctrd.tgz", containerdFormat{Version: 3, Runc: "/usr/local/bin/runc"}},
		{"debian package", "debian-12", "", "", "", containerdFormat{Version: 2}},
		{"debian tarball", "debian-12", "tarball", "", "", containerdFormat{Version: 4, CNIBinDirs: true, Runc: "/usr/local/bin/runc"}},
		{"debian tarball v-prefixed version", "debian-12", "tarball", "v2.2.9", "", containerdFormat{Version: 3, CNIBinDirs: true, Runc: "/usr/local/bin/runc"}},
		{"flatcar image", "flatcar", "", "", "", containerdFormat{Version: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newArtifactServer(t)
			cfg := testConfig(srv, tc.profile)
			cfg.Containerd.Install = osprofiles.RuntimeSource(tc.install)
			cfg.Containerd.Version = tc.version
			if tc.url != "" {
				a := cfg.Artifacts["containerd"]
				a.URL = tc.url
				cfg.Artifacts["containerd"] = a
			}
			root := testRoot(t, tc.profile, &cfg)
			n := prepare(t, testOptions(root, newFakeHost(""), false, nil))
			if got := n.containerdFormat(); got != tc.want {
				t.Errorf("format = %+v, want %+v", got, tc.want)
			}
			if _, err := n.Tasks(Base); err != nil {
				t.Fatal(err)
			}
		})
	}
}
