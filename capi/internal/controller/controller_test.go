package controller_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/provision-dev/provision/api/v1alpha1"
	bootstrapv1 "github.com/provision-dev/provision/capi/api/v1alpha1"
	"github.com/provision-dev/provision/capi/internal/controller"
	"github.com/provision-dev/provision/capi/internal/validators"
)

// userdata is what a data Secret's value holds, decoded.
type userdata struct {
	files      map[string][]byte
	server     string
	token      string
	kubelet    string
	hostname   string
	caCertFile []byte
	node       v1alpha1.NodeConfig
}

func decode(t *testing.T, format string, value []byte) userdata {
	t.Helper()
	files := validators.Files(t, format, value)
	kc, ok := files[v1alpha1.BootstrapKubeconfigPath]
	if !ok {
		t.Fatalf("no %s in the userdata", v1alpha1.BootstrapKubeconfigPath)
	}
	cfg, err := clientcmd.Load(kc)
	if err != nil {
		t.Fatalf("bootstrap kubeconfig: %v", err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.Clusters[ctx.Cluster] == nil || cfg.AuthInfos[ctx.AuthInfo] == nil {
		t.Fatal("bootstrap kubeconfig: no current context")
	}
	var nc v1alpha1.NodeConfig
	if err := yaml.Unmarshal(files[v1alpha1.NodeConfigPath], &nc); err != nil {
		t.Fatalf("node config: %v", err)
	}
	return userdata{files: files, server: cfg.Clusters[ctx.Cluster].Server, token: cfg.AuthInfos[ctx.AuthInfo].Token,
		kubelet: nc.Kubernetes.Version, hostname: validators.Hostname(t, format, value), caCertFile: files[v1alpha1.CACertPath], node: nc}
}

// TestMachineUserdata: for a Machine, the controller mints a token in the
// workload cluster and writes the contract's data Secret, whose value passes
// provision's validators and carries the derived values and that token; the
// token authenticates as a bootstrapper of the configured group.
func TestMachineUserdata(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spec   func() bootstrapv1.ProvisionConfigSpec
		format string
	}{
		{"ubuntu cloud-init", ubuntuSpec, bootstrapv1.FormatCloudConfig},
		{"debian cloud-init gzip", func() bootstrapv1.ProvisionConfigSpec {
			s := ubuntuSpec()
			s.OS, s.Gzip = "debian-12", true
			return s
		}, bootstrapv1.FormatCloudConfig},
		{"flatcar ignition", func() bootstrapv1.ProvisionConfigSpec {
			s := ubuntuSpec()
			s.OS = "flatcar"
			return s
		}, bootstrapv1.FormatIgnition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, clusterState{infrastructure: true, controlPlane: true})
			f.startController(controller.ManagerOptions{TokenTTL: 15 * time.Minute})
			m := f.machine("md-0-x7k2p", version)
			pc := f.config(m.Name, m, "Machine", tc.spec())
			start := time.Now()
			pc = f.waitConfig(pc.Name, "rendered", 30*time.Second, dataSecretCreated)

			// The data Secret: exactly value and format, the contract's type,
			// label and controller owner.
			s := f.secret(f.ns, pc.Status.DataSecretName)
			if s == nil || pc.Status.DataSecretName != pc.Name {
				t.Fatalf("data secret %q missing (want the config's name)", pc.Status.DataSecretName)
			}
			if keys := slicesSorted(s.Data); !slices.Equal(keys, []string{"format", "value"}) {
				t.Errorf("data secret keys %v, want format and value", keys)
			}
			if s.Type != clusterv1.ClusterSecretType {
				t.Errorf("type %s, want %s", s.Type, clusterv1.ClusterSecretType)
			}
			if s.Labels[clusterv1.ClusterNameLabel] != clusterName {
				t.Errorf("labels %v, want %s=%s", s.Labels, clusterv1.ClusterNameLabel, clusterName)
			}
			if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != pc.UID || s.OwnerReferences[0].Kind != "ProvisionConfig" ||
				s.OwnerReferences[0].APIVersion != bootstrapv1.GroupVersion.String() || s.OwnerReferences[0].Controller == nil || !*s.OwnerReferences[0].Controller {
				t.Errorf("owner references %+v, want the config as controller", s.OwnerReferences)
			}
			if got := string(s.Data["format"]); got != tc.format {
				t.Errorf("format %q, want %q", got, tc.format)
			}
			validators.Userdata(t, tc.format, s.Data["value"])

			// Derived: kubelet version, API server, CA, hostname; and the token.
			u := decode(t, tc.format, s.Data["value"])
			if u.server != "https://"+endpoint+":6443" || u.kubelet != version || !bytes.Equal(u.caCertFile, f.ca.CertPEM) || u.hostname != m.Name {
				t.Errorf("derived values: server %s, kubelet %s, hostname %q, CA equal %v", u.server, u.kubelet, u.hostname, bytes.Equal(u.caCertFile, f.ca.CertPEM))
			}
			if k := u.node.Kubernetes; !slices.Equal(k.ClusterDNS, []string{"10.96.0.10"}) || k.ClusterDomain != "cluster.local" {
				t.Errorf("cluster DNS %v %q, want 10.96.0.10 cluster.local (Cluster.spec.clusterNetwork)", k.ClusterDNS, k.ClusterDomain)
			}
			id, secretHalf, ok := strings.Cut(u.token, ".")
			if !ok || id != pc.Status.BootstrapTokenID {
				t.Fatalf("the userdata's token is not status.bootstrapTokenID %s", pc.Status.BootstrapTokenID)
			}
			checkToken(t, f, id, secretHalf, start, 15*time.Minute, pc)
			checkAuthenticates(t, u.token, id)
			checkContractStatus(t, f, pc, secretHalf)
		})
	}
}

