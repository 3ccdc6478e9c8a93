//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/testenv"
	"github.com/provision-dev/provision/node/nodeconfig"
	"github.com/provision-dev/provision/osprofiles"
)

// capiVersion is the Cluster API release whose CRDs the scenario installs
// (capi/go.mod requires its api module).
const capiVersion = "v1.14.2"

var (
	clusterGVR = schema.GroupVersionResource{Group: "cluster.x-k8s.io", Version: "v1beta2", Resource: "clusters"}
	machineGVR = schema.GroupVersionResource{Group: "cluster.x-k8s.io", Version: "v1beta2", Resource: "machines"}
	configGVR  = schema.GroupVersionResource{Group: "bootstrap.provision.dev", Version: "v1alpha1", Resource: "provisionconfigs"}
)

// TestCAPIJoin is the Cluster API bootstrap provider's real join: the e2e
// cluster is both the management cluster (Cluster API's and provision's
// CRDs, capi/config's RBAC, provision-bootstrap-controller running as its
// ServiceAccount) and the workload cluster (<cluster>-kubeconfig points at
// it). A Machine's ProvisionConfig becomes a data Secret; its value, as the
// NoCloud seed of a fresh cloud-init root booted with systemd-nspawn, joins:
// the Node is Ready, a pod runs, and the kubelet's client CSR was made by
// the token the controller minted. Marking the Machine joined deletes it.
func TestCAPIJoin(t *testing.T) {
	e := newJoinEnvVersion(t, kubeletVersion)
	root := testenv.ModuleRoot(t)
	dir := t.TempDir()
	ctx := t.Context()
	cs := e.cluster.Client

	// An admin identity for kubectl and the dynamic client: a ServiceAccount
	// bound to cluster-admin (the cluster's own admin certificate stays in testenv).
	admin := saConfig(t, e, "kube-system", "capi-e2e-admin", "cluster-admin")
	adminKC := writeKubeconfig(t, dir, "admin.kubeconfig", e, admin.BearerToken)
	kubectl := func(args ...string) string {
		return runHost(t, 2*time.Minute, "ip", append([]string{"netns", "exec", e.ns.Name, filepath.Join(e.cluster.KubeDir, "kubectl"), "--kubeconfig", adminKC}, args...)...)
	}
	args := []string{"apply", "--server-side", "--force-conflicts"}
	for _, f := range capiCRDFiles(t) {
		args = append(args, "-f", f)
	}
	kubectl(args...)
	kubectl("apply", "--server-side", "--force-conflicts", "-k", filepath.Join(root, "capi", "config", "default"))
	kubectl("wait", "--for", "condition=established", "--timeout", "60s", "crd/clusters.cluster.x-k8s.io", "crd/machines.cluster.x-k8s.io", "crd/provisionconfigs.bootstrap.provision.dev")

	// The controller, as capi/config's ServiceAccount, inside the namespace.
	bin := filepath.Join(dir, "provision-bootstrap-controller")
	build := exec.Command("go", "build", "-o", bin, "./cmd/provision-bootstrap-controller")
	build.Dir = filepath.Join(root, "capi")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build provision-bootstrap-controller: %v\n%s", err, out)
	}
	ctrlToken := tokenFor(t, e, "provision-bootstrap-system", "provision-bootstrap-controller")
	ctrlKC := writeKubeconfig(t, dir, "controller.kubeconfig", e, ctrlToken)
	logPath := filepath.Join(dir, "controller.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	ctrl := exec.Command("ip", "netns", "exec", e.ns.Name, bin, "--kubeconfig", ctrlKC, "--metrics-bind-address", "0", "--health-probe-bind-address", "0")
	ctrl.Stdout, ctrl.Stderr = logFile, logFile
	if err := ctrl.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ctrl.Process.Kill() // by PID: the process this test started
		_ = ctrl.Wait()
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("controller log:\n%s", tail(string(b), 40))
			}
		}
	})

	// The Cluster API objects, as Cluster API leaves them for a worker Machine.
	const ns, cluster, machine = "capi-e2e", "wl", "e2e-capi"
	dyn, err := dynamic.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"cluster.x-k8s.io/cluster-name": cluster}
	mustCreate := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	mustCreate(err)
	adminKCBytes, err := os.ReadFile(adminKC)
	mustCreate(err)
	for name, data := range map[string]map[string][]byte{
		cluster + "-ca":         {corev1.TLSCertKey: e.cluster.CACert},
		cluster + "-kubeconfig": {"value": adminKCBytes}, // the workload cluster is this one
	} {
		_, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Type: "cluster.x-k8s.io/secret", Data: data}, metav1.CreateOptions{})
		mustCreate(err)
	}
	u, err := url.Parse(e.cluster.URL)
	mustCreate(err)
	host, portStr, err := net.SplitHostPort(u.Host)
	mustCreate(err)
	port, err := strconv.Atoi(portStr)
	mustCreate(err)
	c := obj(clusterGVR, "Cluster", ns, cluster, nil, map[string]any{"controlPlaneEndpoint": map[string]any{"host": host, "port": port}})
	c, err = dyn.Resource(clusterGVR).Namespace(ns).Create(ctx, c, metav1.CreateOptions{})
	mustCreate(err)
	c.Object["status"] = map[string]any{"initialization": map[string]any{"infrastructureProvisioned": true, "controlPlaneInitialized": true}}
	_, err = dyn.Resource(clusterGVR).Namespace(ns).UpdateStatus(ctx, c, metav1.UpdateOptions{})
	mustCreate(err)
	m := obj(machineGVR, "Machine", ns, machine, labels, map[string]any{
		"clusterName": cluster, "version": e.kubeletVersion,
		"bootstrap":         map[string]any{"configRef": map[string]any{"apiGroup": configGVR.Group, "kind": "ProvisionConfig", "name": machine}},
		"infrastructureRef": map[string]any{"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "NspawnMachine", "name": machine},
	})
	m, err = dyn.Resource(machineGVR).Namespace(ns).Create(ctx, m, metav1.CreateOptions{})
	mustCreate(err)

	// The ProvisionConfig: the scenario's airgap settings (artifact and apt
	// mirrors, pinned), the provision binary of the test server.
	test, err := nodeconfig.Parse(nodeConfig(t, e.art.URL, e.a))
	mustCreate(err)
	spec := map[string]any{
		"os": "debian-12", "format": "cloud-init",
		"provisionSource": e.prov.URL + "/provision", "provisionSHA256": e.provSHA, "allowHTTPSource": true,
		"artifacts": jsonMap(t, test.Artifacts), "packages": jsonMap(t, test.Packages),
	}
	if test.Kubernetes.FailCgroupV1 != nil {
		spec["failCgroupV1"] = *test.Kubernetes.FailCgroupV1
	}
	pc := obj(configGVR, "ProvisionConfig", ns, machine, labels, spec)
	pc.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "cluster.x-k8s.io/v1beta2", Kind: "Machine", Name: machine, UID: m.GetUID()}})
	_, err = dyn.Resource(configGVR).Namespace(ns).Create(ctx, pc, metav1.CreateOptions{})
	mustCreate(err)

	pc = waitObject(t, dyn, configGVR, ns, machine, "rendered", time.Minute, func(o *unstructured.Unstructured) bool {
		v, _, _ := unstructured.NestedBool(o.Object, "status", "initialization", "dataSecretCreated")
		return v
	})
	id, _, _ := unstructured.NestedString(pc.Object, "status", "bootstrapTokenID")
	data, err := cs.CoreV1().Secrets(ns).Get(ctx, machine, metav1.GetOptions{})
	mustCreate(err)
	tok, err := cs.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the token of status.bootstrapTokenID %q: %v", id, err)
	}
	userdataPath := filepath.Join(dir, "user-data")
	mustCreate(os.WriteFile(userdataPath, data.Data["value"], 0o600))
	t.Logf("controller: %d-byte %s userdata in Secret %s/%s, token %s", len(data.Data["value"]), data.Data["format"], ns, machine, id)

	// The join, as every cloud-init scenario checks it: Node Ready, a pod,
	// the CSR by system:bootstrap:<id>, no token in logs or argv.
	ud := userdata{format: osprofiles.CloudInit, path: userdataPath, token: id + "." + string(tok.Data["token-secret"]), hostname: machine}
	r := testenv.NewRoot(t, testenv.BookwormCloudInit)
	testenv.InstallNodeShims(t, r, e.pauseTar)
	e.installMirrorKey(t, r)
	seedNoCloud(t, r, ud, machine+"-1")
	vm, _ := e.bootAndJoin(t, r, ud, "capi cloud-init "+e.kubeletVersion, 6*time.Minute)
	// The contract's sentinel (the controller's userdata asks for it; /run is the machine's tmpfs).
	if res, err := vm.Exec(ctx, "cat", v1alpha1.BootstrapSentinelPath); err != nil || res.ExitCode != 0 {
		t.Errorf("no %s after the join: exit %d %v %s", v1alpha1.BootstrapSentinelPath, res.ExitCode, err, res.Stderr)
	} else {
		t.Logf("%s: %s", v1alpha1.BootstrapSentinelPath, strings.TrimSpace(res.Stdout))
	}

	// Cluster API sets the Machine's nodeRef: the token has done its work.
	m, err = dyn.Resource(machineGVR).Namespace(ns).Get(ctx, machine, metav1.GetOptions{})
	mustCreate(err)
	mustCreate(unstructured.SetNestedField(m.Object, map[string]any{"name": machine}, "status", "nodeRef"))
	_, err = dyn.Resource(machineGVR).Namespace(ns).UpdateStatus(ctx, m, metav1.UpdateOptions{})
	mustCreate(err)
	waitObject(t, dyn, configGVR, ns, machine, "token deleted", time.Minute, func(o *unstructured.Unstructured) bool {
		v, _, _ := unstructured.NestedString(o.Object, "status", "bootstrapTokenID")
		return v == ""
	})
	if _, err := cs.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+id, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("token %s still there after the join (%v)", id, err)
	}
}

