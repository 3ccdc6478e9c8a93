package node

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/provision-dev/provision/internal/fsroot"
	"github.com/provision-dev/provision/internal/kubeversions"
)

// TestSystemdResolved: the kubelet's resolvConf follows kubeadm's detection of
// systemd-resolved, from the root's files only.
func TestSystemdResolved(t *testing.T) {
	tests := []struct {
		name  string
		setup func(root string)
		want  bool
	}{
		{"no resolv.conf", func(string) {}, false},
		{"a regular file", func(root string) {
			os.WriteFile(filepath.Join(root, "etc/resolv.conf"), []byte("nameserver 10.0.0.2\n"), 0o644)
		}, false},
		{"absolute link to the stub", func(root string) {
			os.Symlink(ResolvedStubResolvConf, filepath.Join(root, "etc/resolv.conf"))
		}, true},
		{"relative link to the stub (Ubuntu)", func(root string) {
			os.Symlink("../run/systemd/resolve/stub-resolv.conf", filepath.Join(root, "etc/resolv.conf"))
		}, true},
		{"link elsewhere", func(root string) {
			os.Symlink("/run/NetworkManager/resolv.conf", filepath.Join(root, "etc/resolv.conf"))
		}, false},
		{"resolved running, resolv.conf its own file", func(root string) {
			os.WriteFile(filepath.Join(root, "etc/resolv.conf"), []byte("nameserver 10.0.0.2\n"), 0o644)
			os.MkdirAll(filepath.Join(root, "run/systemd/resolve"), 0o755)
			os.WriteFile(filepath.Join(root, ResolvedResolvConf), []byte("nameserver 10.0.0.2\n"), 0o644)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
			tt.setup(dir)
			root, err := fsroot.New(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := systemdResolved(root); got != tt.want {
				t.Fatalf("systemdResolved = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestJoinResolvConf: join on a systemd-resolved root points the kubelet at the
// upstream servers; elsewhere the kubelet keeps its default.
func TestJoinResolvConf(t *testing.T) {
	for _, resolved := range []bool{false, true} {
		cfg := goldenConfig("v1.37.2")
		root := testRoot(t, "ubuntu-24.04", &cfg)
		if resolved {
			os.Symlink("../run/systemd/resolve/stub-resolv.conf", filepath.Join(root, "etc/resolv.conf"))
		}
		opts := testOptions(root, newFakeHost(""), true, nil)
		opts.Flags.Token = testToken
		n := prepare(t, opts)
		out, err := renderKubeletConfig(n.Config.Kubernetes, n.Release(), n.in.resolvConf)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Contains(string(out), "resolvConf: "+ResolvedResolvConf+"\n")
		if got != resolved || strings.Contains(string(out), "resolvConf") != resolved {
			t.Errorf("resolved=%v: kubelet config\n%s", resolved, out)
		}
		for _, want := range []string{"clusterDNS:\n- 10.96.0.10\n", "clusterDomain: cluster.local\n"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("no %q in\n%s", want, out)
			}
		}
	}
}

// TestRegistration: labels reach --node-labels and taints registerWithTaints
// (the flag for kubelets without the field), both sorted whatever the input order.
func TestRegistration(t *testing.T) {
	tests := []struct {
		version         string
		wantConfigTaint bool
	}{{"v1.37.2", true}, {"v1.23.17", true}, {"v1.22.17", false}, {"v1.21.14", false}}
	for _, tt := range tests {
		cfg := goldenConfig(tt.version)
		cfg.Kubernetes.NodeLabels = map[string]string{"example.com/z": "1", "example.com/a": "", "node.kubernetes.io/pool": "p"}
		cfg.Kubernetes.Taints = []string{"z=1:NoExecute", "a:NoSchedule", "a=x:PreferNoSchedule"}
		root := testRoot(t, "debian-12", &cfg)
		n := prepare(t, testOptions(root, newFakeHost(""), true, nil))
		args := strings.Join(n.kubeletArgs(), " ")
		if !strings.Contains(args, " --node-labels=example.com/a=,example.com/z=1,node.kubernetes.io/pool=p") {
			t.Errorf("%s: kubelet args %s", tt.version, args)
		}
		out, err := renderKubeletConfig(n.Config.Kubernetes, n.Release(), "")
		if err != nil {
			t.Fatal(err)
		}
		const inConfig = "registerWithTaints:\n- effect: NoSchedule\n  key: a\n- effect: PreferNoSchedule\n  key: a\n  value: x\n- effect: NoExecute\n  key: z\n  value: \"1\"\n"
		if got := strings.Contains(string(out), inConfig); got != tt.wantConfigTaint {
			t.Errorf("%s: registerWithTaints in config = %v:\n%s", tt.version, got, out)
		}
		if got := strings.Contains(args, " --register-with-taints=a:NoSchedule,a=x:PreferNoSchedule,z=1:NoExecute"); got == tt.wantConfigTaint {
			t.Errorf("%s: --register-with-taints in args = %v: %s", tt.version, got, args)
		}
	}
}

// TestServerTLSBootstrap: off unless the node config turns it on (kubeadm's
// default: a serving CSR nobody approves breaks kubectl logs/exec).
func TestServerTLSBootstrap(t *testing.T) {
	for _, on := range []bool{false, true} {
		k := goldenConfig("v1.37.2").Kubernetes
		k.ServerTLSBootstrap = on
		out, err := renderKubeletConfig(k, kubeversions.MustFor(k.Version), "")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(out), "serverTLSBootstrap: true\n"); got != on {
			t.Errorf("serverTLSBootstrap %v rendered as:\n%s", on, out)
		}
	}
}

// TestKubeletConfigMerge: the node config's kubeletConfig is merged over
// provision's defaults (objects key by key, null removes), and the result is
// filtered by the kubelet minor like every rendered field.
func TestKubeletConfigMerge(t *testing.T) {
	k := goldenConfig("v1.37.2").Kubernetes
	k.KubeletConfig = map[string]any{
		"maxPods":             float64(50),
		"evictionHard":        map[string]any{"memory.available": "500Mi", "imagefs.available": nil},
		"kubeReserved":        nil,
		"featureGates":        map[string]any{"KubeletTracing": true},
		"shutdownGracePeriod": "30s",
		"resolvConf":          "/etc/resolv.kubelet.conf",
	}
	out, err := renderKubeletConfig(k, kubeversions.MustFor(k.Version), ResolvedResolvConf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"maxPods: 50\n", "  memory.available: 500Mi\n", "  nodefs.available: 10%\n", "featureGates:\n  KubeletTracing: true\n",
		"shutdownGracePeriod: 30s\n", "resolvConf: /etc/resolv.kubelet.conf\n", "systemReserved:\n", "cgroupDriver: systemd\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	for _, gone := range []string{"imagefs.available", "kubeReserved"} {
		if strings.Contains(string(out), gone) {
			t.Errorf("%s not removed:\n%s", gone, out)
		}
	}
	// A merge the kubelet's types refuse fails the render with the field's path.
	k.KubeletConfig = map[string]any{"evictionHard": "all"}
	if _, err := renderKubeletConfig(k, kubeversions.MustFor(k.Version), ""); err == nil || !strings.Contains(err.Error(), "kubernetes.kubeletConfig.evictionHard: must be of type") {
		t.Fatalf("err = %v", err)
	}
}

func TestMergeJSON(t *testing.T) {
	base := map[string]any{"a": float64(1), "m": map[string]any{"x": "1", "y": "2"}, "l": []any{"p"}}
	got := mergeJSON(base, map[string]any{"a": float64(2), "m": map[string]any{"y": nil, "z": "3"}, "l": []any{"q"}, "n": map[string]any{"k": nil}})
	want := map[string]any{"a": float64(2), "m": map[string]any{"x": "1", "z": "3"}, "l": []any{"q"}, "n": map[string]any{}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if base["a"] != float64(1) || len(base["m"].(map[string]any)) != 2 {
		t.Fatalf("base changed: %v", base)
	}
}

// TestKubeletExtraArgs: extra flags follow provision's, sorted, each one
// ExecStart argument however systemd-special its characters.
func TestKubeletExtraArgs(t *testing.T) {
	cfg := goldenConfig("v1.37.2")
	cfg.Kubernetes.KubeletExtraArgs = map[string]string{"provider-id": "openstack:///0c5b6bc1", "hostname-override": "worker-1",
		"v": "2", "image-credential-provider-config": `/etc/x"y$z%w\q`}
	root := testRoot(t, "debian-12", &cfg)
	n := prepare(t, testOptions(root, newFakeHost(""), true, nil))
	args := n.kubeletArgs()
	tail := args[len(args)-4:]
	want := []string{"--hostname-override=worker-1", `--image-credential-provider-config=/etc/x"y$z%w\q`, "--provider-id=openstack:///0c5b6bc1", "--v=2"}
	if !reflect.DeepEqual(tail, want) {
		t.Fatalf("kubelet args end with %q, want %q", tail, want)
	}
	line := string(n.kubeletDropIn())
	if !strings.Contains(line, ` "--image-credential-provider-config=/etc/x\"y$$z%%w\\q" --provider-id=openstack:///0c5b6bc1 --v=2`+"\n") {
		t.Fatalf("drop-in:\n%s", line)
	}
}
