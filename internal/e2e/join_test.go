//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/generate"
	"github.com/provision-dev/provision/internal/testenv"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/node/nodeconfig"
	"github.com/provision-dev/provision/osprofiles"
)

// e2eConfigPath is where the prebake scenario's image build puts the node config
// it runs `provision node base` with (the userdata later writes /etc/provision/node.yaml).
const e2eConfigPath = "/etc/provision/e2e-node.yaml"

// joinEnv is the cluster side of a join scenario: a network namespace with
// etcd, kube-apiserver and kube-controller-manager, the artifact server (apt
// repository and node artifacts) and, apart from it, the server of the
// provision binary the userdata fetches.
type joinEnv struct {
	version        string // of the cluster
	kubeletVersion string // of the node's kubelet (the cluster's, but in the upgrade scenario)
	ns             *testenv.NetNS
	cluster        *testenv.Cluster
	repo           *testenv.AptRepo
	a              nodeArtifacts
	pauseTar       string

	art      *testenv.Server
	artReqs  *requestLog
	prov     *testenv.Server
	provReqs *requestLog
	provSHA  string

	// beforePod, if set, runs once the node is Ready, before the test pod.
	beforePod func(t *testing.T, m *testenv.Machine, node string)
	// genConfig, if set, edits the GenerateConfig file generate reads
	// (config-file-only settings such as kubeletConfig).
	genConfig func(c *v1alpha1.GenerateConfig)
}

// newJoinEnv starts the cluster (of kubeletVersion) and the servers.
func newJoinEnv(t *testing.T) *joinEnv { return newJoinEnvVersion(t, kubeletVersion) }

// newJoinEnvVersion starts a cluster of Kubernetes version and the servers; the
// node gets the kubelet of the same version.
func newJoinEnvVersion(t *testing.T, version string) *joinEnv {
	return newJoinEnvKubelet(t, version, version)
}

// newJoinEnvKubelet starts a cluster of Kubernetes version and the servers; the
// node gets the kubelet of kubeletVersion.
func newJoinEnvKubelet(t *testing.T, version, kubeletVersion string) *joinEnv {
	t.Helper()
	return newJoinEnvWith(t, version, kubeletVersion, testenv.ClusterOptions{})
}

