//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/testenv"
	"github.com/provision-dev/provision/osprofiles"
)

// The pool's settings in TestOperatorSettings.
const (
	poolDNS    = "10.96.0.10"
	poolDomain = "e2e.local"
	poolTaint  = "dedicated=e2e:NoSchedule"
)

// poolTaintObj is poolTaint as the Node carries it.
var poolTaintObj = corev1.Taint{Key: "dedicated", Value: "e2e", Effect: corev1.TaintEffectNoSchedule}

var poolLabels = map[string]string{"pool": "workers", "tier": "backend", "topology.kubernetes.io/zone": "az-1"}

// The escape hatch of TestOperatorSettings: one extra file and one enabled
// extra unit, a oneshot that copies the file (so it ran, after the file existed).
const (
	extraFilePath = "/etc/e2e-extras/extra.conf"
	extraFileBody = "provision e2e extra file\nwritten by the userdata, mode 0640\n"
	extraUnitName = "e2e-extra.service"
	extraMarker   = "/var/lib/e2e-extra-unit.ran"
	extraUnitBody = `[Unit]
Description=provision e2e extra unit: copies the extra file
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/cp ` + extraFilePath + " " + extraMarker + `
[Install]
WantedBy=multi-user.target
`
)

// TestOperatorSettings: a pool's settings, as an operator gives them to
// generate (flags: --cluster-dns, --cluster-domain, --node-label, --taint;
// the config file: kubeletConfig, files, units), checked where operators check
// them, against the real API server, kube-scheduler and kubelet v1.37.2: the
// Node carries the labels and the taint; a pod without the toleration stays
// Pending (FailedScheduling, the scheduler names the taint) while one with it
// is scheduled onto the node and runs; the kubelet's running configuration,
// read back through the API server's node proxy (/configz), has the merged
// settings; a pod's resolv.conf names the cluster DNS and search domains; the
// pod's logs are read through the API server from the kubelet
// (serverTLSBootstrap is off by default, so the kubelet serves with its own
// certificate and nothing has to approve a serving CSR); the extra file is on
// the node with its mode and content before provision's setup unit starts, and
// the extra unit is enabled and ran after it. The same config rendered as
// Ignition is applied by the real Ignition files stage with the same result.
func TestOperatorSettings(t *testing.T) {
	e := newJoinEnvWith(t, kubeletVersion, kubeletVersion, testenv.ClusterOptions{Scheduler: true})
	e.genConfig = func(c *v1alpha1.GenerateConfig) {
		c.KubeletConfig = map[string]any{
			"maxPods":                     float64(42),
			"containerLogMaxSize":         "5Mi",
			"evictionHard":                map[string]any{"memory.available": "200Mi"},
			"shutdownGracePeriod":         "30s",
			"imageGCHighThresholdPercent": float64(90),
		}
		c.Files = []v1alpha1.File{{Path: extraFilePath, Mode: 0o640, Content: extraFileBody}}
		c.Units = []v1alpha1.Unit{{Name: extraUnitName, Enabled: true, Content: extraUnitBody}}
	}
	e.beforePod = func(t *testing.T, m *testenv.Machine, name string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		node, err := e.cluster.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range poolLabels {
			if node.Labels[k] != v {
				t.Errorf("Node label %s = %q, want %q (labels %v)", k, node.Labels[k], v, node.Labels)
			}
		}
		if !hasTaint(node.Spec.Taints, poolTaintObj) {
			t.Errorf("Node %s registered without the taint %s: %v", name, poolTaint, node.Spec.Taints)
		}
		// The taint stays: the test pod of bootAndJoin is bound by nodeName, and
		// the kubelet admits it (its admission checks NoExecute taints only).
		t.Run("scheduling", func(t *testing.T) { checkTaintScheduling(t, e, m, name) })
	}
	extra := []string{"--cluster-dns", poolDNS, "--cluster-domain", poolDomain, "--taint", poolTaint}
	for k, v := range poolLabels {
		extra = append(extra, "--node-label", k+"="+v)
	}
	m := e.cloudInitJoin(t, "e2e-operator", extra...)
	t.Run("extras", func(t *testing.T) { checkExtras(t, m) })
	t.Run("ignition-extras", func(t *testing.T) { checkIgnitionExtras(t, e, extra) })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The kubelet's running configuration, through the API server's node proxy.
	res := e.cluster.Client.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", "e2e-operator", "proxy", "configz").Do(ctx)
	var code int
	res.StatusCode(&code)
	raw, err := res.Raw()
	if err != nil {
		t.Fatalf("configz through the API server: HTTP %d %v\n%s", code, err, raw)
	}
	var cz struct {
		KC struct {
			MaxPods             int32             `json:"maxPods"`
			ContainerLogMaxSize string            `json:"containerLogMaxSize"`
			EvictionHard        map[string]string `json:"evictionHard"`
			ShutdownGracePeriod string            `json:"shutdownGracePeriod"`
			ImageGCHigh         int32             `json:"imageGCHighThresholdPercent"`
			ClusterDNS          []string          `json:"clusterDNS"`
			ClusterDomain       string            `json:"clusterDomain"`
			ServerTLSBootstrap  bool              `json:"serverTLSBootstrap"`
			RegisterWithTaints  []corev1.Taint    `json:"registerWithTaints"`
			CgroupDriver        string            `json:"cgroupDriver"`
		} `json:"kubeletconfig"`
	}
	if err := json.Unmarshal(raw, &cz); err != nil {
		t.Fatalf("configz: %v\n%s", err, raw)
	}
	kc := cz.KC
	switch {
	case kc.MaxPods != 42, kc.ContainerLogMaxSize != "5Mi", kc.ShutdownGracePeriod != "30s", kc.ImageGCHigh != 90:
		t.Errorf("configz: kubeletConfig settings not in effect: %+v", kc)
	case kc.EvictionHard["memory.available"] != "200Mi" || kc.EvictionHard["nodefs.available"] == "":
		t.Errorf("configz: evictionHard %v, want memory.available 200Mi merged over provision's defaults", kc.EvictionHard)
	case len(kc.ClusterDNS) != 1 || kc.ClusterDNS[0] != poolDNS || kc.ClusterDomain != poolDomain:
		t.Errorf("configz: clusterDNS %v clusterDomain %q", kc.ClusterDNS, kc.ClusterDomain)
	case kc.ServerTLSBootstrap:
		t.Errorf("configz: serverTLSBootstrap true, want the default false")
	case kc.CgroupDriver != "systemd":
		t.Errorf("configz: cgroupDriver %q, want provision's systemd", kc.CgroupDriver)
	default:
		t.Logf("configz: maxPods %d, containerLogMaxSize %s, evictionHard %v, clusterDNS %v, clusterDomain %s, serverTLSBootstrap %v",
			kc.MaxPods, kc.ContainerLogMaxSize, kc.EvictionHard, kc.ClusterDNS, kc.ClusterDomain, kc.ServerTLSBootstrap)
	}

	// The pod's logs, from the kubelet through the API server.
	logs, err := e.cluster.Client.CoreV1().Pods("default").GetLogs("pause", &corev1.PodLogOptions{Container: "c"}).DoRaw(ctx)
	if err != nil || !strings.Contains(string(logs), "pause: started") {
		t.Errorf("kubectl logs through the API server: %v %q", err, logs)
	} else {
		t.Logf("pod logs through the API server and the kubelet: %q", strings.TrimSpace(string(logs)))
	}

	// kubectl exec and port-forward: the streaming paths through the API server to the kubelet.
	out, err := e.cluster.Kubectl(ctx, "exec", "pause", "-c", "c", "--", "/pause", "echo", "exec", "works")
	if err != nil || strings.TrimSpace(out) != "exec works" {
		t.Errorf("kubectl exec: %v %q", err, out)
	} else {
		t.Logf("kubectl exec: %q", strings.TrimSpace(out))
	}
	addr := e.cluster.PortForward(t, "pause", 8080)
	resp, err := e.ns.HTTPClient().Get("http://" + addr + "/")
	if err != nil {
		t.Errorf("kubectl port-forward: GET through %s: %v", addr, err)
	} else {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		if strings.TrimSpace(string(body)) != "pause: hello" {
			t.Errorf("kubectl port-forward: %q", body)
		} else {
			t.Logf("kubectl port-forward %s -> pod:8080: %q", addr, strings.TrimSpace(string(body)))
		}
	}

	// The pod's resolv.conf, as the kubelet wrote it for the sandbox.
	files, _ := filepath.Glob(m.Root.Path("/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/*/resolv.conf"))
	found := false
	for _, f := range files {
		data := string(testenv.MustRead(t, f))
		if strings.Contains(data, "nameserver "+poolDNS) {
			found = true
			if !strings.Contains(data, "search default.svc."+poolDomain+" svc."+poolDomain+" "+poolDomain) {
				t.Errorf("pod resolv.conf lacks the cluster search domains:\n%s", data)
			}
			t.Logf("pod resolv.conf:\n%s", strings.TrimSpace(data))
		}
	}
	if !found {
		t.Errorf("no pod sandbox resolv.conf names nameserver %s (%d sandboxes)", poolDNS, len(files))
	}

	// The pod without the toleration is still Pending, minutes later.
	if p, err := e.cluster.Client.CoreV1().Pods("default").Get(ctx, untoleratedPod, metav1.GetOptions{}); err != nil {
		t.Errorf("pod %s: %v", untoleratedPod, err)
	} else if p.Status.Phase != corev1.PodPending || p.Spec.NodeName != "" {
		t.Errorf("pod %s without the toleration: phase %s, node %q; want Pending, unscheduled", untoleratedPod, p.Status.Phase, p.Spec.NodeName)
	} else {
		t.Logf("pod %s without the toleration: still Pending and unscheduled %v after its creation", untoleratedPod, time.Since(p.CreationTimestamp.Time).Round(time.Second))
	}
}

