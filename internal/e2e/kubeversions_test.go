//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/internal/testenv"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/node/nodeconfig"
)

// uninitializedTaint is the taint a kubelet with --cloud-provider=external
// registers its Node with; the cloud-controller-manager removes it once it has
// initialized the Node (k8s.io/cloud-provider api.TaintExternalCloudProvider).
const uninitializedTaint = "node.cloudprovider.kubernetes.io/uninitialized"

// TestExternalCloudProvider: `generate --cloud-provider external --cloud-config
// FILE` for the newest kubelet. The node joins; the kubelet runs with
// --cloud-provider=external and without --cloud-config (gone since 1.34); the
// cloud config is installed 0600 for the cloud-controller-manager and CSI; the
// Node registers with the uninitialized taint, as upstream documents. The test
// then plays the cloud-controller-manager: it removes the taint, and a pod runs.
func TestExternalCloudProvider(t *testing.T) {
	e := newJoinEnvVersion(t, kubeletVersion)
	cloudConf := []byte("[Global]\nauth-url = https://keystone.invalid/v3\napplication-credential-id = e2e\n")
	confFile := filepath.Join(t.TempDir(), "cloud.conf")
	if err := os.WriteFile(confFile, cloudConf, 0o600); err != nil {
		t.Fatal(err)
	}
	e.beforePod = func(t *testing.T, m *testenv.Machine, name string) {
		found, err := untaint(e, name, func(taint corev1.Taint) bool {
			return taint.Key == uninitializedTaint && taint.Effect == corev1.TaintEffectNoSchedule
		})
		switch {
		case err != nil:
			t.Fatal(err)
		case !found:
			t.Errorf("Node %s registered without the %s:NoSchedule taint of an external cloud provider", name, uninitializedTaint)
		default:
			t.Logf("Node %s registered with %s:NoSchedule; the test, as the cloud-controller-manager, removed it", name, uninitializedTaint)
		}
	}
	m := e.cloudInitJoin(t, "e2e-external", "--cloud-provider", "external", "--cloud-config", confFile)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := m.Exec(ctx, "systemctl", "show", "-p", "ExecStart", "kubelet.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Stdout, "--cloud-provider=external") || strings.Contains(r.Stdout, "--cloud-config") {
		t.Errorf("kubelet command line: want --cloud-provider=external and no --cloud-config:\n%s", r.Stdout)
	}
	st, err := os.Stat(m.Root.Path(v1alpha1.CloudConfigPath))
	switch {
	case err != nil:
		t.Errorf("cloud config for the CCM: %v", err)
	case st.Mode().Perm() != 0o600:
		t.Errorf("%s mode %o, want 600", v1alpha1.CloudConfigPath, st.Mode().Perm())
	default:
		if got, _ := os.ReadFile(m.Root.Path(v1alpha1.CloudConfigPath)); string(got) != string(cloudConf) {
			t.Errorf("%s differs from the given cloud config", v1alpha1.CloudConfigPath)
		}
	}
}