// newJoinEnvWith is newJoinEnvKubelet with the cluster's options (a scheduler).
func newJoinEnvWith(t *testing.T, version, kubeletVersion string, opts testenv.ClusterOptions) *joinEnv {
	t.Helper()
	testenv.Require(t)
	e := &joinEnv{version: version, kubeletVersion: kubeletVersion, repo: localRepo(t)}
	e.ns = testenv.NewNetNS(t)
	e.cluster = testenv.StartClusterWith(t, e.ns, version, opts)
	kubelet := filepath.Join(e.cluster.KubeDir, "kubelet")
	if kubeletVersion != version {
		kubelet = testenv.KubeletBinary(t, kubeletVersion)
	}
	e.a = buildJoinArtifacts(t, e.repo, kubelet)
	e.pauseTar = testenv.PauseImage(t, t.TempDir())
	e.art, e.artReqs = serveNode(t, e.ns, e.repo, e.a)
	e.provSHA = testutil.SHA256File(t, e.a.provision)
	e.provReqs = &requestLog{counts: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/provision", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, e.a.provision) })
	e.prov = e.ns.Serve(t, e.provReqs.wrap(mux))
	return e
}

// buildJoinArtifacts is buildNodeArtifacts with a real kubelet (host path).
func buildJoinArtifacts(t *testing.T, repo *testenv.AptRepo, kubeletBin string) nodeArtifacts {
	t.Helper()
	dir := t.TempDir()
	a := nodeArtifacts{dir: dir, provision: filepath.Join(t.TempDir(), "provision")}
	testenv.GoBuild(t, "./cmd/provision", a.provision)
	kubelet := filepath.Join(dir, "kubelet")
	data, err := os.ReadFile(kubeletBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kubelet, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cni := testenv.CNIPluginsTarball(t, repo.Deb(t, "containernetworking-plugins"), dir)
	crictl := testenv.CrictlTarball(t, dir, testenv.CrictlVersion)
	a.kubelet, a.cni, a.crictl = filepath.Base(kubelet), filepath.Base(cni), filepath.Base(crictl)
	a.kubeletSHA, a.cniSHA, a.crictlSHA = testutil.SHA256File(t, kubelet), testutil.SHA256File(t, cni), testutil.SHA256File(t, crictl)
	return a
}

// userdata is one generated userdata and what the test needs to know about it.
type userdata struct {
	format   osprofiles.Format
	path     string // the generated file on the host
	token    string
	hostname string
	// nodeYAML is the node config the userdata writes (generate's own).
	nodeYAML []byte
}

// generateUserdata runs the real `provision generate` CLI for this node, with
// the token in a 0600 file (never in argv).
func (e *joinEnv) generateUserdata(t *testing.T, format osprofiles.Format, hostname, token, provSHA string, extra ...string) userdata {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "userdata")
	// The artifact mirrors with pinned sha256s and the apt mirror come from a
	// GenerateConfig file, as an airgapped operator's would; the rest from flags.
	test, err := nodeconfig.Parse(nodeConfig(t, e.art.URL, e.a))
	if err != nil {
		t.Fatal(err)
	}
	cfg := v1alpha1.GenerateConfig{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.GenerateConfigKind, Artifacts: test.Artifacts, Packages: test.Packages,
		FailCgroupV1: test.Kubernetes.FailCgroupV1}
	if e.genConfig != nil {
		e.genConfig(&cfg)
	}
	cfgYAML, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "generate.yaml")
	if err := os.WriteFile(cfgFile, cfgYAML, 0o600); err != nil {
		t.Fatal(err)
	}
	spec := v1alpha1.GenerateConfig{
		OS: "debian-12", Format: format, KubeletVersion: e.kubeletVersion, APIServerURL: e.cluster.URL,
		TokenFile: tokenFile, CACertFile: e.cluster.CACertFile, Hostname: hostname,
		ProvisionSource: e.prov.URL + "/provision", ProvisionSHA256: provSHA, AllowHTTPSource: true,
		Artifacts: test.Artifacts, Packages: test.Packages, FailCgroupV1: test.Kubernetes.FailCgroupV1,
	}
	if e.genConfig != nil {
		e.genConfig(&spec)
	}
	argv := []string{"generate", "--config", cfgFile, "--os", spec.OS, "--format", string(format),
		"--kubelet-version", spec.KubeletVersion, "--apiserver-url", spec.APIServerURL,
		"--token-file", tokenFile, "--ca-cert", spec.CACertFile, "--hostname", hostname,
		"--provision-source", spec.ProvisionSource, "--provision-sha256", provSHA, "--allow-http-source", "-o", out}
	if format == osprofiles.Ignition {
		spec.IgnitionVersion = "3.3"
		argv = append(argv, "--ignition-version", "3.3")
	}
	for i, a := range extra {
		switch {
		case a == "--prebaked":
			spec.Prebaked = true
		case a == "--cloud-provider" && i+1 < len(extra):
			spec.CloudProvider = extra[i+1]
		case a == "--cloud-config" && i+1 < len(extra):
			spec.CloudConfigFile = extra[i+1]
		case a == "--cluster-dns" && i+1 < len(extra):
			spec.ClusterDNS = append(spec.ClusterDNS, extra[i+1])
		case a == "--taint" && i+1 < len(extra):
			spec.Taints = append(spec.Taints, extra[i+1])
		case a == "--node-label" && i+1 < len(extra):
			k, v, _ := strings.Cut(extra[i+1], "=")
			if spec.NodeLabels == nil {
				spec.NodeLabels = map[string]string{}
			}
			spec.NodeLabels[k] = v
		}
	}
	argv = append(argv, extra...)
	r := runHost(t, time.Minute, e.a.provision, argv...)
	t.Logf("provision generate --format %s: %s", format, strings.TrimSpace(firstLine(r)))
	p, err := generate.BuildPlan(spec)
	if err != nil {
		t.Fatalf("generate.BuildPlan: %v", err)
	}
	u := userdata{format: format, path: out, token: token, hostname: hostname}
	for _, f := range p.Files {
		if f.Path == v1alpha1.NodeConfigPath {
			u.nodeYAML = f.Contents
		}
	}
	if u.nodeYAML == nil {
		t.Fatalf("the generated plan writes no %s", v1alpha1.NodeConfigPath)
	}
	return u
}