func slicesSorted[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkToken: kube-system/bootstrap-token-<id> is a bootstrap token for
// authentication only, in the configured group, expiring TTL after creation.
func checkToken(t *testing.T, f *fixture, id, secretHalf string, created time.Time, ttl time.Duration, pc *bootstrapv1.ProvisionConfig) {
	t.Helper()
	ts := f.tokenSecret(id)
	if ts == nil {
		t.Fatalf("token secret bootstrap-token-%s missing", id)
	}
	if ts.Type != bootstrapapi.SecretTypeBootstrapToken {
		t.Errorf("token type %s", ts.Type)
	}
	d := ts.Data
	if string(d[bootstrapapi.BootstrapTokenIDKey]) != id || string(d[bootstrapapi.BootstrapTokenSecretKey]) != secretHalf {
		t.Error("token secret does not hold the userdata's token")
	}
	if string(d[bootstrapapi.BootstrapTokenUsageAuthentication]) != "true" {
		t.Error("token: no authentication usage")
	}
	if _, ok := d[bootstrapapi.BootstrapTokenUsageSigningKey]; ok {
		t.Error("token: signing usage set (the userdata carries the CA; no discovery)")
	}
	if g := string(d[bootstrapapi.BootstrapTokenExtraGroupsKey]); g != controller.DefaultTokenGroup {
		t.Errorf("token group %q, want %q", g, controller.DefaultTokenGroup)
	}
	exp, err := time.Parse(time.RFC3339, string(d[bootstrapapi.BootstrapTokenExpirationKey]))
	if err != nil {
		t.Fatalf("token expiration: %v", err)
	}
	if lo, hi := created.Add(ttl-2*time.Second), time.Now().Add(ttl+time.Second); exp.Before(lo) || exp.After(hi) {
		t.Errorf("token expires %s, want creation + %s (%s..%s)", exp, ttl, lo, hi)
	}
	if pc.Status.BootstrapTokenExpiration == nil || !pc.Status.BootstrapTokenExpiration.Time.Equal(exp) {
		t.Errorf("status expiration %v, token's %s", pc.Status.BootstrapTokenExpiration, exp)
	}
}

// checkAuthenticates: the API server authenticates the token as
// system:bootstrap:<id> in system:bootstrappers and the configured group.
func checkAuthenticates(t *testing.T, token, id string) {
	t.Helper()
	cfg := rest.AnonymousClientConfig(env.Admin)
	cfg.BearerToken = token
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("the minted token does not authenticate: %v", err)
	}
	u := r.Status.UserInfo
	if u.Username != "system:bootstrap:"+id || !slices.Contains(u.Groups, "system:bootstrappers") || !slices.Contains(u.Groups, controller.DefaultTokenGroup) {
		t.Errorf("token authenticates as %s %v", u.Username, u.Groups)
	}
}