func obj(gvr schema.GroupVersionResource, kind, ns, name string, labels map[string]string, spec map[string]any) *unstructured.Unstructured {
	o := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	o.SetAPIVersion(gvr.GroupVersion().String())
	o.SetKind(kind)
	o.SetNamespace(ns)
	o.SetName(name)
	o.SetLabels(labels)
	return o
}

// jsonMap is v as the JSON object the CRD stores (the field names are the GenerateConfig's).
func jsonMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func waitObject(t *testing.T, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, name, what string, timeout time.Duration, ok func(*unstructured.Unstructured) bool) *unstructured.Unstructured {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		o, err := dyn.Resource(gvr).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ok(o) {
			return o
		}
		if time.Now().After(deadline) {
			st, _ := json.Marshal(o.Object["status"])
			t.Fatalf("%s %s: not %s after %s; status %s", gvr.Resource, name, what, timeout, st)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// saConfig creates a ServiceAccount bound to clusterRole and returns a config
// authenticating as it (dialling inside the test's namespace).
func saConfig(t *testing.T, e *joinEnv, ns, name, clusterRole string) *rest.Config {
	t.Helper()
	ctx := t.Context()
	if _, err := e.cluster.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cluster.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return &rest.Config{Host: e.cluster.URL, TLSClientConfig: rest.TLSClientConfig{CAData: e.cluster.CACert},
		BearerToken: tokenFor(t, e, ns, name), Dial: e.ns.DialContext, QPS: 50, Burst: 100, Timeout: 30 * time.Second}
}

// tokenFor returns a one-hour token of a ServiceAccount (TokenRequest).
func tokenFor(t *testing.T, e *joinEnv, ns, name string) string {
	t.Helper()
	var exp int64 = 3600
	tr, err := e.cluster.Client.CoreV1().ServiceAccounts(ns).CreateToken(t.Context(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s: %v", ns, name, err)
	}
	return tr.Status.Token
}

// writeKubeconfig writes a 0600 kubeconfig for the cluster with a bearer token.
func writeKubeconfig(t *testing.T, dir, name string, e *joinEnv, token string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["e2e"] = &clientcmdapi.Cluster{Server: e.cluster.URL, CertificateAuthorityData: e.cluster.CACert}
	kc.AuthInfos["user"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "user"}
	kc.CurrentContext = "e2e"
	b, err := clientcmd.Write(*kc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// capiCRDFiles are Cluster API's Cluster and Machine CRDs from the module cache.
func capiCRDFiles(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", "sigs.k8s.io/cluster-api@"+capiVersion)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download sigs.k8s.io/cluster-api@%s: %v", capiVersion, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download sigs.k8s.io/cluster-api@%s: no directory (%v)", capiVersion, err)
	}
	var files []string
	for _, n := range []string{"clusters", "machines"} {
		p := filepath.Join(mod.Dir, "core", "config", "crd", "bases", fmt.Sprintf("cluster.x-k8s.io_%s.yaml", n))
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	return files
}