// installMirrorKey puts the apt mirror's signing keyring into the image (the
// generated node config names it as signedBy), as an airgapped image carries its
// mirror's key.
func (e *joinEnv) installMirrorKey(t *testing.T, root *testenv.Root) {
	t.Helper()
	root.CopyFile(t, e.repo.KeyFile, testenv.KeyringPath, 0o644)
}

// seedNoCloud puts the userdata into the root as a NoCloud seed.
func seedNoCloud(t *testing.T, root *testenv.Root, u userdata, instanceID string) {
	t.Helper()
	root.CopyFile(t, u.path, "/var/lib/cloud/seed/nocloud/user-data", 0o600)
	root.WriteFile(t, "/var/lib/cloud/seed/nocloud/meta-data", []byte("instance-id: "+instanceID+"\nlocal-hostname: "+u.hostname+"\n"), 0o600)
	// The image's network is the test's namespace, configured from outside, as
	// an image for static networks has it: cloud-init must not render one.
	root.WriteFile(t, "/etc/cloud/cloud.cfg.d/99-e2e-network.cfg", []byte("network: {config: disabled}\n"), 0o644)
	// cloud-init's default locale, en_US.UTF-8, is not generated in a
	// debootstrapped root (update-locale rejects it and cloud-config.service
	// fails): the image's default is C.UTF-8, which needs no generation.
	root.WriteFile(t, "/etc/cloud/cloud.cfg.d/99-e2e-locale.cfg", []byte("locale: C.UTF-8\n"), 0o644)
}

func runHost(t *testing.T, timeout time.Duration, name string, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(argv, " "), err, tail(stderr.String()+stdout.String(), 40))
	}
	return stderr.String() + stdout.String()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// procWatch samples the argv and environment of every process on the host (the
// machine's processes included) for the markers while a node boots and joins.
type procWatch struct {
	mk    *markers
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	hits  map[string]bool
	scans int
}

// watchArgv watches for the bootstrap token's secret alone.
func watchArgv(t *testing.T, token string) *procWatch {
	_, secret, _ := strings.Cut(token, ".")
	return watchProcs(t, &markers{token: token, values: map[string]string{"token": secret}})
}

func watchProcs(t *testing.T, mk *markers) *procWatch {
	w := &procWatch{mk: mk, stop: make(chan struct{}), done: make(chan struct{}), hits: map[string]bool{}}
	go func() {
		defer close(w.done)
		for {
			w.scan()
			select {
			case <-w.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(w.finish)
	return w
}

func (w *procWatch) scan() {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			data, err := os.ReadFile("/proc/" + e.Name() + "/" + f)
			if err != nil {
				continue
			}
			if names := w.mk.in(data); len(names) > 0 {
				cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
				w.mu.Lock()
				w.hits[fmt.Sprintf("%v in /proc/%s/%s (%s)", names, e.Name(), f, w.mk.hide(strings.ReplaceAll(string(cmd), "\x00", " ")))] = true
				w.mu.Unlock()
			}
		}
	}
	w.mu.Lock()
	w.scans++
	w.mu.Unlock()
}

func (w *procWatch) finish() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// check stops the watch and fails the test if a marker was seen in any process.
func (w *procWatch) check(t *testing.T) {
	t.Helper()
	w.finish()
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("secrets: /proc/*/cmdline and /proc/*/environ scans of every host and machine process: %d, marker hits: %d", w.scans, len(w.hits))
	for h := range w.hits {
		t.Errorf("marker in a process: %s", h)
	}
}

// entry is one journal entry.
type entry struct {
	at    time.Time
	unit  string // _SYSTEMD_UNIT: the unit of the process that logged
	about string // UNIT: the unit systemd's own message is about
	msg   string
}

// journal reads the machine's journal of this boot.
func journal(t *testing.T, m *testenv.Machine) ([]entry, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := m.Exec(ctx, "journalctl", "-b", "-o", "json", "--no-pager")
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("journalctl: %v %s", err, r.Stderr)
	}
	var out []entry
	sc := bufio.NewScanner(strings.NewReader(r.Stdout))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var raw map[string]any
		if json.Unmarshal(sc.Bytes(), &raw) != nil {
			continue
		}
		us, _ := strconv.ParseInt(str(raw["__REALTIME_TIMESTAMP"]), 10, 64)
		out = append(out, entry{at: time.UnixMicro(us), unit: str(raw["_SYSTEMD_UNIT"]), about: str(raw["UNIT"]), msg: str(raw["MESSAGE"])})
	}
	return out, []byte(r.Stdout)
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any: // a binary MESSAGE is an array of bytes
		b := make([]byte, 0, len(x))
		for _, c := range x {
			if f, ok := c.(float64); ok {
				b = append(b, byte(f))
			}
		}
		return string(b)
	}
	return ""
}

