//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/testenv"
	"github.com/provision-dev/provision/osprofiles"
)

// debian13Kubelet is the kubelet version of the Debian 13 scenario: the newest
// supported minor, which refuses cgroup v1 hosts by default (base installs the
// stand-in kubelet but never runs it).
const debian13Kubelet = "v1.37.2"

// TestNodeBaseDebian13 boots a debootstrapped Debian 13 (trixie) root and runs
// `provision node base` there, with packages from the test's own trixie apt
// repository and artifacts from the test's server: the OS is detected from the
// root's os-release as debian-13, Debian's containerd 1.7 runs with provision's
// config, status.json records the machine's cgroup version, and a re-run changes
// nothing. On a machine with cgroup v1 (where the kubelet of the config refuses
// to start), base first fails at its cgroup check, before installing anything,
// naming the fix; it then runs with failCgroupV1: false.
func TestNodeBaseDebian13(t *testing.T) {
	testenv.Require(t)
	start := time.Now()
	prof, err := osprofiles.Get("debian-13")
	if err != nil {
		t.Fatal(err)
	}
	pkgs := append(append([]string(nil), prof.Packages...), prof.ContainerdPackage)
	done := testenv.Phase(t, "trixie apt repository")
	repo := testenv.NewAptRepo(t, testenv.Trixie, append(pkgs, "containernetworking-plugins")...)
	done()
	a := buildNodeArtifacts(t, repo)
	ns := testenv.NewNetNS(t)
	srv, requests := serveNode(t, ns, repo, a)

	done = testenv.Phase(t, "trixie root")
	root := testenv.NewRoot(t, testenv.Trixie)
	done()
	if osr := string(root.ReadFile(t, "/etc/os-release")); !strings.Contains(osr, `VERSION_ID="13"`) || !strings.Contains(osr, "ID=debian") {
		t.Fatalf("the trixie root is not Debian 13:\n%s", osr)
	}
	root.CopyFile(t, a.provision, "/usr/local/bin/provision", 0o755)
	root.CopyFile(t, repo.KeyFile, testenv.KeyringPath, 0o644)
	cfg := servedNodeConfig(srv.URL, a, debian13Kubelet, repo.Suite) // no osProfile: detected from /etc/os-release
	m := testenv.Boot(t, root, ns)

	fsType := strings.TrimSpace(m.MustRun(t, 10*time.Second, "stat", "-f", "-c", "%T", "/sys/fs/cgroup"))
	cgroup := map[bool]string{true: "v2", false: "v1"}[fsType == "cgroup2fs"]
	t.Logf("the machine's /sys/fs/cgroup is %s: cgroup %s", fsType, cgroup)
	if cgroup == "v1" {
		refusedOnCgroupV1(t, m, root, cfg, requests)
		optOut := false
		cfg.Kubernetes.FailCgroupV1 = &optOut
	}
	root.WriteFile(t, v1alpha1.NodeConfigPath, marshalNodeConfig(t, cfg), 0o644)

	requests.reset()
	first, st := runBase(t, m, root)
	t.Logf("base on the fresh Debian 13 root: %v (requests: %v; %s)", first.Round(time.Millisecond), requests.reset(), slowTasks(st))
	if base := st.Phases["base"]; base.Result != "success" {
		t.Errorf("status.json: phases.base.result = %q, want success", base.Result)
	}
	if st.Host.OSProfile != "debian-13" || st.Host.ProfileSource != "/etc/os-release" {
		t.Errorf("status.json host: profile %q from %q, want debian-13 from /etc/os-release", st.Host.OSProfile, st.Host.ProfileSource)
	}
	if st.Host.CgroupVersion != cgroup {
		t.Errorf("status.json host.cgroupVersion = %q, want %s", st.Host.CgroupVersion, cgroup)
	}
	for _, task := range st.Phases["base"].Tasks {
		if task.Name == "kernel/cgroup" && !strings.Contains(task.Detail, "cgroup "+cgroup) {
			t.Errorf("kernel/cgroup: %q, want the machine's cgroup %s", task.Detail, cgroup)
		}
		if task.Result == "failed" {
			t.Errorf("task %s failed: %s", task.Name, task.Detail)
		}
	}

	second, st := runBase(t, m, root)
	reqs := requests.reset()
	t.Logf("base re-run (no change): %v (requests: %v)", second.Round(time.Millisecond), reqs)
	if reqs["artifacts"] != 0 {
		t.Errorf("re-run downloaded %d artifacts", reqs["artifacts"])
	}
	for _, task := range st.Phases["base"].Tasks {
		if task.Result != "unchanged" && task.Result != "skipped" {
			t.Errorf("re-run: task %s result %q, want unchanged", task.Name, task.Result)
		}
	}

	checkNodeFiles(t, m, root, a)
	version := strings.TrimSpace(m.MustRun(t, 10*time.Second, "dpkg-query", "-W", "-f", "${Version}", "containerd"))
	running := strings.TrimSpace(m.MustRun(t, 10*time.Second, "containerd", "--version"))
	t.Logf("containerd package %s; %s", version, running)
	if !strings.HasPrefix(version, "1.7.") {
		t.Errorf("Debian 13's containerd package is %s, want 1.7.x", version)
	}
	m.Stop()
	t.Logf("TestNodeBaseDebian13: %v in all", time.Since(start).Round(time.Millisecond))
}