// checkContractStatus reads the config the way Cluster API's contract code
// does (unstructured paths, by the CRD's contract labels), for both versions.
func checkContractStatus(t *testing.T, f *fixture, pc *bootstrapv1.ProvisionConfig, secretHalf string) {
	t.Helper()
	for _, name := range []string{"provisionconfigs.bootstrap.provision.dev", "provisionconfigtemplates.bootstrap.provision.dev"} {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := f.c.Get(f.ctx, client.ObjectKey{Name: name}, crd); err != nil {
			t.Fatal(err)
		}
		for _, contract := range []string{"cluster.x-k8s.io/v1beta1", "cluster.x-k8s.io/v1beta2"} {
			if crd.Labels[contract] != "v1alpha1" {
				t.Errorf("CRD %s: label %s=%q, want v1alpha1", name, contract, crd.Labels[contract])
			}
		}
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(bootstrapv1.GroupVersion.WithKind("ProvisionConfig"))
	if err := f.c.Get(f.ctx, client.ObjectKeyFromObject(pc), u); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := unstructured.NestedBool(u.Object, "status", "ready"); !v {
		t.Error("v1beta1 contract: status.ready is not true")
	}
	if v, _, _ := unstructured.NestedBool(u.Object, "status", "initialization", "dataSecretCreated"); !v {
		t.Error("v1beta2 contract: status.initialization.dataSecretCreated is not true")
	}
	if v, _, _ := unstructured.NestedString(u.Object, "status", "dataSecretName"); v != pc.Name {
		t.Errorf("status.dataSecretName %q", v)
	}
	if strings.Contains(mustYAML(t, u.Object), secretHalf) {
		t.Error("the config holds the token's secret half")
	}
	for _, c := range []struct {
		typ    string
		status metav1.ConditionStatus
	}{{bootstrapv1.ReadyCondition, metav1.ConditionTrue}, {bootstrapv1.DataSecretAvailableCondition, metav1.ConditionTrue},
		{bootstrapv1.BootstrapTokenAvailableCondition, metav1.ConditionTrue}, {bootstrapv1.PausedCondition, metav1.ConditionFalse}} {
		if got := condition(pc, c.typ); got == nil || got.Status != c.status {
			t.Errorf("condition %s: %+v, want %s", c.typ, got, c.status)
		}
	}
	if pc.Status.ObservedGeneration != pc.Generation {
		t.Errorf("observedGeneration %d, generation %d", pc.Status.ObservedGeneration, pc.Generation)
	}
}

func mustYAML(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// setNodeRef marks the Machine joined, as Cluster API's Machine controller does.
func (f *fixture) setNodeRef(m *clusterv1.Machine, node string) {
	f.t.Helper()
	got := &clusterv1.Machine{}
	if err := f.c.Get(f.ctx, client.ObjectKeyFromObject(m), got); err != nil {
		f.t.Fatal(err)
	}
	got.Status.NodeRef = clusterv1.MachineNodeReference{Name: node}
	if err := f.c.Status().Update(f.ctx, got); err != nil {
		f.t.Fatalf("machine status: %v", err)
	}
}

func tokenExpiration(t *testing.T, s *corev1.Secret) time.Time {
	t.Helper()
	exp, err := time.Parse(time.RFC3339, string(s.Data[bootstrapapi.BootstrapTokenExpirationKey]))
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

// TestRefreshUntilJoinedThenDelete: while the Machine has no nodeRef the token
// is extended before it expires; once the node joined the token is deleted
// and nothing is minted again.
func TestRefreshUntilJoinedThenDelete(t *testing.T) {
	t.Parallel()
	const ttl = 6 * time.Second // extended when under 5 s are left, checked at most every 2 s
	f := newFixture(t, clusterState{infrastructure: true, controlPlane: true})
	f.startController(controller.ManagerOptions{TokenTTL: ttl})
	m := f.machine("worker-0", version)
	pc := f.waitConfig(f.config(m.Name, m, "Machine", ubuntuSpec()).Name, "rendered", 30*time.Second, dataSecretCreated)
	id := pc.Status.BootstrapTokenID
	value := f.secret(f.ns, pc.Name).Data["value"]

	// Outlive the TTL twice over: the token must still be valid, extended several times.
	last := tokenExpiration(t, f.tokenSecret(id))
	extensions := 0
	for deadline := time.Now().Add(2 * ttl); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		ts := f.tokenSecret(id)
		if ts == nil {
			t.Fatal("token deleted before the node joined")
		}
		if exp := tokenExpiration(t, ts); exp.After(last) {
			extensions++
			last = exp
		}
		if time.Now().After(last) {
			t.Fatalf("token expired at %s without being extended", last)
		}
	}
	if extensions < 3 {
		t.Errorf("token extended %d times in %s, want at least 3", extensions, 2*ttl)
	}
	pc = f.getConfig(pc.Name)
	if pc.Status.BootstrapTokenID != id || !bytes.Equal(f.secret(f.ns, pc.Name).Data["value"], value) {
		t.Error("refreshing changed the token or the userdata")
	}

	f.setNodeRef(m, "worker-0")
	pc = f.waitConfig(pc.Name, "token deleted", 15*time.Second, hasCondition(bootstrapv1.BootstrapTokenAvailableCondition, metav1.ConditionFalse, bootstrapv1.TokenDeletedReason))
	if pc.Status.BootstrapTokenID != "" || pc.Status.BootstrapTokenExpiration != nil {
		t.Errorf("status still names token %q", pc.Status.BootstrapTokenID)
	}
	if f.tokenSecret(id) != nil {
		t.Error("token secret still exists after the node joined")
	}
	if c := condition(pc, bootstrapv1.ReadyCondition); c == nil || c.Status != metav1.ConditionTrue || !dataSecretCreated(pc) {
		t.Errorf("after the join the config must stay ready: %+v", pc.Status)
	}
	time.Sleep(ttl / 2)
	if pc = f.getConfig(pc.Name); pc.Status.BootstrapTokenID != "" {
		t.Error("a token was minted again after the node joined")
	}
}

// TestPause: a paused Cluster or config gets no token and no data; while
// paused a token is not extended; unpaused, work resumes.
func TestPause(t *testing.T) {
	t.Parallel()
	const ttl = 6 * time.Second
	f := newFixture(t, clusterState{infrastructure: true, controlPlane: true, paused: true})
	f.startController(controller.ManagerOptions{TokenTTL: ttl})
	m := f.machine("worker-0", version)
	pc := f.config(m.Name, m, "Machine", ubuntuSpec())
	f.waitConfig(pc.Name, "paused", 15*time.Second, hasCondition(bootstrapv1.PausedCondition, metav1.ConditionTrue, bootstrapv1.PausedReason))
	time.Sleep(2 * time.Second)
	if pc = f.getConfig(pc.Name); dataSecretCreated(pc) || pc.Status.BootstrapTokenID != "" || f.secret(f.ns, pc.Name) != nil {
		t.Fatalf("paused, yet rendered: %+v", pc.Status)
	}

	f.setClusterPaused(false)
	pc = f.waitConfig(pc.Name, "rendered after unpause", 30*time.Second, dataSecretCreated)
	if c := condition(pc, bootstrapv1.PausedCondition); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("Paused condition %+v after unpause", c)
	}

	// The config's own annotation pauses it too: the token is left alone.
	got := f.getConfig(pc.Name)
	got.Annotations = map[string]string{clusterv1.PausedAnnotation: ""}
	if err := f.c.Update(f.ctx, got); err != nil {
		t.Fatal(err)
	}
	f.waitConfig(pc.Name, "paused by annotation", 15*time.Second, hasCondition(bootstrapv1.PausedCondition, metav1.ConditionTrue, bootstrapv1.PausedReason))
	before := tokenExpiration(t, f.tokenSecret(pc.Status.BootstrapTokenID))
	time.Sleep(ttl / 2)
	if after := tokenExpiration(t, f.tokenSecret(pc.Status.BootstrapTokenID)); !after.Equal(before) {
		t.Errorf("token extended while paused: %s -> %s", before, after)
	}
}

// TestMachinePoolRotation: a MachinePool's token is replaced past half its
// life, and the data Secret regenerated with the new one (no hostname: the
// pool's machines keep the cloud's).
func TestMachinePoolRotation(t *testing.T) {
	t.Parallel()
	const ttl = 6 * time.Second // rotated when under 3 s are left
	f := newFixture(t, clusterState{infrastructure: true, controlPlane: true})
	f.startController(controller.ManagerOptions{TokenTTL: ttl})
	mp := f.machinePool("pool-0")
	pc := f.waitConfig(f.config(mp.Name, mp, "MachinePool", ubuntuSpec()).Name, "rendered", 30*time.Second, dataSecretCreated)
	first := pc.Status.BootstrapTokenID
	u := decode(t, bootstrapv1.FormatCloudConfig, f.secret(f.ns, pc.Name).Data["value"])
	if u.hostname != "" {
		t.Errorf("a MachinePool's userdata sets hostname %q", u.hostname)
	}
	for round := range 2 {
		prev := pc.Status.BootstrapTokenID
		pc = f.waitConfig(pc.Name, "rotated", 2*ttl, func(pc *bootstrapv1.ProvisionConfig) bool {
			return pc.Status.BootstrapTokenID != prev && pc.Status.BootstrapTokenID != ""
		})
		s := f.secret(f.ns, pc.Name)
		validators.Userdata(t, bootstrapv1.FormatCloudConfig, s.Data["value"])
		u := decode(t, bootstrapv1.FormatCloudConfig, s.Data["value"])
		if id, _, _ := strings.Cut(u.token, "."); id != pc.Status.BootstrapTokenID {
			t.Fatalf("round %d: the data Secret holds token %s, status names %s", round, id, pc.Status.BootstrapTokenID)
		}
		if f.tokenSecret(pc.Status.BootstrapTokenID) == nil {
			t.Fatalf("round %d: new token secret missing", round)
		}
		checkAuthenticates(t, u.token, pc.Status.BootstrapTokenID)
	}
	if pc.Status.BootstrapTokenID == first {
		t.Error("never rotated")
	}
}

// TestInvalidSpec: provision's validation errors surface in the
// DataSecretAvailable condition with their field path; nothing is minted
// or written until the spec is fixed.
func TestInvalidSpec(t *testing.T) {
	t.Parallel()
	f := newFixture(t, clusterState{infrastructure: true, controlPlane: true})
	f.startController(controller.ManagerOptions{TokenTTL: 15 * time.Minute})

	spec := ubuntuSpec()
	spec.OS, spec.Format = "flatcar", bootstrapv1.CloudInit // Flatcar does not boot cloud-init userdata
	spec.Containerd.RegistryMirrors = map[string][]string{"docker.io": {"ftp://mirror.example.com"}}
	m := f.machine("worker-0", version)
	pc := f.waitConfig(f.config(m.Name, m, "Machine", spec).Name, "invalid", 15*time.Second,
		hasCondition(bootstrapv1.DataSecretAvailableCondition, metav1.ConditionFalse, bootstrapv1.InvalidSpecReason))
	msg := condition(pc, bootstrapv1.DataSecretAvailableCondition).Message
	for _, path := range []string{"spec.format: ", "spec.containerd.registryMirrors[docker.io][0]: "} {
		if !strings.Contains(msg, path) {
			t.Errorf("condition message %q does not name %s", msg, path)
		}
	}
	if c := condition(pc, bootstrapv1.ReadyCondition); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("Ready %+v, want False", c)
	}
	if pc.Status.BootstrapTokenID != "" || f.secret(f.ns, pc.Name) != nil || pc.Status.ObservedGeneration != pc.Generation {
		t.Errorf("invalid spec, yet a token or data was made: %+v", pc.Status)
	}

	pc.Spec.Format = bootstrapv1.Ignition
	pc.Spec.Containerd.RegistryMirrors = nil
	if err := f.c.Update(f.ctx, pc); err != nil {
		t.Fatal(err)
	}
	pc = f.waitConfig(pc.Name, "rendered after the fix", 30*time.Second, dataSecretCreated)
	validators.Userdata(t, bootstrapv1.FormatIgnition, f.secret(f.ns, pc.Name).Data["value"])

	// A derived value's error names where it comes from.
	m2 := f.machine("worker-1", "1.37") // not vMAJOR.MINOR.PATCH
	pc2 := f.waitConfig(f.config(m2.Name, m2, "Machine", ubuntuSpec()).Name, "invalid", 15*time.Second,
		hasCondition(bootstrapv1.DataSecretAvailableCondition, metav1.ConditionFalse, bootstrapv1.InvalidSpecReason))
	if msg := condition(pc2, bootstrapv1.DataSecretAvailableCondition).Message; !strings.Contains(msg, "Machine.spec.version: ") {
		t.Errorf("condition message %q does not name Machine.spec.version", msg)
	}
}