// find returns the time of the first entry matching, or the zero time.
func find(es []entry, match func(entry) bool) time.Time {
	for _, e := range es {
		if match(e) {
			return e.at
		}
	}
	return time.Time{}
}

// timings are the milestones of one node's way from boot to Ready.
type timings struct {
	boot, setupStarted, provisionStarted, baseDone, joinStarted, kubeletStarted, joinDone, registered, ready time.Time
}

// milestones reads the timings from the journal (host clock) and the Node watch.
func milestones(m *testenv.Machine, es []entry, nt *testenv.NodeTimes) timings {
	const setup = "provision-setup.service"
	var tm timings
	tm.boot = m.Started
	tm.setupStarted = find(es, func(e entry) bool { return e.about == setup && strings.HasPrefix(e.msg, "Starting") })
	tm.provisionStarted = find(es, func(e entry) bool { return e.unit == setup && strings.Contains(e.msg, "msg=started") })
	tm.baseDone = find(es, func(e entry) bool { return strings.Contains(e.msg, "msg=\"phase done\" phase=base") })
	tm.joinStarted = find(es, func(e entry) bool {
		return strings.Contains(e.msg, "msg=started task=kubelet/binary-present")
	})
	tm.kubeletStarted = find(es, func(e entry) bool { return e.about == "kubelet.service" && strings.HasPrefix(e.msg, "Started") })
	tm.joinDone = find(es, func(e entry) bool { return strings.Contains(e.msg, "msg=\"phase done\" phase=join") })
	if nt != nil {
		tm.registered, tm.ready = nt.Registered, nt.Ready
	}
	return tm
}

func since(a, b time.Time) string {
	switch {
	case a.IsZero() || b.IsZero():
		return "n/a"
	case b.Before(a): // e.g. a kubelet enabled before a power cut starts at boot, before join
		return fmt.Sprintf("n/a (%s before)", a.Sub(b).Round(time.Millisecond))
	}
	return b.Sub(a).Round(time.Millisecond).String()
}

// log prints the timings; the targets are those of the prebaked join.
func (tm timings) log(t *testing.T, scenario string) {
	t.Helper()
	t.Logf("timings %s: boot → setup unit %s, → provision running %s; base %s; join → kubelet started %s; kubelet started → Node registered %s; → Ready %s; join → Ready %s; boot → Ready %s",
		scenario, since(tm.boot, tm.setupStarted), since(tm.boot, tm.provisionStarted), since(tm.provisionStarted, tm.baseDone),
		since(tm.joinStarted, tm.kubeletStarted), since(tm.kubeletStarted, tm.registered), since(tm.registered, tm.ready),
		since(tm.joinStarted, tm.ready), since(tm.boot, tm.ready))
}

// noSecretIn fails the test if a file inside the root (a glob) holds the token's secret.
func noSecretIn(t *testing.T, root *testenv.Root, token string, globs ...string) {
	t.Helper()
	_, secret, _ := strings.Cut(token, ".")
	for _, g := range globs {
		files, _ := filepath.Glob(root.Path(g))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			if bytes.Contains(data, []byte(secret)) {
				t.Errorf("the bootstrap token's secret is in %s", strings.TrimPrefix(f, root.Dir))
			}
		}
	}
}