// refusedOnCgroupV1 runs base on the cgroup v1 machine with a kubelet that
// refuses cgroup v1 and no opt-out: it must fail at kernel/cgroup, naming the
// host's cgroup version, the kubelet and the fix, having installed and
// downloaded nothing.
func refusedOnCgroupV1(t *testing.T, m *testenv.Machine, root *testenv.Root, cfg v1alpha1.NodeConfig, requests *requestLog) {
	t.Helper()
	root.WriteFile(t, v1alpha1.NodeConfigPath, marshalNodeConfig(t, cfg), 0o644)
	requests.reset()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := m.Exec(ctx, "/usr/local/bin/provision", "node", "base", "--config", v1alpha1.NodeConfigPath)
	if err != nil {
		t.Fatalf("provision node base: %v", err)
	}
	t.Logf("base with kubelet %s on cgroup v1: exit %d in %v; stderr:\n%s", cfg.Kubernetes.Version, r.ExitCode, r.Duration.Round(time.Millisecond), tail(r.Stderr, 8))
	if r.ExitCode == 0 {
		t.Fatalf("base with kubelet %s succeeded on a cgroup v1 machine without failCgroupV1: false", cfg.Kubernetes.Version)
	}
	for _, w := range []string{"task kernel/cgroup", "this host runs cgroup v1", "kubelet " + cfg.Kubernetes.Version + " refuses to start on cgroup v1",
		"systemd.unified_cgroup_hierarchy=1", "kubernetes.failCgroupV1: false"} {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("base's error does not say %q:\n%s", w, tail(r.Stderr, 8))
		}
	}
	var st status
	if data, err := os.ReadFile(root.Path("/var/lib/provision/status.json")); err != nil || json.Unmarshal(data, &st) != nil {
		t.Fatalf("status.json: %v", err)
	}
	if st.Phases["base"].Result != "failed" || st.Host.CgroupVersion != "v1" || st.Host.OSProfile != "debian-13" {
		t.Errorf("status.json after the refusal: base %q, host %+v; want failed, v1, debian-13", st.Phases["base"].Result, st.Host)
	}
	if reqs := requests.reset(); reqs["artifacts"]+reqs["apt"] != 0 {
		t.Errorf("the refused base made requests: %v", reqs)
	}
	if r, _ := m.Exec(ctx, "dpkg-query", "-W", "-f", "${db:Status-Status}", "containerd"); strings.TrimSpace(r.Stdout) == "installed" {
		t.Errorf("the refused base installed containerd")
	}
}
