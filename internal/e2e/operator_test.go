//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/testenv"
)

// The pool's settings in TestOperatorSettings.
const (
	poolDNS    = "10.96.0.10"
	poolDomain = "e2e.local"
	poolTaint  = "dedicated=e2e:NoSchedule"
)

var poolLabels = map[string]string{"pool": "workers", "tier": "backend", "topology.kubernetes.io/zone": "az-1"}

// TestOperatorSettings: a pool's settings, as an operator gives them to
// generate (flags: --cluster-dns, --cluster-domain, --node-label, --taint;
// the config file: kubeletConfig), checked where operators check them, against
// the real API server and kubelet v1.37.2: the Node carries the labels and the
// taint; the kubelet's running configuration, read back through the API
// server's node proxy (/configz), has the merged settings; a pod's resolv.conf
// names the cluster DNS and search domains; the pod's logs are read through the
// API server from the kubelet (serverTLSBootstrap is off by default, so the
// kubelet serves with its own certificate and nothing has to approve a serving
// CSR).
func TestOperatorSettings(t *testing.T) {
	e := newJoinEnvVersion(t, kubeletVersion)
	e.genConfig = func(c *v1alpha1.GenerateConfig) {
		c.KubeletConfig = map[string]any{
			"maxPods":                     float64(42),
			"containerLogMaxSize":         "5Mi",
			"evictionHard":                map[string]any{"memory.available": "200Mi"},
			"shutdownGracePeriod":         "30s",
			"imageGCHighThresholdPercent": float64(90),
		}
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
		found, err := untaint(e, name, func(taint corev1.Taint) bool {
			return taint.Key == "dedicated" && taint.Value == "e2e" && taint.Effect == corev1.TaintEffectNoSchedule
		})
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			t.Errorf("Node %s registered without the taint %s: %v", name, poolTaint, node.Spec.Taints)
		}
		// The test cluster runs no scheduler (pods are bound by nodeName): the
		// taint was removed so the test pod's admission does not depend on it.
	}
	extra := []string{"--cluster-dns", poolDNS, "--cluster-domain", poolDomain, "--taint", poolTaint}
	for k, v := range poolLabels {
		extra = append(extra, "--node-label", k+"="+v)
	}
	m := e.cloudInitJoin(t, "e2e-operator", extra...)

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
}