// TestWaits: no owner, no infrastructure, no control plane: the config says
// what it waits for and renders as soon as each arrives.
func TestWaits(t *testing.T) {
	t.Parallel()
	f := newFixture(t, clusterState{})
	f.startController(controller.ManagerOptions{TokenTTL: 15 * time.Minute})
	m := f.machine("worker-0", version)
	pc := f.config(m.Name, nil, "", ubuntuSpec())
	wait := func(reason string) {
		t.Helper()
		f.waitConfig(pc.Name, reason, 15*time.Second, hasCondition(bootstrapv1.DataSecretAvailableCondition, metav1.ConditionFalse, reason))
	}
	wait(bootstrapv1.WaitingForOwnerReason)

	got := f.getConfig(pc.Name) // Cluster API's Machine controller adds the owner
	got.OwnerReferences = []metav1.OwnerReference{{APIVersion: clusterv1.GroupVersion.String(), Kind: "Machine", Name: m.Name, UID: m.UID}}
	if err := f.c.Update(f.ctx, got); err != nil {
		t.Fatal(err)
	}
	wait(bootstrapv1.WaitingForInfrastructureReason)
	f.setClusterStatus(clusterState{infrastructure: true})
	wait(bootstrapv1.WaitingForControlPlaneReason)
	f.setClusterStatus(clusterState{infrastructure: true, controlPlane: true})
	f.waitConfig(pc.Name, "rendered", 30*time.Second, dataSecretCreated)
}

