package controller_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/provision-dev/provision/api/v1alpha1"
	bootstrapv1 "github.com/provision-dev/provision/capi/api/v1alpha1"
	"github.com/provision-dev/provision/capi/internal/controller"
	"github.com/provision-dev/provision/capi/internal/validators"
)

// TestProxy: spec.proxy's URLs come from a Secret in the config's namespace
// (which Cluster API did not label: read past the cache); the userdata's
// 0600 proxy.env holds them, and its no_proxy the API server's host and the
// Cluster's pod and service CIDRs (dual-stack). A missing Secret or key waits
// (WaitingForProxySecret), an invalid URL is InvalidSpec: both conditions name
// the Secret or field, never a value, and the URL appears in no status, event
// or log line of the controller.
func TestProxy(t *testing.T) {
	t.Parallel()
	f := newFixture(t, clusterState{infrastructure: true, controlPlane: true})
	c := &clusterv1.Cluster{}
	if err := f.c.Get(f.ctx, client.ObjectKeyFromObject(f.cluster), c); err != nil {
		t.Fatal(err)
	}
	c.Spec.ClusterNetwork.Pods.CIDRBlocks = []string{"192.168.0.0/16", "fd00:10:244::/56"}
	c.Spec.ClusterNetwork.Services.CIDRBlocks = []string{"10.96.0.0/12", "fd00:10:96::/112"}
	if err := f.c.Update(f.ctx, c); err != nil {
		t.Fatal(err)
	}
	const (
		password = "Pr0xyMarker7c1f"
		httpURL  = "http://ops:" + password + "@proxy.internal:3128"
		httpsURL = "http://ops:" + password + "@proxy-tls.internal:3129"
	)
	f.create(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "node-proxy", Namespace: f.ns},
		Data:       map[string][]byte{"http": []byte(httpURL + "\n"), "https": []byte(httpsURL), "bad": []byte("socks5://ops:" + password + "@proxy:1080")},
	})
	f.startController(controller.ManagerOptions{TokenTTL: 15 * time.Minute})
	ref := func(name, key string) *bootstrapv1.ProxyURLSource {
		return &bootstrapv1.ProxyURLSource{SecretKeyRef: bootstrapv1.SecretKeySelector{Name: name, Key: key}}
	}
	withProxy := func(p bootstrapv1.Proxy) bootstrapv1.ProvisionConfigSpec {
		s := ubuntuSpec()
		s.Proxy = &p
		return s
	}

	m := f.machine("proxied-0", version)
	pc := f.waitConfig(f.config(m.Name, m, "Machine", withProxy(bootstrapv1.Proxy{HTTPProxy: ref("node-proxy", "http"), HTTPSProxy: ref("node-proxy", "https"), NoProxy: ".internal,10.96.0.0/12"})).Name,
		"rendered", 30*time.Second, dataSecretCreated)
	s := f.secret(f.ns, pc.Name)
	validators.Userdata(t, bootstrapv1.FormatCloudConfig, s.Data["value"])
	u := decode(t, bootstrapv1.FormatCloudConfig, s.Data["value"])
	kvs, err := v1alpha1.ParseProxyEnv(u.files[v1alpha1.ProxyEnvPath])
	if err != nil {
		t.Fatalf("%s: %v", v1alpha1.ProxyEnvPath, err)
	}
	want := [][2]string{{"http_proxy", httpURL}, {"https_proxy", httpsURL},
		{"no_proxy", ".internal,10.96.0.0/12,localhost,127.0.0.1," + endpoint + ",192.168.0.0/16,fd00:10:244::/56,fd00:10:96::/112"}}
	if !slices.Equal(kvs, want) {
		t.Errorf("%s: %d entries, no_proxy %v; want the Secret's URLs and no_proxy %s", v1alpha1.ProxyEnvPath, len(kvs), noProxyOf(kvs), want[2][1])
	}
	if u.node.Proxy.EnvironmentFile != v1alpha1.ProxyEnvPath || strings.Contains(string(u.files[v1alpha1.NodeConfigPath]), password) {
		t.Errorf("node.yaml must name only the environment file: %+v", u.node.Proxy)
	}

	// Waiting for a Secret or a key; an invalid URL: named, never quoted.
	for _, tc := range []struct {
		machine string
		proxy   bootstrapv1.Proxy
		reason  string
		msg     string
	}{
		{"no-secret-0", bootstrapv1.Proxy{HTTPSProxy: ref("absent", "url")}, bootstrapv1.WaitingForProxySecretReason, "spec.proxy.httpsProxy: secret absent not found"},
		{"no-key-0", bootstrapv1.Proxy{HTTPProxy: ref("node-proxy", "url")}, bootstrapv1.WaitingForProxySecretReason, "spec.proxy.httpProxy: secret node-proxy has no key url, or it is empty"},
		{"bad-url-0", bootstrapv1.Proxy{HTTPProxy: ref("node-proxy", "bad")}, bootstrapv1.InvalidSpecReason, "spec.proxy.httpProxy: must be an http:// or https:// proxy URL"},
	} {
		m := f.machine(tc.machine, version)
		pc := f.waitConfig(f.config(m.Name, m, "Machine", withProxy(tc.proxy)).Name, tc.reason, 15*time.Second,
			hasCondition(bootstrapv1.DataSecretAvailableCondition, metav1.ConditionFalse, tc.reason))
		if msg := condition(pc, bootstrapv1.DataSecretAvailableCondition).Message; !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: condition message %q, want %q", tc.machine, msg, tc.msg)
		}
		if pc.Status.BootstrapTokenID != "" || f.secret(f.ns, pc.Name) != nil {
			t.Errorf("%s: a token or data without the proxy's URL: %+v", tc.machine, pc.Status)
		}
	}

	// Nowhere but the data Secret: statuses, events, the controller's logs.
	var pcs bootstrapv1.ProvisionConfigList
	if err := f.c.List(f.ctx, &pcs, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	var events corev1.EventList
	var events2 eventsv1.EventList
	if err := f.c.List(f.ctx, &events, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	if err := f.c.List(f.ctx, &events2, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	logs := controllerLogs.String()
	if !strings.Contains(logs, "wrote userdata") || !strings.Contains(logs, pc.Name) {
		t.Fatalf("the controller's logs were not captured (no \"wrote userdata\" of %s)", pc.Name)
	}
	for name, v := range map[string]any{"ProvisionConfigs": pcs.Items, "core events": events.Items, "events.k8s.io events": events2.Items} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), password) {
			t.Errorf("the %s hold the proxy's password", name)
		}
	}
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, password) {
			t.Errorf("the controller logged the proxy's password: %s", strings.ReplaceAll(l, password, "<password>"))
		}
	}
	t.Logf("%d ProvisionConfigs, %d+%d events, %d bytes of controller logs: no proxy URL", len(pcs.Items), len(events.Items), len(events2.Items), len(logs))
}

// noProxyOf returns the no_proxy value of an environment file's entries.
func noProxyOf(kvs [][2]string) string {
	for _, kv := range kvs {
		if kv[0] == "no_proxy" {
			return kv[1]
		}
	}
	return ""
}