// checkJoined asserts the API server's side of a joined node: Ready, the
// kubelet's version, its client CSR approved, a pod running on it.
func (e *joinEnv) checkJoined(t *testing.T, nt *testenv.NodeTimes, token string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	node, err := nt.WaitReady(ctx)
	if err != nil {
		list, _ := e.cluster.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		names := []string{}
		for _, n := range list.Items {
			names = append(names, n.Name)
		}
		t.Fatalf("node not Ready within %v (registered: %v; nodes in the cluster: %v)", timeout, nt.Seen(), names)
	}
	if v := node.Status.NodeInfo.KubeletVersion; v != e.kubeletVersion {
		t.Errorf("node %s kubelet version %q, want %s", node.Name, v, e.kubeletVersion)
	}
	id, _, _ := strings.Cut(token, ".")
	csrs, err := e.cluster.NodeClientCSRs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, csr := range csrs {
		if csr.Spec.Username == "system:bootstrap:"+id {
			found = true
			if !testenv.CSRApproved(csr) {
				t.Errorf("CSR %s of the bootstrap token is not approved and issued: %+v", csr.Name, csr.Status.Conditions)
			} else {
				t.Logf("CSR %s (%s, by %s): approved and issued", csr.Name, csr.Spec.SignerName, csr.Spec.Username)
			}
		}
	}
	if !found {
		t.Errorf("no kubelet client CSR by system:bootstrap:%s among %d", id, len(csrs))
	}
}

