//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/generate"
	"github.com/provision-dev/provision/generate/cloudinit"
	"github.com/provision-dev/provision/internal/testenv"
	"github.com/provision-dev/provision/node/nodeconfig"
	"github.com/provision-dev/provision/osprofiles"
)

// cutPoint is where, in the first boot's provision-setup run, the power is cut.
type cutPoint struct {
	name string
	// after is the task whose "finished" line in the journal triggers the cut.
	after string
}

// TestRebootMidBoot is the "reboot in the middle of the boot flow" fault of
// issue 7, with the secret markers of its "Secrets" section: cloud-init
// userdata carrying a unique token, a cloud-provider config whose credential is
// a unique marker and an SSH key whose comment is a unique marker; the machine
// boots; when provision has finished a given task (seen in the journal), the
// provision process is frozen and the machine's init SIGKILLed by PID (a power
// cut); the same root boots again (cloud-init does not re-run write_files for
// the same instance-id; provision-setup.service runs again because
// /var/lib/provision/done is absent). The node must end Ready, setup must not
// fetch provision again, no artifact downloaded before the cut is downloaded
// again, the tasks finished before the cut are unchanged on the second run, no
// temp or truncated file is left, and no marker shows up anywhere but in the
// files meant to hold it.
func TestRebootMidBoot(t *testing.T) {
	for _, cut := range []cutPoint{
		// Base: packages installed, artifacts downloaded and verified, CNI
		// plugins extracted; the cut falls in the runtime's tasks.
		{name: "base", after: "cni/plugins"},
		// Join: base done, the bootstrap kubeconfig and kubelet's unit and
		// drop-in written, the kubelet not yet started (so not registered).
		{name: "join", after: "kubelet/dropin"},
	} {
		t.Run(cut.name, func(t *testing.T) { rebootScenario(t, cut) })
	}
}

func rebootScenario(t *testing.T, cut cutPoint) {
	e := newJoinEnv(t)
	token := e.cluster.CreateToken(t, 15*time.Minute)
	mk := newMarkers(t, token)
	// The argv/environ watch runs from before generate to the end.
	watch := watchProcs(t, mk)
	hostname := "e2e-reboot-" + cut.name
	u, planFiles, genOut := e.generateMarked(t, hostname, mk)
	mk.checkText(t, "provision generate stdout+stderr", genOut, nil)
	root := testenv.NewRoot(t, testenv.BookwormCloudInit)
	testenv.InstallNodeShims(t, root, e.pauseTar)
	e.installMirrorKey(t, root)
	seedNoCloud(t, root, u, hostname+"-1")
	nt := e.cluster.WatchNode(t, hostname)

	// First boot, up to the cut.
	m1 := testenv.BootStarted(t, root, e.ns)
	dumpOnFailure(t, m1, e.cluster)
	pid := waitFinished(t, m1, cut.after, 5*time.Minute)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP provision pid %d: %v", pid, err)
	}
	// Frozen: what it logged is all it finished. Let journald take the last lines.
	time.Sleep(300 * time.Millisecond)
	es1, raw1 := journal(t, m1)
	finished := finishedTasks(es1)
	tm1 := milestones(m1, es1, nil)
	bootFinished := fileExists(root.Path("/var/lib/cloud/instance/boot-finished"))
	machineRun1 := grepMachine(t, m1, mk)
	cutAt := time.Now()
	m1.PowerCut()
	t.Logf("power cut after %q finished (boot → cut %s): %d tasks finished before it: %s; cloud-init boot-finished: %v; requests before the cut: provision server %v, artifact server %v",
		cut.after, since(m1.Started, cutAt), len(finished), strings.Join(taskNames(finished), ", "), bootFinished, e.provReqs.reset(), e.artReqs.reset())
	if _, err := os.Stat(root.Path("/var/lib/provision/done")); err == nil {
		t.Fatalf("done marker present at the cut: the cut came too late")
	}
	if nt.Seen() {
		t.Fatalf("the Node registered before the cut")
	}
	mk.checkJournal(t, "journal of boot 1", raw1)
	mk.checkMachineGrep(t, "boot 1", machineRun1)
	t.Logf("root at the cut: %s", strings.Join(tempOrEmpty(root), "; "))

	// Second boot, same root.
	m2 := testenv.BootStarted(t, root, e.ns)
	dumpOnFailure(t, m2, e.cluster)
	e.checkJoined(t, nt, token, 6*time.Minute)
	runPodNamed(t, e, m2, hostname, "pause-"+cut.name)
	waitSetupDone(t, m2)
	es2, raw2 := journal(t, m2)
	tm2 := milestones(m2, es2, nt)
	provReqs, artReqs := e.provReqs.reset(), e.artReqs.reset()
	t.Logf("requests during boot 2: provision server %v, artifact server %v", provReqs, artReqs)
	tm1.log(t, "reboot/"+cut.name+" boot 1 (cut)")
	tm2.log(t, "reboot/"+cut.name+" boot 2")
	t.Logf("timings reboot/%s: boot 1 → cut %s; cut → boot 2 %s; boot 2 → Ready %s; boot 1 → Ready (incl. the cut) %s",
		cut.name, since(m1.Started, cutAt), since(cutAt, m2.Started), since(m2.Started, tm2.ready), since(m1.Started, tm2.ready))

	// Setup kept the verified binary; nothing finished was downloaded again.
	if n := provReqs["provision"]; n != 0 {
		t.Errorf("boot 2: setup requested the provision binary %d times; it was installed and verified before the cut", n)
	}
	if n := artReqs["artifacts"]; n != 0 && hasTask(finished, "artifacts/download") {
		t.Errorf("boot 2: %d artifact requests; artifacts/download had finished before the cut", n)
	}
	if !strings.Contains(string(raw2), "msg=started") {
		t.Errorf("boot 2: provision did not run")
	}

	// The second run reports what finished before the cut as unchanged.
	st := readStatus(t, root)
	checkUnchanged(t, st, finished)
	checkNodeRoot(t, m2, root)
	if fr, _ := m2.Exec(context.Background(), "systemctl", "--failed", "--no-legend", "--plain"); strings.TrimSpace(fr.Stdout) != "" {
		t.Errorf("failed units in the machine: %s", strings.TrimSpace(fr.Stdout))
	}
	e.checkFilesIntact(t, root, planFiles)

	// Secrets.
	watch.check(t)
	mk.checkJournal(t, "journal of boot 2", raw2)
	// The journal is persistent: both boots, boot 1's file closed dirty by the cut.
	mk.checkJournal(t, "journal of every boot", allJournals(t, m2))
	mk.checkMachineGrep(t, "boot 2", grepMachine(t, m2, mk))
	mk.checkRoot(t, root)
}

