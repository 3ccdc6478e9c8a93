package node

import (
	"bytes"
	"context"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/internal/download"
	"github.com/provision-dev/provision/internal/logging"
	"github.com/provision-dev/provision/internal/runner"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/node/nodeconfig"
	"github.com/provision-dev/provision/node/tasks"
)

// artifactServer serves fake release artifacts and counts requests.
type artifactServer struct{ *testutil.ArtifactServer }

func newArtifactServer(t testing.TB) *artifactServer {
	files := map[string][]byte{}
	for _, a := range artifacts.Configurable() {
		files["/"+a.File] = fakeArtifact(t, a)
	}
	return &artifactServer{testutil.NewArtifactServer(t, files)}
}

// fakeArtifact is what the artifact server serves for a row of internal/artifacts:
// the archives the builders extract hold the members they extract; any other
// archive holds one file, a binary is a script.
func fakeArtifact(t testing.TB, a artifacts.Artifact) []byte {
	switch a.Name {
	case artifacts.CNIPlugins:
		return testutil.TarGz(t, map[string]string{"./bridge": "bridge-bin", "./host-local": "host-local-bin", "./loopback": "lo-bin"})
	case artifacts.Crictl:
		return testutil.TarGz(t, map[string]string{"crictl": "crictl-bin"})
	case artifacts.Containerd:
		return testutil.TarGz(t, map[string]string{"bin/containerd": "ctrd", "bin/ctr": "ctr", "bin/containerd-shim-runc-v2": "shim"})
	}
	if a.Install == artifacts.Archive {
		return testutil.TarGz(t, map[string]string{a.Name: a.Name + "-bin"})
	}
	return []byte("#!/bin/sh\necho fake " + a.Name + "\n")
}

func (s *artifactServer) artifact(p string) v1alpha1.Artifact {
	url, sum := s.URLAndSum(p)
	return v1alpha1.Artifact{URL: url, SHA256: sum, AllowHTTP: true} // the test server is plain http
}

// testConfig is a pinned node config whose artifacts come from srv.
func testConfig(srv *artifactServer, profile string) v1alpha1.NodeConfig {
	c := nodeconfig.New("v1.37.2", "amd64")
	c.OSProfile = profile
	c.Kubernetes.APIServerURL = "https://127.0.0.1:6443"
	c.Kubernetes.ClusterDNS = []string{"10.96.0.10"}
	c.Kubernetes.ClusterDomain = "cluster.local"
	c.Artifacts = v1alpha1.Artifacts{}
	for _, a := range artifacts.Configurable() {
		c.Artifacts[a.Name] = srv.artifact("/" + a.File)
	}
	c.Containerd.RegistryMirrors = map[string][]string{"docker.io": {"https://mirror-b.internal", "https://mirror-a.internal"}}
	return c
}

// fakeHost is a fake runner that keeps the state real tools would change:
// installed packages, enabled and active units.
type fakeHost struct {
	*runner.Fake
	mu        sync.Mutex
	installed map[string]bool
	enabled   map[string]bool
	active    map[string]bool
	container string
	root      string // sysctl and modprobe write their effect under root's /proc and /sys
	// kubeletLog is what journalctl shows of the kubelet. Unless refuse is set,
	// starting kubelet.service completes its TLS bootstrap (writes the client certificate).
	kubeletLog string
	refuse     bool
	// containerd overrides what `containerd --version` prints.
	containerd string
}

func newFakeHost(container string) *fakeHost {
	h := &fakeHost{Fake: &runner.Fake{}, installed: map[string]bool{}, enabled: map[string]bool{}, active: map[string]bool{}, container: container}
	h.OnFunc(nil, h.answer)
	return h
}