// The pods of the scheduling check.
const (
	untoleratedPod = "untolerated"
	toleratedPod   = "tolerated"
)

// hasTaint reports whether taints hold want (key, value and effect).
func hasTaint(taints []corev1.Taint, want corev1.Taint) bool {
	for _, tn := range taints {
		if tn.Key == want.Key && tn.Value == want.Value && tn.Effect == want.Effect {
			return true
		}
	}
	return false
}

// checkTaintScheduling proves the pool's taint through the real kube-scheduler:
// a pod without the toleration stays Pending with a FailedScheduling event (and
// the scheduler's log names the taint), a pod with it is scheduled onto the node
// and runs.
func checkTaintScheduling(t *testing.T, e *joinEnv, m *testenv.Machine, node string) {
	waitPauseImported(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	client := e.cluster.Client
	pods := client.CoreV1().Pods("default")

	// The node lifecycle controller removes node.kubernetes.io/not-ready
	// shortly after the Node is Ready: wait until the pool's taint is the only
	// one that keeps pods off the node, so it is the one the pod hits.
	var taints []corev1.Taint
	for {
		n, err := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		taints = n.Spec.Taints
		if len(taints) == 1 && hasTaint(taints, poolTaintObj) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Node %s taints %v, want only %s", node, taints, poolTaint)
		case <-time.After(100 * time.Millisecond):
		}
	}

	// Without the toleration: Pending, FailedScheduling.
	start := time.Now()
	if _, err := pods.Create(ctx, testenv.PausePod(untoleratedPod, "", testenv.PauseImageName), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ev, err := waitEvent(ctx, client, untoleratedPod, "FailedScheduling", time.Minute)
	if err != nil {
		t.Fatalf("pod %s without the toleration: %v\nkube-scheduler:\n%s", untoleratedPod, err, e.cluster.Logs("kube-scheduler", 20))
	}
	pendingAfter := time.Since(start)
	if !strings.Contains(ev.Message, "untolerated taint") {
		t.Errorf("FailedScheduling of %s: %q, want the node's untolerated taint", untoleratedPod, ev.Message)
	}
	// The scheduler records the event and patches the pod's PodScheduled
	// condition separately: the condition may follow the event by a moment.
	var p *corev1.Pod
	unschedulable := false
	for deadline := time.Now().Add(10 * time.Second); !unschedulable && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if p, err = pods.Get(ctx, untoleratedPod, metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				unschedulable = true
			}
		}
	}
	if p.Status.Phase != corev1.PodPending || p.Spec.NodeName != "" || !unschedulable {
		t.Errorf("pod %s without the toleration: phase %s, node %q, conditions %+v; want Pending, unscheduled, PodScheduled=False Unschedulable",
			untoleratedPod, p.Status.Phase, p.Spec.NodeName, p.Status.Conditions)
	}
	// v1.37's event says "node(s) had untolerated taint(s)" without naming it;
	// the scheduler's log (verbosity 4) names the taint it found.
	lines, err := e.cluster.LogLines("kube-scheduler", "untolerated taint", `pod="default/`+untoleratedPod+`"`)
	if err != nil {
		t.Fatal(err)
	}
	named := ""
	for _, l := range lines {
		if strings.Contains(l, poolTaintObj.Key) && strings.Contains(l, poolTaintObj.Value) && strings.Contains(l, string(poolTaintObj.Effect)) {
			named = l
		}
	}
	if named == "" {
		t.Errorf("kube-scheduler's log names no untolerated taint %s for pod %s: %q", poolTaint, untoleratedPod, lines)
	} else {
		t.Logf("kube-scheduler: %s", strings.TrimSpace(named))
	}
	t.Logf("pod %s without the toleration: FailedScheduling %q seen %v after its creation", untoleratedPod, ev.Message, pendingAfter.Round(time.Millisecond))

	// With the toleration: scheduled onto the node by the scheduler, Running.
	tol := testenv.PausePod(toleratedPod, "", testenv.PauseImageName)
	tol.Spec.Tolerations = []corev1.Toleration{{Key: poolTaintObj.Key, Operator: corev1.TolerationOpEqual, Value: poolTaintObj.Value, Effect: poolTaintObj.Effect}}
	start = time.Now()
	p, err = e.cluster.StartPod(ctx, tol)
	runningAfter := time.Since(start)
	if err != nil {
		r, _ := m.Exec(context.Background(), "journalctl", "-b", "--no-pager", "-u", "kubelet", "-n", "30")
		t.Fatalf("pod %s with the toleration: %v\nkube-scheduler:\n%s\nkubelet:\n%s", toleratedPod, err, e.cluster.Logs("kube-scheduler", 20), r.Stdout)
	}
	if p.Spec.NodeName != node {
		t.Errorf("pod %s with the toleration on node %q, want %s", toleratedPod, p.Spec.NodeName, node)
	}
	sev, err := waitEvent(ctx, client, toleratedPod, "Scheduled", 30*time.Second)
	switch {
	case err != nil:
		t.Errorf("pod %s with the toleration: no Scheduled event: %v", toleratedPod, err)
	case sev.ReportingController != "default-scheduler" && sev.Source.Component != "default-scheduler":
		t.Errorf("pod %s with the toleration: Scheduled by %q/%q, want default-scheduler", toleratedPod, sev.ReportingController, sev.Source.Component)
	default:
		scheduledAfter := "n/a"
		if !sev.EventTime.IsZero() {
			scheduledAfter = sev.EventTime.Sub(start).Round(time.Millisecond).String()
		}
		t.Logf("pod %s with the toleration: %q (%s) %s after its creation, Running on %s %v after its creation",
			toleratedPod, sev.Message, sev.ReportingController, scheduledAfter, p.Spec.NodeName, runningAfter.Round(time.Millisecond))
	}
}