// markers are the unique values the scenario seeds, by name.
type markers struct {
	token  string // the whole token; its secret half is the marker
	values map[string]string
}

func newMarkers(t *testing.T, token string) *markers {
	_, secret, _ := strings.Cut(token, ".")
	return &markers{token: token, values: map[string]string{
		"token":        secret,
		"cloud-config": "MARKER-CC-" + randHex(t, 12),
		"ssh-key":      "MARKER-SSH-" + randHex(t, 12),
	}}
}

func randHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// in returns the names of the markers data holds.
func (mk *markers) in(data []byte) []string {
	var out []string
	for name, v := range mk.values {
		if bytes.Contains(data, []byte(v)) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// hide replaces every marker in s by its name.
func (mk *markers) hide(s string) string {
	for name, v := range mk.values {
		s = strings.ReplaceAll(s, v, "<"+name+">")
	}
	return s
}

// checkText fails the test if s holds a marker not in allowed.
func (mk *markers) checkText(t *testing.T, what, s string, allowed []string) {
	t.Helper()
	for _, name := range mk.in([]byte(s)) {
		if !hasString(allowed, name) {
			t.Errorf("marker %s in %s", name, what)
		}
	}
}

func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sshKey is an ed25519 public key line whose comment is the marker.
func sshKey(t *testing.T, comment string) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, f := range [][]byte{[]byte("ssh-ed25519"), pub} {
		binary.Write(&b, binary.BigEndian, uint32(len(f)))
		b.Write(f)
	}
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(b.Bytes()) + " " + comment
}

// generateMarked runs the real `provision generate` CLI with the markers: the
// token and the cloud-provider config in 0600 files (--token-file,
// --cloud-config), the SSH key in the GenerateConfig file, so no marker is in
// any argv. It returns the userdata, the files the plan writes and generate's output.
func (e *joinEnv) generateMarked(t *testing.T, hostname string, mk *markers) (userdata, map[string][]byte, string) {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(mk.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cloudFile := filepath.Join(dir, "cloud.conf")
	cloudConf := "[Global]\nauth-url = \"https://keystone.invalid:5000/v3\"\napplication-credential-id = \"e2e\"\napplication-credential-secret = \"" + mk.values["cloud-config"] + "\"\n"
	if err := os.WriteFile(cloudFile, []byte(cloudConf), 0o600); err != nil {
		t.Fatal(err)
	}
	test, err := nodeconfig.Parse(nodeConfig(t, e.art.URL, e.a))
	if err != nil {
		t.Fatal(err)
	}
	key := sshKey(t, mk.values["ssh-key"])
	cfg := v1alpha1.GenerateConfig{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.GenerateConfigKind, Artifacts: test.Artifacts, Packages: test.Packages,
		FailCgroupV1: test.Kubernetes.FailCgroupV1, SSHAuthorizedKeys: []string{key}}
	cfgYAML, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "generate.yaml")
	if err := os.WriteFile(cfgFile, cfgYAML, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "userdata")
	argv := []string{"generate", "--config", cfgFile, "--os", "debian-12", "--format", string(osprofiles.CloudInit),
		"--kubelet-version", e.kubeletVersion, "--apiserver-url", e.cluster.URL,
		"--token-file", tokenFile, "--ca-cert", e.cluster.CACertFile, "--hostname", hostname,
		"--cloud-provider", "external", "--cloud-config", cloudFile,
		"--provision-source", e.prov.URL + "/provision", "--provision-sha256", e.provSHA, "--allow-http-source", "-o", out}
	genOut := runHost(t, time.Minute, e.a.provision, argv...)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// Files are written in their shortest form (maybe gzip+base64): look in
	// the document and in its decoded files.
	decoded, err := cloudinit.Files(data)
	if err != nil {
		t.Fatal(err)
	}
	all := slices.Clone(data)
	for _, c := range decoded {
		all = append(all, c...)
	}
	for name := range mk.values {
		if !hasString(mk.in(all), name) {
			t.Fatalf("the userdata does not carry the %s marker", name)
		}
	}
	spec := v1alpha1.GenerateConfig{
		OS: "debian-12", Format: osprofiles.CloudInit, KubeletVersion: e.kubeletVersion, APIServerURL: e.cluster.URL,
		TokenFile: tokenFile, CACertFile: e.cluster.CACertFile, Hostname: hostname,
		CloudProvider: "external", CloudConfigFile: cloudFile, SSHAuthorizedKeys: []string{key},
		ProvisionSource: e.prov.URL + "/provision", ProvisionSHA256: e.provSHA, AllowHTTPSource: true,
		Artifacts: test.Artifacts, Packages: test.Packages, FailCgroupV1: test.Kubernetes.FailCgroupV1,
	}
	p, err := generate.BuildPlan(spec)
	if err != nil {
		t.Fatalf("generate.BuildPlan: %v", err)
	}
	files := map[string][]byte{}
	for _, f := range p.Files {
		files[f.Path] = f.Contents
	}
	u := userdata{format: osprofiles.CloudInit, path: out, token: mk.token, hostname: hostname, nodeYAML: files[v1alpha1.NodeConfigPath]}
	return u, files, genOut
}

// taskDone is a task the journal shows finished, with its result.
type taskDone struct{ name, result string }

var finishedRE = regexp.MustCompile(`msg=finished task=(\S+) result=(\S+)`)

// finishedTasks lists the tasks provision logged as finished, in order.
func finishedTasks(es []entry) []taskDone {
	var out []taskDone
	for _, e := range es {
		if e.unit != "provision-setup.service" {
			continue
		}
		if m := finishedRE.FindStringSubmatch(e.msg); m != nil {
			out = append(out, taskDone{m[1], m[2]})
		}
	}
	return out
}

func taskNames(ts []taskDone) []string {
	var out []string
	for _, x := range ts {
		out = append(out, x.name)
	}
	return out
}

func hasTask(ts []taskDone, name string) bool {
	for _, x := range ts {
		if x.name == name {
			return true
		}
	}
	return false
}

// waitFinished polls the machine's journal until provision has logged the
// task finished, and returns provision's host PID.
func waitFinished(t *testing.T, m *testenv.Machine, task string, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, _ := m.Exec(ctx, "journalctl", "-b", "-o", "cat", "--no-pager", "-u", "provision-setup.service")
		cancel()
		if strings.Contains(r.Stdout, "msg=finished task="+task+" ") {
			pid := provisionPID(m)
			if pid == 0 {
				t.Fatalf("%s finished but no provision process is running:\n%s", task, tail(r.Stdout, 30))
			}
			return pid
		}
		if strings.Contains(r.Stdout, "msg=\"phase done\" phase=join") {
			t.Fatalf("join finished before %s was seen:\n%s", task, tail(r.Stdout, 30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not finished after %v:\n%s", task, timeout, tail(r.Stdout, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// provisionPID is the host PID of the machine's `provision node` process, or 0.
func provisionPID(m *testenv.Machine) int {
	var found int
	var walk func(p int)
	walk = func(p int) {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p, p))
		for _, f := range strings.Fields(string(data)) {
			child, err := strconv.Atoi(f)
			if err != nil || found != 0 {
				continue
			}
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", child))
			if strings.HasPrefix(string(cmd), "/usr/local/bin/provision\x00node\x00") {
				found = child
				return
			}
			walk(child)
		}
	}
	walk(m.Leader)
	return found
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func readStatus(t *testing.T, root *testenv.Root) status {
	t.Helper()
	var st status
	data, err := os.ReadFile(root.Path("/var/lib/provision/status.json"))
	if err != nil {
		t.Fatalf("status.json: %v", err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("status.json: %v", err)
	}
	return st
}

// checkUnchanged asserts that the second run reports every task finished
// before the cut as unchanged (base's, and, when the cut was in join, join's).
func checkUnchanged(t *testing.T, st status, finished []taskDone) {
	t.Helper()
	for _, p := range []string{"base", "join"} {
		var counts = map[string]int{}
		var names []string
		for _, ts := range st.Phases[p].Tasks {
			counts[ts.Result]++
			names = append(names, ts.Name+"="+ts.Result)
			if hasTask(finished, ts.Name) && ts.Result != "unchanged" && ts.Result != "skipped" {
				t.Errorf("boot 2: %s task %s finished before the cut but reports %q", p, ts.Name, ts.Result)
			}
		}
		t.Logf("status.json after boot 2: %s: %s %v: %s", p, st.Phases[p].Result, counts, strings.Join(names, " "))
	}
}

// runPodNamed runs a pause pod named name on the node once the pause image is imported.
func runPodNamed(t *testing.T, e *joinEnv, m *testenv.Machine, node, name string) {
	t.Helper()
	start := time.Now()
	for !fileExists(m.Root.Path(testenv.PauseImportedMarker)) {
		if time.Since(start) > time.Minute {
			t.Fatalf("pause image not imported within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pod, err := e.cluster.RunPod(ctx, node, name, testenv.PauseImageName)
	if err != nil {
		t.Fatalf("pod: %v", err)
	}
	t.Logf("pod %s Running on %s %v after Ready", pod.Name, pod.Spec.NodeName, time.Since(start).Round(time.Millisecond))
}

// tempNameRE matches provision's temp files (".BASE.provision-PID-N.tmp" and
// ".lnk") and setup.sh's mktemp "provision.XXXXXX".
var tempNameRE = regexp.MustCompile(`(^\..*\.provision-\d+-\d+\.(tmp|lnk)$)|(^provision\.[A-Za-z0-9]{6}$)`)

// stateDirs are the directories provision and setup write.
var stateDirs = []string{"/usr/local/bin", "/opt/cni/bin", "/etc/kubernetes", "/etc/provision", "/var/lib/provision", "/var/cache/provision"}

// tempOrEmpty lists the temp files and empty regular files in stateDirs.
func tempOrEmpty(root *testenv.Root) []string {
	var out []string
	for _, d := range stateDirs {
		filepath.WalkDir(root.Path(d), func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			rel := strings.TrimPrefix(p, root.Dir)
			if tempNameRE.MatchString(de.Name()) {
				out = append(out, "temp "+rel)
			} else if de.Type().IsRegular() {
				if fi, err := de.Info(); err == nil && fi.Size() == 0 {
					out = append(out, "empty "+rel)
				}
			}
			return nil
		})
	}
	if len(out) == 0 {
		return []string{"no temp or empty file in " + strings.Join(stateDirs, " ")}
	}
	return out
}

// checkFilesIntact asserts that no temp file is left in the state
// directories, no file there is empty, and the files whose contents the test
// knows are whole: the binaries and CNI plugins by hash, the userdata's files byte for byte.
func (e *joinEnv) checkFilesIntact(t *testing.T, root *testenv.Root, planFiles map[string][]byte) {
	t.Helper()
	checked := 0
	for _, l := range tempOrEmpty(root) {
		if strings.HasPrefix(l, "temp ") || strings.HasPrefix(l, "empty ") {
			t.Errorf("left after the reboot: %s", l)
		}
	}
	want := map[string]string{
		"/usr/local/bin/provision":             e.provSHA,
		"/usr/local/bin/kubelet":               e.a.kubeletSHA,
		"/var/cache/provision/cni-plugins.tgz": e.a.cniSHA,
		"/var/cache/provision/crictl.tgz":      e.a.crictlSHA,
	}
	for name, sum := range tarMembers(t, filepath.Join(e.a.dir, e.a.cni)) {
		want["/opt/cni/bin/"+name] = sum
	}
	for name, sum := range tarMembers(t, filepath.Join(e.a.dir, e.a.crictl)) {
		if name == "crictl" {
			want["/usr/local/bin/crictl"] = sum
		}
	}
	for p, sum := range want {
		if got := fileSHA(root.Path(p)); got != sum {
			t.Errorf("%s: sha256 %s, want %s", p, got, sum)
		}
		checked++
	}
	for p, data := range planFiles {
		if p == "/usr/local/sbin/provision-setup.sh" || strings.HasPrefix(p, "/etc/") {
			got, err := os.ReadFile(root.Path(p))
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s: not the userdata's contents (%v)", p, err)
			}
			checked++
		}
	}
	for _, p := range []string{"/var/lib/provision/status.json", "/var/lib/provision/base-done"} {
		var v any
		if data, err := os.ReadFile(root.Path(p)); err != nil || json.Unmarshal(data, &v) != nil {
			t.Errorf("%s: not whole JSON (%v)", p, err)
		}
		checked++
	}
	t.Logf("files checked whole after the reboot: %d (hashes of binaries, CNI plugins, cached tarballs; userdata files byte for byte; status JSON); temp/empty: %s",
		checked, strings.Join(tempOrEmpty(root), "; "))
}

func fileSHA(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

// tarMembers returns the sha256 of each regular file of a .tgz, by base name.
func tarMembers(t *testing.T, p string) map[string]string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		s := sha256.New()
		io.Copy(s, tr)
		out[path.Base(h.Name)] = hex.EncodeToString(s.Sum(nil))
	}
}

// checkJournal reports the markers in the journal (JSON, every field), by the
// unit or identifier that logged them: cloud-init's are its own behaviour and
// are logged; anything else fails the test.
func (mk *markers) checkJournal(t *testing.T, what string, raw []byte) {
	t.Helper()
	hits := 0
	for _, line := range bytes.Split(raw, []byte("\n")) {
		names := mk.in(line)
		if len(names) == 0 {
			continue
		}
		hits++
		var f map[string]any
		json.Unmarshal(line, &f)
		unit, ident, msg := str(f["_SYSTEMD_UNIT"]), str(f["SYSLOG_IDENTIFIER"]), mk.hide(str(f["MESSAGE"]))
		if strings.HasPrefix(unit, "cloud-") || strings.HasPrefix(ident, "cloud-init") {
			t.Logf("secrets: %s: %v logged by cloud-init (%s, %s) — cloud-init's own behaviour: %q", what, names, unit, ident, msg)
			continue
		}
		t.Errorf("secrets: %s: %v logged by %s (%s): %q", what, names, unit, ident, msg)
	}
	t.Logf("secrets: %s: %d entries with a marker", what, hits)
}

// grepMachine lists the files under the machine's own tmpfs mounts (/run,
// /tmp, /dev/shm) holding a marker; the patterns go through stdin, never argv.
// The journal's files are left out (the journal is checked as JSON).
func grepMachine(t *testing.T, m *testenv.Machine, mk *markers) []string {
	t.Helper()
	var pats []string
	for _, v := range mk.values {
		pats = append(pats, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := m.Command(ctx, "sh", "-c", "grep -rlF -f /dev/stdin --exclude-dir=journal /run /tmp /dev/shm 2>/dev/null | xargs -r stat -c '%a %U %n'")
	cmd.Stdin = strings.NewReader(strings.Join(pats, "\n") + "\n")
	out, _ := cmd.Output()
	var files []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			files = append(files, l)
		}
	}
	return files
}

func (mk *markers) checkMachineGrep(t *testing.T, what string, files []string) {
	t.Helper()
	for _, l := range files {
		mode, rest, _ := strings.Cut(l, " ")
		_, p, _ := strings.Cut(rest, " ")
		switch {
		case strings.HasPrefix(p, "/run/cloud-init/") && (mode == "600" || mode == "400"):
			t.Logf("secrets: %s: %s (mode %s) holds a marker: cloud-init's own root-only copy of the instance data", what, p, mode)
		default:
			t.Errorf("secrets: %s: %s (mode %s) inside the machine holds a marker", what, p, mode)
		}
	}
	t.Logf("secrets: %s: files with a marker under the machine's /run, /tmp, /dev/shm: %d", what, len(files))
}

// allowedHolder says whether p is a file meant to hold the marker, and the
// mode it must have ("" for no constraint).
func allowedHolder(p, name string) (bool, os.FileMode) {
	switch {
	case p == "/var/lib/cloud/seed/nocloud/user-data":
		return true, 0o600
	case regexp.MustCompile(`^/var/lib/cloud/instances/[^/]+/user-data\.txt(\.i)?$`).MatchString(p):
		return true, 0o600
	case p == v1alpha1.CloudConfigPath && name == "cloud-config":
		return true, 0o600
	case p == v1alpha1.BootstrapKubeconfigPath && name == "token":
		return true, 0o600
	case strings.HasSuffix(p, "/.ssh/authorized_keys") && name == "ssh-key":
		return true, 0o600
	}
	return false, 0
}

// checkRoot walks the whole root (every file the machine wrote that outlives
// it: logs, cloud-init's state, provision's status and markers, configs) for
// the markers.
func (mk *markers) checkRoot(t *testing.T, root *testenv.Root) {
	t.Helper()
	files, hits, journalFiles := 0, 0, 0
	filepath.WalkDir(root.Dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || !de.Type().IsRegular() {
			return nil
		}
		rel := strings.TrimPrefix(p, root.Dir)
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		files++
		if strings.HasPrefix(rel, "/var/log/journal/") {
			// The journal's files: their entries are checked one by one, as
			// JSON with the unit that logged them (checkJournal).
			if names := mk.in(data); len(names) > 0 {
				journalFiles++
			}
			return nil
		}
		names := mk.in(data)
		if len(names) == 0 {
			return nil
		}
		fi, _ := de.Info()
		mode := fi.Mode().Perm()
		for _, name := range names {
			hits++
			ok, want := allowedHolder(rel, name)
			switch {
			case ok && mode != want:
				t.Errorf("secrets: %s holds the %s marker with mode %o, want %o", rel, name, mode, want)
			case ok:
				t.Logf("secrets: %s holds the %s marker (meant to; mode %o)", rel, name, mode)
			case strings.HasPrefix(rel, "/var/lib/cloud/") || strings.HasPrefix(rel, "/var/log/cloud-init"):
				if mode&0o077 != 0 && name != "ssh-key" {
					t.Errorf("secrets: %s (mode %o, readable by others) holds the %s marker (written by cloud-init)", rel, mode, name)
				} else {
					t.Logf("secrets: FINDING %s (mode %o) holds the %s marker: written by cloud-init itself, not by provision", rel, mode, name)
				}
			default:
				t.Errorf("secrets: %s (mode %o) holds the %s marker", rel, mode, name)
			}
		}
		return nil
	})
	t.Logf("secrets: root walk: %d files read, %d marker hits (listed above), %d journal files with a marker (their entries checked as JSON)", files, hits, journalFiles)
}

// allJournals is the machine's journal of every boot, as JSON (the image's
// journal is persistent: boot 1's entries are in it, up to the cut).
func allJournals(t *testing.T, m *testenv.Machine) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := m.Exec(ctx, "journalctl", "-o", "json", "--no-pager")
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("journalctl: %v %s", err, r.Stderr)
	}
	return []byte(r.Stdout)
}