func (h *fakeHost) answer(c runner.Cmd) runner.Result {
	h.mu.Lock()
	defer h.mu.Unlock()
	argv := c.Argv
	if len(argv) > 2 && argv[0] == "chroot" {
		argv = argv[2:]
	}
	var args []string // argv without --root/--installroot/--releasever options
	for i := 0; i < len(argv); i++ {
		switch argv[i] {
		case "--root", "--installroot", "--releasever":
			i++
			continue
		}
		args = append(args, argv[i])
	}
	last := args[len(args)-1]
	switch args[0] {
	case "systemd-detect-virt":
		if h.container == "" {
			return runner.Result{Stdout: []byte("none\n"), ExitCode: 1}
		}
		return runner.Result{Stdout: []byte(h.container + "\n")}
	case "dpkg-query":
		var out strings.Builder
		code := 0
		for _, p := range args[3:] {
			if h.installed[p] {
				out.WriteString(p + "\tii \n")
			} else {
				code = 1
			}
		}
		return runner.Result{Stdout: []byte(out.String()), ExitCode: code}
	case "rpm":
		var out strings.Builder
		code := 0
		for _, p := range args[4:] {
			if h.installed[p] {
				out.WriteString(p + "\n")
			} else {
				out.WriteString("package " + p + " is not installed\n")
				code++
			}
		}
		return runner.Result{Stdout: []byte(out.String()), ExitCode: code}
	case "apt-get", "dnf", "yum":
		install := false
		for _, a := range args {
			if install && !strings.HasPrefix(a, "-") {
				h.installed[a] = true
			}
			if a == "install" {
				install = true
			}
		}
	case "sysctl":
		data, _ := os.ReadFile(last)
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
				p := filepath.Join(h.root, "proc/sys", strings.ReplaceAll(strings.TrimSpace(k), ".", "/"))
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte(strings.TrimSpace(v)+"\n"), 0o644)
			}
		}
	case "modprobe":
		os.MkdirAll(filepath.Join(h.root, "sys/module", last), 0o755)
	case "systemctl":
		switch args[1] {
		case "is-enabled":
			if h.enabled[last] {
				return runner.Result{Stdout: []byte("enabled\n")}
			}
			return runner.Result{Stdout: []byte("disabled\n"), ExitCode: 1}
		case "is-active":
			if h.active[last] {
				return runner.Result{}
			}
			return runner.Result{ExitCode: 3}
		case "enable":
			h.enabled[last] = true
			if args[2] == "--now" {
				h.active[last] = true
			}
			if args[2] == "--now" && last == "kubelet.service" && !h.refuse && h.root != "" {
				p := filepath.Join(h.root, KubeletClientCertPath)
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte("cert"), 0o600)
			}
		case "start", "restart":
			h.active[last] = true
			if last == "kubelet.service" && !h.refuse && h.root != "" {
				p := filepath.Join(h.root, KubeletClientCertPath)
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte("cert"), 0o600)
			}
		}
	case "journalctl":
		return runner.Result{Stdout: []byte(h.kubeletLog)}
	}
	if path.Base(args[0]) == "containerd" && len(args) > 1 && args[1] == "--version" {
		return runner.Result{Stdout: []byte(h.containerdVersion(args[0]))}
	}
	return runner.Result{}
}

// containerdVersion is what `containerd --version` prints: the tarball's
// 2.3.7 for a binary given by path, else Debian 12's package (or h.containerd).
func (h *fakeHost) containerdVersion(bin string) string {
	switch {
	case h.containerd != "":
		return h.containerd
	case strings.HasPrefix(bin, "/"):
		return "containerd github.com/containerd/containerd/v2 v2.3.7 go-module-proxy\n"
	}
	return "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1\n"
}

// testRoot is a temp root with an os-release fixture and, when config is set, a node.yaml.
func testRoot(t testing.TB, profile string, cfg *v1alpha1.NodeConfig) string {
	t.Helper()
	root := t.TempDir()
	data, err := os.ReadFile(filepath.Join("..", "osprofiles", "testdata", "os-release", profile))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "os-release"), data, 0o644)
	os.WriteFile(filepath.Join(root, "etc", "fstab"), []byte("UUID=abc / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n"), 0o644)
	if cfg != nil {
		y, err := cfg.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(root, "etc", "provision"), 0o755)
		os.WriteFile(filepath.Join(root, "etc", "provision", "node.yaml"), y, 0o644)
	}
	return root
}

const testToken = "abcdef.0123456789abcdef"

func testOptions(root string, host runner.Runner, live bool, logs *bytes.Buffer) Options {
	if h, ok := host.(*fakeHost); ok {
		h.root = root
	}
	if logs == nil {
		logs = &bytes.Buffer{}
	}
	return Options{
		Root:           root,
		Runner:         host,
		Log:            logging.New(logs, -4),
		Live:           &live,
		Downloader:     &download.Downloader{Attempts: 2, BaseDelay: time.Millisecond, StallTimeout: 2 * time.Second},
		HealthzTimeout: 2 * time.Second,
		Now:            func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) },
		// A cgroup v2 host, whatever the machine running the tests boots.
		CgroupDetector: func() (tasks.CgroupVersion, error) { return 2, nil },
	}
}

func prepare(t testing.TB, opts Options) *Node {
	t.Helper()
	n, err := Prepare(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
