package controller_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bootstrapv1 "github.com/provision-dev/provision/capi/api/v1alpha1"
	"github.com/provision-dev/provision/capi/internal/controller"
	"github.com/provision-dev/provision/capi/internal/kubetest"
	"github.com/provision-dev/provision/capi/internal/testca"
)

// env is the package's API server (kube-apiserver and etcd of hack/build-kube.sh).
var env *kubetest.Env

func TestMain(m *testing.M) {
	// The controller's warnings and reconcile errors, on stderr; every line,
	// down to debug, in controllerLogs (a test checks that no secret reaches them).
	ctrl.SetLogger(logr.FromSlogHandler(teeHandler{
		slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}),
		slog.NewTextHandler(&controllerLogs, &slog.HandlerOptions{Level: slog.LevelDebug - 10}),
	}))
	start := time.Now()
	e, err := kubetest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: test environment:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "envtest: kube-apiserver %s and etcd up, CRDs and capi/config applied in %s\n", kubetest.KubeVersion, time.Since(start).Round(time.Millisecond))
	env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "envtest stop:", err)
	}
	os.Exit(code)
}

// controllerLogs is everything every controller of the package logged.
var controllerLogs syncBuffer

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// teeHandler sends each record to every handler that takes its level.
type teeHandler []slog.Handler

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}

// fixture is one test's namespace: a Cluster whose workload cluster is the
// test API server itself (as in Cluster API's own tests), its CA and
// kubeconfig Secrets, and a controller running as the ServiceAccount of
// capi/config, restricted to the namespace.
type fixture struct {
	t       testing.TB
	ctx     context.Context
	c       client.Client
	ns      string
	cluster *clusterv1.Cluster
	ca      testca.CA
}

const (
	clusterName = "wl"
	endpoint    = "10.0.0.10"
	version     = "v1.37.2"
)

type clusterState struct {
	infrastructure, controlPlane bool
	paused                       bool
}

func newFixture(t testing.TB, st clusterState) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &fixture{t: t, ctx: ctx, c: env.Client, ns: "t-" + strings.ToLower(rand.String(8)), ca: testca.New(t)}
	f.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}})
	labels := map[string]string{clusterv1.ClusterNameLabel: clusterName}
	f.create(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: clusterName + "-ca", Namespace: f.ns, Labels: labels},
		Type:       clusterv1.ClusterSecretType,
		Data:       map[string][]byte{corev1.TLSCertKey: f.ca.CertPEM, corev1.TLSPrivateKeyKey: f.ca.KeyPEM},
	})
	f.create(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: clusterName + "-kubeconfig", Namespace: f.ns, Labels: labels},
		Type:       clusterv1.ClusterSecretType,
		Data:       map[string][]byte{"value": env.AdminKubeconfig},
	})
	f.cluster = &clusterv1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: clusterName, Namespace: f.ns},
		Spec: clusterv1.ClusterSpec{
			Paused:               ptr.To(st.paused),
			ControlPlaneEndpoint: clusterv1.APIEndpoint{Host: endpoint, Port: 6443},
			ClusterNetwork:       clusterv1.ClusterNetwork{Services: clusterv1.NetworkRanges{CIDRBlocks: []string{"10.96.0.0/12"}}, ServiceDomain: "cluster.local"},
		},
	}
	f.create(f.cluster)
	f.setClusterStatus(st)
	return f
}

func (f *fixture) create(o client.Object) {
	f.t.Helper()
	if err := f.c.Create(f.ctx, o); err != nil {
		f.t.Fatalf("create %T %s: %v", o, o.GetName(), err)
	}
}

func (f *fixture) setClusterStatus(st clusterState) {
	f.t.Helper()
	c := &clusterv1.Cluster{}
	if err := f.c.Get(f.ctx, client.ObjectKeyFromObject(f.cluster), c); err != nil {
		f.t.Fatal(err)
	}
	c.Status.Initialization = clusterv1.ClusterInitializationStatus{InfrastructureProvisioned: ptr.To(st.infrastructure), ControlPlaneInitialized: ptr.To(st.controlPlane)}
	if err := f.c.Status().Update(f.ctx, c); err != nil {
		f.t.Fatalf("cluster status: %v", err)
	}
	f.cluster = c
}

func (f *fixture) setClusterPaused(paused bool) {
	f.t.Helper()
	c := &clusterv1.Cluster{}
	if err := f.c.Get(f.ctx, client.ObjectKeyFromObject(f.cluster), c); err != nil {
		f.t.Fatal(err)
	}
	c.Spec.Paused = ptr.To(paused)
	if err := f.c.Update(f.ctx, c); err != nil {
		f.t.Fatal(err)
	}
}

// startController runs the controller in the namespace as its ServiceAccount.
func (f *fixture) startController(o controller.ManagerOptions) {
	f.t.Helper()
	o.Namespace, o.MetricsAddr, o.ProbeAddr, o.SkipNameValidation = f.ns, "0", "0", true
	o.QPS, o.Burst = 100, 200
	o.Concurrency = max(o.Concurrency, 4)
	mgr, err := controller.NewManager(env.Controller, o)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	f.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("manager: %v", err)
		}
	})
}