// TestStatusRestoredAfterMove: after clusterctl move the status is empty but
// the Machine names the data Secret: the controller adopts it and mints nothing.
func TestStatusRestoredAfterMove(t *testing.T) {
	t.Parallel()
	f := newFixture(t, clusterState{infrastructure: true, controlPlane: true})
	m := &clusterv1.Machine{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-0", Namespace: f.ns, Labels: map[string]string{clusterv1.ClusterNameLabel: clusterName}},
		Spec: clusterv1.MachineSpec{ClusterName: clusterName, Version: version, InfrastructureRef: infraRef("worker-0"),
			Bootstrap: clusterv1.Bootstrap{ConfigRef: configRef("worker-0"), DataSecretName: ptr.To("worker-0")}},
	}
	f.create(m)
	moved := []byte("#cloud-config\n")
	f.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "worker-0", Namespace: f.ns, Labels: map[string]string{clusterv1.ClusterNameLabel: clusterName}},
		Type: clusterv1.ClusterSecretType, Data: map[string][]byte{"value": moved, "format": []byte("cloud-config")}})
	pc := f.config(m.Name, m, "Machine", ubuntuSpec())
	f.startController(controller.ManagerOptions{TokenTTL: 15 * time.Minute})
	pc = f.waitConfig(pc.Name, "adopted", 15*time.Second, dataSecretCreated)
	if pc.Status.DataSecretName != "worker-0" || !pc.Status.Ready || pc.Status.BootstrapTokenID != "" {
		t.Errorf("status %+v, want the moved Secret adopted without a token", pc.Status)
	}
	if !bytes.Equal(f.secret(f.ns, "worker-0").Data["value"], moved) {
		t.Error("the moved data Secret was rewritten")
	}
}

