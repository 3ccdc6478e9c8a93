//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/internal/testenv"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/node"
	"github.com/provision-dev/provision/node/nodeconfig"
)

// e2eSandboxImage is the node config's sandbox image in these scenarios: a
// name no registry serves, so a pod sandbox that starts proves the running
// containerd pinned the image provision's config names.
const e2eSandboxImage = "provision.test/e2e/pause:1"

// pathLog counts the requests of the test's HTTP server per path.
type pathLog struct {
	mu     sync.Mutex
	counts map[string]int
}

func (l *pathLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.counts[r.URL.Path]++
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (l *pathLog) get(p string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[p]
}

// runtimeServer serves the apt repository, the node's artifacts and the
// containerd and runc release assets as upstream lays them out:
// /releases/containerd/vX/containerd-X-linux-amd64.tar.gz{,.sha256sum} and
// /releases/runc/vY/{runc.amd64,runc.sha256sum}.
func runtimeServer(t *testing.T, ns *testenv.NetNS, repo *testenv.AptRepo, a nodeArtifacts, rel testenv.Release) (*testenv.Server, *pathLog) {
	mux := http.NewServeMux()
	mux.Handle("/apt/", http.StripPrefix("/apt/", http.FileServer(http.Dir(repo.Dir))))
	mux.Handle("/artifacts/", http.StripPrefix("/artifacts/", http.FileServer(http.Dir(a.dir))))
	cd := "/releases/containerd/" + testenv.ContainerdVersion + "/"
	rc := "/releases/runc/" + testenv.RuncVersion + "/"
	mux.Handle(cd, http.StripPrefix(cd, http.FileServer(http.Dir(rel.ContainerdDir))))
	mux.Handle(rc, http.StripPrefix(rc, http.FileServer(http.Dir(rel.RuncDir))))
	log := &pathLog{counts: map[string]int{}}
	return ns.Serve(t, log.wrap(mux)), log
}

// TestContainerdTarball runs `provision node base` in a booted Debian 12 root
// with containerd.install: tarball: containerd 2.3.7 and runc 1.3.7, built from
// the Go module proxy by hack/build-containerd.sh and served as upstream's
// release assets, unpinned, so each is verified through its own checksum
// convention. It asserts that the running containerd is the tarball's, reads
// provision's version 4 config (runc options, CNI dirs, and the pinned sandbox
// image: a pod sandbox of an image no registry serves starts), runs the built
// runc, and that no containerd package is installed; a second base changes
// nothing. Then, in a second root, a Flatcar-style containerd unit (Flatcar's
// sysext unit: `containerd --config ${CONTAINERD_CONFIG}`, pointing at
// /usr/share/containerd/config.toml, running the same binaries from /usr/bin)
// is made to read provision's config by base's drop-in, as systemd resolves it.
func TestContainerdTarball(t *testing.T) {
	testenv.Require(t)
	start := time.Now()
	rel := testenv.ContainerdRelease(t)
	repo := localRepo(t)
	a := buildNodeArtifacts(t, repo)
	pauseTar := testenv.PauseImage(t, t.TempDir())
	ns := testenv.NewNetNS(t)
	srv, requests := runtimeServer(t, ns, repo, a, rel)
	containerdURL := srv.URL + "/releases/containerd/" + testenv.ContainerdVersion + "/" + rel.ContainerdTarball
	runcURL := srv.URL + "/releases/runc/" + testenv.RuncVersion + "/runc.amd64"
	t.Logf("setup (builds, repository, roots cached or built): %v", time.Since(start).Round(time.Millisecond))

	// The built containerd reads the config goldens of node/runtimeconfig_test.go
	// (`containerd config dump` parses, migrates and merges a file without
	// starting): version 4 without migration, 3 and 2 migrated; the version 2
	// file a package or an image node gets means the same as the version 4 one.
	t.Run("config formats", func(t *testing.T) {
		bin := filepath.Join(rel.ContainerdDir, "bin", "containerd")
		dump := func(name string) (stdout, stderr string) {
			t.Helper()
			cmd := exec.Command(bin, "--config", filepath.Join(testenv.ModuleRoot(t), "node", "testdata", "containerd", name+".toml"), "config", "dump")
			var so, se strings.Builder
			cmd.Stdout, cmd.Stderr = &so, &se
			if err := cmd.Run(); err != nil {
				t.Fatalf("containerd config dump %s: %v\n%s", name, err, se.String())
			}
			return so.String(), se.String()
		}
		for name, migrated := range map[string]string{"v4": "", "v4-in-container": "", "v3-containerd-2.2": "version 3", "v3-containerd-2.0": "version 3", "v2": "version 2"} {
			_, stderr := dump(name)
			switch {
			case migrated == "" && stderr != "":
				t.Errorf("%s: containerd %s says: %s", name, testenv.ContainerdVersion, stderr)
			case migrated != "" && !strings.Contains(stderr, "Configuration migrated from "+migrated):
				t.Errorf("%s: no migration from %s reported: %q", name, migrated, stderr)
			}
		}
		v2, _ := dump("v2-in-container")
		v4, _ := dump("v4-in-container")
		if v2 != v4 || !strings.Contains(v4, "sandbox = 'registry.k8s.io/pause:3.10'") {
			t.Errorf("the version 2 and 4 configs mean different things to containerd %s:\n--- v2\n%s\n--- v4\n%s", testenv.ContainerdVersion, v2, v4)
		}
	})

	t.Run("debian-12 tarball", func(t *testing.T) {
		cfg, err := nodeconfig.Parse(nodeConfig(t, srv.URL, a))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Containerd.Install = v1alpha1.InstallTarball
		cfg.Containerd.SandboxImage = e2eSandboxImage
		// Unpinned: the checksums come from the release's own files.
		cfg.Artifacts[artifacts.Containerd] = v1alpha1.Artifact{URL: containerdURL, AllowHTTP: true}
		cfg.Artifacts[artifacts.Runc] = v1alpha1.Artifact{URL: runcURL, AllowHTTP: true}
		data := marshalNodeConfig(t, cfg)

		root := testenv.NewRoot(t, testenv.Bookworm)
		root.CopyFile(t, a.provision, "/usr/local/bin/provision", 0o755)
		root.CopyFile(t, repo.KeyFile, testenv.KeyringPath, 0o644)
		root.WriteFile(t, v1alpha1.NodeConfigPath, data, 0o644)
		testenv.InstallNodeShims(t, root, pauseTar)
		m := testenv.Boot(t, root, ns)

		first, st := runBase(t, m, root)
		t.Logf("base with the tarball runtime on a fresh root: %v (%s)", first.Round(time.Millisecond), slowTasks(st))
		details := map[string]string{}
		for _, task := range st.Phases["base"].Tasks {
			details[task.Name] = task.Detail
			if task.Result == "failed" {
				t.Errorf("task %s failed: %s", task.Name, task.Detail)
			}
		}
		for _, p := range []string{
			"/releases/containerd/" + testenv.ContainerdVersion + "/" + rel.ContainerdTarball + ".sha256sum",
			"/releases/runc/" + testenv.RuncVersion + "/runc.sha256sum",
		} {
			if n := requests.get(p); n != 1 {
				t.Errorf("%s requested %d times, want once: the checksum convention of the artifact", p, n)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out := func(argv ...string) string {
			t.Helper()
			s, err := m.Output(ctx, argv...)
			if err != nil {
				t.Errorf("%v\njournal:\n%s", err, tail(m.Journal(), 30))
			}
			return s
		}

		// The running containerd is the tarball's, started by provision's unit.
		show := out("systemctl", "show", "containerd", "-p", "ActiveState", "-p", "FragmentPath", "-p", "ExecStart")
		for _, want := range []string{"ActiveState=active", "FragmentPath=" + node.ContainerdUnitPath, "path=/usr/local/bin/containerd"} {
			if !strings.Contains(show, want) {
				t.Errorf("systemctl show containerd lacks %q:\n%s", want, show)
			}
		}
		if v := out("/usr/local/bin/ctr", "version"); !strings.Contains(v, "Server:") || !strings.Contains(v[strings.Index(v, "Server:"):], "Version:  "+testenv.ContainerdVersion) {
			t.Errorf("ctr version: the running daemon is not %s:\n%s", testenv.ContainerdVersion, v)
		} else {
			t.Logf("ctr version:\n%s", strings.TrimSpace(v))
		}
		if r, _ := m.Exec(ctx, "dpkg-query", "-W", "-f=${db:Status-Abbrev}", "containerd"); strings.HasPrefix(r.Stdout, "ii") {
			t.Errorf("the containerd package is installed on a tarball node")
		}
		if d := details["containerd/version"]; !strings.Contains(d, "containerd "+strings.TrimPrefix(testenv.ContainerdVersion, "v")+" (installed)") {
			t.Errorf("status.json containerd/version: %q", d)
		}

		// runc is the built one.
		if got, want := testutil.SHA256File(t, root.Path("/usr/local/bin/runc")), testutil.SHA256File(t, filepath.Join(rel.RuncDir, "runc.amd64")); got != want {
			t.Errorf("/usr/local/bin/runc sha256 %s, want the served runc.amd64's %s", got, want)
		}
		if v := out("/usr/local/bin/runc", "--version"); !strings.Contains(v, "runc version "+strings.TrimPrefix(testenv.RuncVersion, "v")) || !strings.Contains(v, "commit: go-module-proxy") {
			t.Errorf("runc --version: %s", v)
		}

		// provision's config: written as version 4, read without migration.
		conf := string(root.ReadFile(t, node.ContainerdConfigPath))
		if !strings.Contains(conf, "version = 4\n") || !strings.Contains(conf, "sandbox = '"+e2eSandboxImage+"'") {
			t.Errorf("%s:\n%s", node.ContainerdConfigPath, conf)
		}
		if j := out("journalctl", "-u", "containerd", "--no-pager"); strings.Contains(j, "Configuration migrated") || strings.Contains(j, "level=error") {
			t.Errorf("containerd migrated the config or logged errors:\n%s", tail(j, 30))
		}
		var info struct {
			Config struct {
				Containerd struct {
					DefaultRuntimeName string `json:"defaultRuntimeName"`
					Runtimes           map[string]struct {
						Type    string         `json:"runtimeType"`
						Options map[string]any `json:"options"`
					} `json:"runtimes"`
				} `json:"containerd"`
				CNI struct {
					BinDirs []string `json:"binDirs"`
					ConfDir string   `json:"confDir"`
				} `json:"cni"`
				RestrictOOMScoreAdj bool `json:"restrictOOMScoreAdj"`
			} `json:"config"`
		}
		raw := out("/usr/local/bin/crictl", "info")
		if err := json.Unmarshal([]byte(raw), &info); err != nil {
			t.Fatalf("crictl info: %v\n%s", err, tail(raw, 40))
		}
		c := info.Config
		runc := c.Containerd.Runtimes["runc"]
		if c.Containerd.DefaultRuntimeName != "runc" || runc.Type != "io.containerd.runc.v2" || runc.Options["SystemdCgroup"] != true ||
			runc.Options["BinaryName"] != "/usr/local/bin/runc" || strings.Join(c.CNI.BinDirs, ",") != node.CNIBinDir || c.CNI.ConfDir != node.CNIConfDir || !c.RestrictOOMScoreAdj {
			t.Errorf("crictl info: the running containerd does not use provision's config: %+v\n%s", c, tail(raw, 60))
		} else {
			t.Logf("crictl info: default runtime runc (%s, SystemdCgroup %v, BinaryName %v), CNI %v %s, restrictOOMScoreAdj %v",
				runc.Type, runc.Options["SystemdCgroup"], runc.Options["BinaryName"], c.CNI.BinDirs, c.CNI.ConfDir, c.RestrictOOMScoreAdj)
		}

		// A pod sandbox: the pinned sandbox image (imported under the config's
		// name; no registry is reachable), run by the built runc.
		out("/usr/local/bin/ctr", "-n", "k8s.io", "images", "import", testenv.PauseTarPath)
		out("/usr/local/bin/ctr", "-n", "k8s.io", "images", "tag", testenv.PauseImageName, e2eSandboxImage)
		root.WriteFile(t, "/var/lib/provision-e2e/pod.json", []byte(`{"metadata":{"name":"e2e-sandbox","namespace":"default","uid":"e2e-sandbox-uid"},"log_directory":"/tmp","linux":{"cgroup_parent":"e2e.slice"}}`), 0o644)
		sandboxStart := time.Now()
		id := strings.TrimSpace(out("/usr/local/bin/crictl", "runp", "/var/lib/provision-e2e/pod.json"))
		if id != "" {
			t.Logf("pod sandbox %s ready in %v", id[:min(12, len(id))], time.Since(sandboxStart).Round(time.Millisecond))
			inspect := out("/usr/local/bin/crictl", "inspectp", id)
			if !strings.Contains(inspect, `"state": "SANDBOX_READY"`) || !strings.Contains(inspect, e2eSandboxImage) {
				t.Errorf("crictl inspectp: not ready or not the pinned image:\n%s", tail(inspect, 60))
			}
			if ps := out("ps", "-eo", "args"); !strings.Contains(ps, "/pause") || !strings.Contains(ps, "containerd-shim-runc-v2") {
				t.Errorf("no pause process under the shim:\n%s", ps)
			}
			out("/usr/local/bin/crictl", "stopp", id)
			out("/usr/local/bin/crictl", "rmp", id)
		}

		// Converged: a second base changes nothing.
		second, st := runBase(t, m, root)
		for _, task := range st.Phases["base"].Tasks {
			if task.Result != "unchanged" && task.Result != "skipped" {
				t.Errorf("re-run: task %s %s: %s", task.Name, task.Result, task.Detail)
			}
		}
		t.Logf("base re-run (no change): %v", second.Round(time.Millisecond))
		m.Stop()
	})

	t.Run("flatcar-style unit", func(t *testing.T) {
		// A Debian root dressed as Flatcar's containerd: the same binaries in
		// /usr/bin, Flatcar's sysext unit and default config, enabled. (A fake:
		// the Flatcar image itself does not boot here.)
		root := testenv.NewRoot(t, testenv.Bookworm)
		for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr"} {
			root.CopyFile(t, filepath.Join(rel.ContainerdDir, "bin", b), "/usr/bin/"+b, 0o755)
		}
		root.CopyFile(t, filepath.Join(rel.RuncDir, "runc.amd64"), "/usr/bin/runc", 0o755)
		root.WriteFile(t, "/usr/lib/systemd/system/containerd.service", flatcarContainerdUnit(t), 0o644)
		root.WriteFile(t, "/usr/share/containerd/config.toml", []byte(flatcarDefaultConfig), 0o644)
		root.Symlink(t, "/usr/lib/systemd/system/containerd.service", "/etc/systemd/system/multi-user.target.wants/containerd.service")
		for _, p := range []string{"/usr/local/bin/provision", "/opt/bin/provision"} {
			root.CopyFile(t, a.provision, p, 0o755)
		}
		cfg, err := nodeconfig.Parse(nodeConfig(t, srv.URL, a))
		if err != nil {
			t.Fatal(err)
		}
		cfg.OSProfile = "flatcar"
		cfg.Packages.Apt = nil
		root.WriteFile(t, v1alpha1.NodeConfigPath, marshalNodeConfig(t, cfg), 0o644)
		testenv.InstallNodeShims(t, root, pauseTar)
		m := testenv.Boot(t, root, ns)

		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmdline := func() string {
			t.Helper()
			pid, err := m.Output(ctx, "systemctl", "show", "-p", "MainPID", "--value", "containerd")
			if err != nil {
				t.Fatal(err)
			}
			b, err := m.Output(ctx, "cat", "/proc/"+strings.TrimSpace(pid)+"/cmdline")
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(strings.ReplaceAll(b, "\x00", " "))
		}
		if before := cmdline(); before != "/usr/bin/containerd --config /usr/share/containerd/config.toml" {
			t.Fatalf("before base, containerd runs %q: the Flatcar-style unit is not in effect", before)
		}

		d, st := runBase(t, m, root)
		t.Logf("base with the image's containerd (flatcar profile): %v (%s)", d.Round(time.Millisecond), slowTasks(st))
		for _, task := range st.Phases["base"].Tasks {
			if strings.HasPrefix(task.Name, "containerd/") {
				t.Logf("  %-28s %-9s %s", task.Name, task.Result, task.Detail)
			}
		}
		if after := cmdline(); after != "/usr/bin/containerd --config "+node.ContainerdConfigPath {
			t.Errorf("after base, containerd runs %q, want --config %s", after, node.ContainerdConfigPath)
		}
		show, _ := m.Output(ctx, "systemctl", "show", "containerd", "-p", "Environment", "-p", "DropInPaths", "-p", "ExecStart")
		for _, want := range []string{"Environment=CONTAINERD_CONFIG=" + node.ContainerdConfigPath, "DropInPaths=" + node.ContainerdDropInPath, "--config ${CONTAINERD_CONFIG}"} {
			if !strings.Contains(show, want) {
				t.Errorf("systemctl show containerd lacks %q:\n%s", want, show)
			}
		}
		t.Logf("systemctl show containerd:\n%s", strings.TrimSpace(show))
		// provision's config is the running one (Flatcar's default leaves
		// restrict_oom_score_adj off; provision sets it in a container).
		// The sysext unit is Type=simple: the restart returns before the socket
		// is up (the kubelet retries the same way).
		var raw string
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			if raw, err = m.Output(ctx, "/opt/bin/crictl", "info"); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(raw, `"restrictOOMScoreAdj": true`) {
			t.Errorf("crictl info: not provision's config:\n%s", tail(raw, 40))
		}
		m.Stop()
	})
	t.Logf("TestContainerdTarball: %v in all", time.Since(start).Round(time.Millisecond))
}

// flatcarDefaultConfig is the sysext's /usr/share/containerd/config.toml
// without its oom_score (the test machine may not lower it).
const flatcarDefaultConfig = `version = 3
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  SystemdCgroup = true
`

// flatcarContainerdUnit is Flatcar's containerd sysext unit (flatcar/sysext-bakery's
// create_containerd_sysext.sh), the file node's unit test also reads.
func flatcarContainerdUnit(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(t), "node", "testdata", "units", "flatcar-containerd.service"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