// TestKubeletUpgrade: a node joined with kubelet upgradeFromVersion to a
// cluster of kubeletVersion is upgraded in place: its node config gets the new
// version and the new kubelet's artifact and `provision node` runs again. The
// new kubelet is downloaded, the kubelet restarted exactly once, the files that
// did not change are left alone, and the Node is Ready with the new version.
func TestKubeletUpgrade(t *testing.T) {
	e := newJoinEnvKubelet(t, kubeletVersion, upgradeFromVersion)
	m := e.cloudInitJoin(t, "e2e-upgrade")
	root := m.Root

	// The new kubelet, served beside the old one.
	newKubelet := filepath.Join(e.a.dir, "kubelet-"+kubeletVersion)
	data, err := os.ReadFile(filepath.Join(e.cluster.KubeDir, "kubelet"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newKubelet, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := nodeconfig.Parse(root.ReadFile(t, v1alpha1.NodeConfigPath))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kubernetes.Version != upgradeFromVersion {
		t.Fatalf("node.yaml version %s, want %s", cfg.Kubernetes.Version, upgradeFromVersion)
	}
	cfg.Kubernetes.Version = kubeletVersion
	cfg.Artifacts[artifacts.Kubelet] = v1alpha1.Artifact{URL: e.art.URL + "/artifacts/" + filepath.Base(newKubelet), SHA256: testutil.SHA256File(t, newKubelet), AllowHTTP: true}
	out, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	root.WriteFile(t, v1alpha1.NodeConfigPath, out, 0o644)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	before := invocation(ctx, m)
	start := time.Now()
	r, err := m.Exec(ctx, "/usr/local/bin/provision", "node")
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("provision node (upgrade): exit %d %v\n%s", r.ExitCode, err, tail(r.Stderr, 40))
	}
	t.Logf("upgrade %s → %s: provision node took %v", upgradeFromVersion, kubeletVersion, time.Since(start).Round(time.Millisecond))

	node, err := waitKubeletVersion(ctx, e, "e2e-upgrade", kubeletVersion)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Node %s Ready with kubelet %s %v after the upgrade started", node.Name, node.Status.NodeInfo.KubeletVersion, time.Since(start).Round(time.Millisecond))
	if after := invocation(ctx, m); after == before || after == "" {
		t.Errorf("kubelet not restarted: InvocationID %q before and %q after", before, after)
	}
	jr, _ := m.Exec(ctx, "journalctl", "--no-pager", "-o", "cat", "-u", "kubelet.service", "--since", fmt.Sprintf("@%d", start.Unix()-1))
	if n := strings.Count(jr.Stdout, "Started kubelet.service"); n != 1 {
		t.Errorf("kubelet started %d times during the upgrade, want 1:\n%s", n, grepLines(jr.Stdout, "Started kubelet", "Stopp"))
	}

	var st status
	if err := json.Unmarshal(root.ReadFile(t, "/var/lib/provision/status.json"), &st); err != nil {
		t.Fatal(err)
	}
	var changed []string
	for _, p := range []string{"base", "join"} {
		for _, task := range st.Phases[p].Tasks {
			if task.Result == "changed" {
				changed = append(changed, p+":"+task.Name)
			}
			if task.Name == "kubelet/service" && !strings.Contains(task.Detail, "/usr/local/bin/kubelet replaced") {
				t.Errorf("kubelet/service: %q, want a restart because the kubelet was replaced", task.Detail)
			}
			if task.Name == "kubelet/version-skew" && !strings.Contains(task.Detail, "may join API server "+kubeletVersion) {
				t.Errorf("kubelet/version-skew: %s %q", task.Result, task.Detail)
			}
		}
	}
	t.Logf("changed by the upgrade: %v", changed)
	for _, c := range changed {
		switch c {
		case "base:" + "artifacts/download", "join:kubelet/service":
		default:
			if strings.HasPrefix(c, "base:kernel/") || strings.HasPrefix(c, "base:containerd/") || strings.HasPrefix(c, "base:packages/") || c == "join:kubelet/unit" || c == "join:kubelet/dropin" {
				t.Errorf("the upgrade changed %s, which does not depend on the kubelet version", c)
			}
		}
	}
}

// invocation returns the kubelet unit's current InvocationID.
func invocation(ctx context.Context, m *testenv.Machine) string {
	r, _ := m.Exec(ctx, "systemctl", "show", "-p", "InvocationID", "kubelet.service")
	return strings.TrimPrefix(strings.TrimSpace(r.Stdout), "InvocationID=")
}

// waitKubeletVersion waits for the Node to report kubelet version and be Ready.
func waitKubeletVersion(ctx context.Context, e *joinEnv, name, version string) (*corev1.Node, error) {
	var last string
	for {
		node, err := e.cluster.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			ready := false
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready = true
				}
			}
			if ready && node.Status.NodeInfo.KubeletVersion == version {
				return node, nil
			}
			last = fmt.Sprintf("kubelet %s, ready %v", node.Status.NodeInfo.KubeletVersion, ready)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("node %s not Ready with kubelet %s: %s", name, version, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func grepLines(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// untaint removes the Node's taints that match (as a cloud-controller-manager
// or an operator would), retrying on conflicts with the kubelet's own updates,
// and reports whether one was there.
func untaint(e *joinEnv, name string, match func(corev1.Taint) bool) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nodes := e.cluster.Client.CoreV1().Nodes()
	found := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := nodes.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		var keep []corev1.Taint
		found = false
		for _, taint := range node.Spec.Taints {
			if match(taint) {
				found = true
				continue
			}
			keep = append(keep, taint)
		}
		if !found {
			return nil
		}
		node.Spec.Taints = keep
		_, err = nodes.Update(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return found, fmt.Errorf("remove the taint from Node %s: %w", name, err)
	}
	return found, nil
}