// TestSpecChangeBeforeJoin: a new spec before the node joined means new data
// with a new token.
func TestSpecChangeBeforeJoin(t *testing.T) {
	t.Parallel()
	f := newFixture(t, clusterState{infrastructure: true, controlPlane: true})
	f.startController(controller.ManagerOptions{TokenTTL: 15 * time.Minute})
	m := f.machine("worker-0", version)
	pc := f.waitConfig(f.config(m.Name, m, "Machine", ubuntuSpec()).Name, "rendered", 30*time.Second, dataSecretCreated)
	first := pc.Status.BootstrapTokenID
	pc.Spec.Hostname = bootstrapv1.HostnameNone
	if err := f.c.Update(f.ctx, pc); err != nil {
		t.Fatal(err)
	}
	pc = f.waitConfig(pc.Name, "re-rendered", 30*time.Second, func(pc *bootstrapv1.ProvisionConfig) bool {
		return pc.Status.ObservedGeneration == pc.Generation && pc.Status.BootstrapTokenID != first
	})
	u := decode(t, bootstrapv1.FormatCloudConfig, f.secret(f.ns, pc.Name).Data["value"])
	if id, _, _ := strings.Cut(u.token, "."); id != pc.Status.BootstrapTokenID || u.hostname != "" {
		t.Errorf("re-rendered data: token %s (status %s), hostname %q", id, pc.Status.BootstrapTokenID, u.hostname)
	}
}