// waitEvent polls (every 50 ms, up to timeout) for an event of reason about the
// pod name in the default namespace.
func waitEvent(ctx context.Context, client kubernetes.Interface, name, reason string, timeout time.Duration) (*corev1.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sel := fields.Set{"involvedObject.kind": "Pod", "involvedObject.name": name, "reason": reason}.AsSelector().String()
	for {
		list, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err == nil && len(list.Items) > 0 {
			return &list.Items[0], nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no %s event for pod %s within %v (last error %v)", reason, name, timeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkExtras asserts the escape hatch on the booted node: the extra file with
// its mode and content, written before provision's setup unit started (the
// promise: files before any unit starts); the extra unit enabled, active, and
// run after the file existed (its copy of the file is the marker).
func checkExtras(t *testing.T, m *testenv.Machine) {
	st, err := os.Stat(m.Root.Path(extraFilePath))
	if err != nil {
		t.Fatalf("extra file: %v", err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode().Perm() != 0o640 || sys.Uid != 0 || sys.Gid != 0 {
		t.Errorf("extra file %s: mode %o, owner %d:%d; want 640, 0:0", extraFilePath, st.Mode().Perm(), sys.Uid, sys.Gid)
	}
	if got := string(m.Root.ReadFile(t, extraFilePath)); got != extraFileBody {
		t.Errorf("extra file %s: content %q, want %q", extraFilePath, got, extraFileBody)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	en, _ := m.Exec(ctx, "systemctl", "is-enabled", extraUnitName)
	ac, _ := m.Exec(ctx, "systemctl", "is-active", extraUnitName)
	res, _ := m.Exec(ctx, "systemctl", "show", "-p", "Result", "-p", "ExecMainStatus", "--value", extraUnitName)
	if strings.TrimSpace(en.Stdout) != "enabled" || strings.TrimSpace(ac.Stdout) != "active" || strings.Join(strings.Fields(res.Stdout), " ") != "success 0" {
		t.Errorf("extra unit %s: is-enabled %q, is-active %q, result/status %q; want enabled, active, success 0",
			extraUnitName, strings.TrimSpace(en.Stdout), strings.TrimSpace(ac.Stdout), strings.Join(strings.Fields(res.Stdout), " "))
	}
	marker, err := os.ReadFile(m.Root.Path(extraMarker))
	if err != nil || string(marker) != extraFileBody {
		t.Errorf("extra unit %s did not copy the extra file (it ran before the file existed, or not at all): %v %q", extraUnitName, err, marker)
	}
	// Ordering, on the host's clock: the file's last change (cloud-init writes,
	// then chmods) against the journal's unit starts.
	changed := time.Unix(sys.Ctim.Unix())
	es, _ := journal(t, m)
	starting := func(unit string) time.Time {
		return find(es, func(e entry) bool { return e.about == unit && strings.HasPrefix(e.msg, "Starting") })
	}
	setupStart, unitStart := starting("provision-setup.service"), starting(extraUnitName)
	switch {
	case setupStart.IsZero() || unitStart.IsZero():
		t.Errorf("journal: no start of provision-setup.service (%v) or %s (%v)", setupStart, extraUnitName, unitStart)
	case !changed.Before(setupStart):
		t.Errorf("extra file last changed %v, after provision-setup.service started (%v)", changed, setupStart)
	case !changed.Before(unitStart):
		t.Errorf("extra file last changed %v, after %s started (%v)", changed, extraUnitName, unitStart)
	default:
		t.Logf("extras: %s (0%o, %d bytes) in place %v before provision-setup.service started; %s enabled, active, ran %v after the file was written (its copy matches)",
			extraFilePath, st.Mode().Perm(), st.Size(), setupStart.Sub(changed).Round(time.Millisecond), extraUnitName, unitStart.Sub(changed).Round(time.Millisecond))
	}
}

// checkIgnitionExtras renders the same config as Ignition and applies it with
// the real Ignition files stage to an empty root: the extra file with its mode
// and content, the extra unit's file, and its enable preset.
func checkIgnitionExtras(t *testing.T, e *joinEnv, extra []string) {
	u := e.generateUserdata(t, osprofiles.Ignition, "e2e-operator-ign", testenv.NewTokenValue(t), e.provSHA, extra...)
	root := &testenv.Root{Dir: t.TempDir()}
	runIgnition(t, root, u)
	st, err := os.Stat(root.Path(extraFilePath))
	if err != nil {
		t.Fatalf("Ignition: extra file: %v", err)
	}
	if st.Mode().Perm() != 0o640 || string(root.ReadFile(t, extraFilePath)) != extraFileBody {
		t.Errorf("Ignition: extra file %s: mode %o, content %q; want 640, %q", extraFilePath, st.Mode().Perm(), root.ReadFile(t, extraFilePath), extraFileBody)
	}
	if got := string(root.ReadFile(t, "/etc/systemd/system/"+extraUnitName)); got != extraUnitBody {
		t.Errorf("Ignition: unit %s:\n%s\nwant:\n%s", extraUnitName, got, extraUnitBody)
	}
	runHost(t, time.Minute, "systemctl", "--root="+root.Dir, "preset", extraUnitName)
	if _, err := os.Lstat(root.Path("/etc/systemd/system/multi-user.target.wants/" + extraUnitName)); err != nil {
		t.Errorf("Ignition: %s not enabled by its preset: %v", extraUnitName, err)
	} else {
		t.Logf("Ignition (%s): %s 0%o and %s enabled by the preset Ignition wrote", u.format, extraFilePath, st.Mode().Perm(), extraUnitName)
	}
}