// waitPauseImported waits (a minute at most) until the node shims have
// imported the pause image into the machine's containerd.
func waitPauseImported(t *testing.T, m *testenv.Machine) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(m.Root.Path(testenv.PauseImportedMarker)); err == nil {
			return
		}
		if time.Now().After(deadline) {
			out, _ := m.Exec(context.Background(), "systemctl", "status", "--no-pager", testenv.PauseImportUnit)
			t.Fatalf("pause image not imported within a minute:\n%s", out.Stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runPod runs a pause pod on the node once the pause image is imported.
func (e *joinEnv) runPod(t *testing.T, m *testenv.Machine, node string) {
	t.Helper()
	start := time.Now()
	waitPauseImported(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pod, err := e.cluster.RunPod(ctx, node, "pause", testenv.PauseImageName)
	if err != nil {
		r, _ := m.Exec(context.Background(), "journalctl", "-b", "--no-pager", "-u", "kubelet", "-u", "containerd", "-n", "40")
		t.Fatalf("pod: %v\n%s", err, r.Stdout)
	}
	t.Logf("pod %s Running on %s (IP %s) %v after Ready", pod.Name, pod.Spec.NodeName, pod.Status.PodIP, time.Since(start).Round(time.Millisecond))
}

// checkNodeRoot asserts what a joined node leaves in its root.
func checkNodeRoot(t *testing.T, m *testenv.Machine, root *testenv.Root) {
	t.Helper()
	st, err := os.Stat(root.Path(v1alpha1.BootstrapKubeconfigPath))
	switch {
	case err != nil:
		t.Errorf("%s: %v", v1alpha1.BootstrapKubeconfigPath, err)
	case st.Mode().Perm() != 0o600:
		t.Errorf("%s mode %o, want 600", v1alpha1.BootstrapKubeconfigPath, st.Mode().Perm())
	}
	// Lstat: kubelet-client-current.pem is a symlink with an absolute target inside the root.
	for _, p := range []string{v1alpha1.KubeconfigPath, "/var/lib/kubelet/pki/kubelet-client-current.pem", "/var/lib/provision/done", v1alpha1.CACertPath} {
		if _, err := os.Lstat(root.Path(p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, u := range []string{"kubelet.service", "containerd.service"} {
		en, _ := m.Exec(ctx, "systemctl", "is-enabled", u)
		ac, _ := m.Exec(ctx, "systemctl", "is-active", u)
		if strings.TrimSpace(en.Stdout) != "enabled" || strings.TrimSpace(ac.Stdout) != "active" {
			t.Errorf("%s: is-enabled %q, is-active %q; want enabled, active", u, strings.TrimSpace(en.Stdout), strings.TrimSpace(ac.Stdout))
		}
	}
	var s status
	data, err := os.ReadFile(root.Path("/var/lib/provision/status.json"))
	if err != nil {
		t.Errorf("status.json: %v", err)
		return
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Errorf("status.json: %v", err)
	}
	for _, p := range []string{"base", "join"} {
		if s.Phases[p].Result != "success" {
			t.Errorf("status.json: phases.%s.result = %q, want success", p, s.Phases[p].Result)
		}
	}
}

// checkNoToken asserts that the token's secret is in none of the journal, the
// cloud-init logs, provision's status and markers.
func checkNoToken(t *testing.T, root *testenv.Root, journalJSON []byte, token string) {
	t.Helper()
	_, secret, _ := strings.Cut(token, ".")
	if bytes.Contains(journalJSON, []byte(secret)) {
		t.Errorf("the bootstrap token's secret is in the journal")
	}
	noSecretIn(t, root, token, "/var/log/cloud-init*.log", "/var/lib/provision/*", "/etc/provision/*.yaml")
}

// dumpOnFailure prints the machine's state when the test has failed.
func dumpOnFailure(t *testing.T, m *testenv.Machine, c *testenv.Cluster) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var lines []string
		for _, l := range strings.Split(m.Journal(), "\n") {
			if strings.Contains(l, "provision") || strings.Contains(l, "kubelet") || strings.Contains(l, "containerd") || strings.Contains(l, "cloud") || strings.Contains(l, "e2e") {
				lines = append(lines, l)
			}
		}
		t.Logf("journal (provision, kubelet, containerd, cloud-init, shims):\n%s", tail(strings.Join(lines, "\n"), 150))
		fr, _ := m.Exec(ctx, "systemctl", "--failed", "--no-legend", "--plain")
		t.Logf("failed units: %s", strings.TrimSpace(fr.Stdout))
		if st, err := os.ReadFile(m.Root.Path("/var/lib/provision/status.json")); err == nil {
			t.Logf("status.json:\n%s", tail(string(st), 60))
		}
		t.Logf("kube-controller-manager:\n%s", c.Logs("kube-controller-manager", 20))
		t.Logf("kube-apiserver:\n%s", c.Logs("kube-apiserver", 20))
	})
}

// bootAndJoin boots the prepared root (userdata in place), waits for the node
// to be Ready with a pod running and provision-setup done, and checks the API
// server's side, the root and the token's secrecy. It returns the machine, still
// running, and the timings, already printed.
func (e *joinEnv) bootAndJoin(t *testing.T, root *testenv.Root, u userdata, scenario string, timeout time.Duration) (*testenv.Machine, timings) {
	t.Helper()
	nt := e.cluster.WatchNode(t, u.hostname)
	argv := watchArgv(t, u.token)
	m := testenv.BootStarted(t, root, e.ns)
	dumpOnFailure(t, m, e.cluster)
	e.checkJoined(t, nt, u.token, timeout)
	if e.beforePod != nil {
		e.beforePod(t, m, u.hostname)
	}
	e.runPod(t, m, u.hostname)
	waitSetupDone(t, m)
	argv.check(t)
	es, raw := journal(t, m)
	tm := milestones(m, es, nt)
	tm.log(t, scenario)
	for _, e := range es {
		if e.unit == "provision-setup.service" && !strings.Contains(e.msg, "msg=started") && !strings.Contains(e.msg, "msg=finished") {
			t.Logf("  provision-setup: %s", e.msg)
		}
	}
	checkNodeRoot(t, m, root)
	checkNoToken(t, root, raw, u.token)
	if fr, _ := m.Exec(context.Background(), "systemctl", "--failed", "--no-legend", "--plain"); strings.TrimSpace(fr.Stdout) != "" {
		t.Errorf("failed units in the machine: %s", strings.TrimSpace(fr.Stdout))
	}
	return m, tm
}