// TestUnusableKubeconfig: a <cluster>-kubeconfig the controller cannot use
// leaves the config waiting, with a message that never quotes the document
// (it holds credentials).
func TestUnusableKubeconfig(t *testing.T) {
	t.Parallel()
	f := newFixture(t, clusterState{infrastructure: true, controlPlane: true})
	const marker = "do-not-quote-me-7f3a"
	kc := f.secret(f.ns, clusterName+"-kubeconfig")
	kc.Data["value"] = []byte("apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user: {token: " + marker + "\n")
	if err := f.c.Update(f.ctx, kc); err != nil {
		t.Fatal(err)
	}
	f.startController(controller.ManagerOptions{TokenTTL: 15 * time.Minute})
	m := f.machine("worker-0", version)
	pc := f.waitConfig(f.config(m.Name, m, "Machine", ubuntuSpec()).Name, "waiting for the kubeconfig", 15*time.Second,
		hasCondition(bootstrapv1.DataSecretAvailableCondition, metav1.ConditionFalse, bootstrapv1.WaitingForClusterSecretReason))
	if msg := condition(pc, bootstrapv1.DataSecretAvailableCondition).Message; strings.Contains(msg, marker) || !strings.Contains(msg, clusterName+"-kubeconfig") {
		t.Errorf("condition message %q: must name the Secret and not quote it", msg)
	}
	if pc.Status.BootstrapTokenID != "" {
		t.Error("a token ID without a workload cluster")
	}
}

// TestOperatorSettings: the node's operator settings reach its node config,
// and an explicit cluster DNS (a node-local cache) wins over the derived one.
func TestOperatorSettings(t *testing.T) {
	t.Parallel()
	f := newFixture(t, clusterState{infrastructure: true, controlPlane: true})
	f.startController(controller.ManagerOptions{TokenTTL: 15 * time.Minute})
	spec := ubuntuSpec()
	spec.ClusterDNS = []string{"169.254.20.10"}
	spec.NodeLabels = map[string]string{"example.com/pool": "gpu"}
	spec.Taints = []string{"dedicated=gpu:NoSchedule"}
	spec.KubeletConfig = &runtime.RawExtension{Raw: []byte(`{"maxPods":50}`)}
	spec.KubeletExtraArgs = map[string]string{"provider-id": "openstack:///7b5e1c2a"}
	m := f.machine("gpu-0", version)
	pc := f.waitConfig(f.config(m.Name, m, "Machine", spec).Name, "rendered", 30*time.Second, dataSecretCreated)
	s := f.secret(f.ns, pc.Name)
	validators.Userdata(t, bootstrapv1.FormatCloudConfig, s.Data["value"])
	k := decode(t, bootstrapv1.FormatCloudConfig, s.Data["value"]).node.Kubernetes
	if !slices.Equal(k.ClusterDNS, spec.ClusterDNS) || k.ClusterDomain != "cluster.local" || k.NodeLabels["example.com/pool"] != "gpu" ||
		!slices.Equal(k.Taints, spec.Taints) || k.KubeletConfig["maxPods"] != float64(50) || k.KubeletExtraArgs["provider-id"] != "openstack:///7b5e1c2a" {
		t.Errorf("node config kubernetes: %+v", k)
	}
}