// configRef is the bootstrap reference a Machine holds to config name.
func configRef(name string) clusterv1.ContractVersionedObjectReference {
	return clusterv1.ContractVersionedObjectReference{APIGroup: bootstrapv1.GroupVersion.Group, Kind: "ProvisionConfig", Name: name}
}

func infraRef(name string) clusterv1.ContractVersionedObjectReference {
	return clusterv1.ContractVersionedObjectReference{APIGroup: "infrastructure.cluster.x-k8s.io", Kind: "TestMachine", Name: name}
}

func (f *fixture) machine(name, kubeletVersion string) *clusterv1.Machine {
	f.t.Helper()
	m := &clusterv1.Machine{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns, Labels: map[string]string{clusterv1.ClusterNameLabel: clusterName}},
		Spec: clusterv1.MachineSpec{
			ClusterName: clusterName, Version: kubeletVersion,
			Bootstrap:         clusterv1.Bootstrap{ConfigRef: configRef(name)},
			InfrastructureRef: infraRef(name),
		},
	}
	f.create(m)
	return m
}

func (f *fixture) machinePool(name string) *clusterv1.MachinePool {
	f.t.Helper()
	mp := &clusterv1.MachinePool{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns, Labels: map[string]string{clusterv1.ClusterNameLabel: clusterName}},
		Spec: clusterv1.MachinePoolSpec{
			ClusterName: clusterName, Replicas: ptr.To[int32](3),
			Template: clusterv1.MachineTemplateSpec{Spec: clusterv1.MachineSpec{
				ClusterName: clusterName, Version: version,
				Bootstrap:         clusterv1.Bootstrap{ConfigRef: configRef(name)},
				InfrastructureRef: infraRef(name),
			}},
		},
	}
	f.create(mp)
	return mp
}

// config creates a ProvisionConfig owned by owner (a Machine or MachinePool),
// as Cluster API's Machine controller leaves it: owner reference and cluster-name label.
func (f *fixture) config(name string, owner client.Object, kind string, spec bootstrapv1.ProvisionConfigSpec) *bootstrapv1.ProvisionConfig {
	f.t.Helper()
	pc := &bootstrapv1.ProvisionConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns, Labels: map[string]string{clusterv1.ClusterNameLabel: clusterName}},
		Spec:       spec,
	}
	if owner != nil {
		pc.OwnerReferences = []metav1.OwnerReference{{APIVersion: clusterv1.GroupVersion.String(), Kind: kind, Name: owner.GetName(), UID: owner.GetUID()}}
	}
	f.create(pc)
	return pc
}

func ubuntuSpec() bootstrapv1.ProvisionConfigSpec {
	return bootstrapv1.ProvisionConfigSpec{
		OS:                "ubuntu-24.04",
		CloudProvider:     "external",
		SSHAuthorizedKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3f5Q2Xq0yQmQ7cX9mJtq3VbqHq3oYkq7o0Jm3sR1z ops@example"},
		ProvisionSource:   "https://example.com/provision/v0.1.0/provision-linux-amd64",
		ProvisionSHA256:   strings.Repeat("ab", 32),
	}
}

// getConfig reads a ProvisionConfig.
func (f *fixture) getConfig(name string) *bootstrapv1.ProvisionConfig {
	f.t.Helper()
	pc := &bootstrapv1.ProvisionConfig{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: name}, pc); err != nil {
		f.t.Fatal(err)
	}
	return pc
}

// waitConfig polls the config until ok, failing with its last status after timeout.
func (f *fixture) waitConfig(name, what string, timeout time.Duration, ok func(*bootstrapv1.ProvisionConfig) bool) *bootstrapv1.ProvisionConfig {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		pc := f.getConfig(name)
		if ok(pc) {
			return pc
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: not %s after %s; status: %+v", name, what, timeout, pc.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func dataSecretCreated(pc *bootstrapv1.ProvisionConfig) bool {
	return ptr.Deref(pc.Status.Initialization.DataSecretCreated, false)
}

func condition(pc *bootstrapv1.ProvisionConfig, typ string) *metav1.Condition {
	for i := range pc.Status.Conditions {
		if pc.Status.Conditions[i].Type == typ {
			return &pc.Status.Conditions[i]
		}
	}
	return nil
}

func hasCondition(typ string, status metav1.ConditionStatus, reason string) func(*bootstrapv1.ProvisionConfig) bool {
	return func(pc *bootstrapv1.ProvisionConfig) bool {
		c := condition(pc, typ)
		return c != nil && c.Status == status && c.Reason == reason
	}
}

// secret reads a Secret; nil if it does not exist.
func (f *fixture) secret(ns, name string) *corev1.Secret {
	f.t.Helper()
	s := &corev1.Secret{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		f.t.Fatal(err)
	}
	return s
}

// tokenSecret is the workload cluster's Secret of a bootstrap token ID.
func (f *fixture) tokenSecret(id string) *corev1.Secret {
	f.t.Helper()
	return f.secret(metav1.NamespaceSystem, "bootstrap-token-"+id)
}
