package controller

import (
	"fmt"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	bootstrapv1 "github.com/provision-dev/provision/capi/api/v1alpha1"
)

// ManagerOptions configure the controller's manager: the binary's flags.
type ManagerOptions struct {
	// MetricsAddr and ProbeAddr are the metrics and health endpoints ("0": off).
	MetricsAddr, ProbeAddr string
	// LeaderElect elects a leader in LeaderElectionNamespace.
	LeaderElect             bool
	LeaderElectionNamespace string
	// Namespace restricts the controller to one namespace (default: all).
	Namespace string
	// TokenTTL and TokenGroup: see Reconciler.
	TokenTTL   time.Duration
	TokenGroup string
	// Concurrency is how many configs are reconciled at once.
	Concurrency int
	// QPS and Burst bound the requests to each API server (management and workload).
	QPS   float32
	Burst int
	// WrapTransport, if set, wraps every client's transport (tests count requests).
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// SkipNameValidation allows several managers in one process (tests).
	SkipNameValidation bool
}

// Scheme holds every type the controller reads or writes.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, clusterv1.AddToScheme, bootstrapv1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("scheme: %w", err)
		}
	}
	return s, nil
}

// NewManager returns a manager running the ProvisionConfig controller.
func NewManager(cfg *rest.Config, o ManagerOptions) (ctrl.Manager, error) {
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = o.QPS, o.Burst
	cfg.UserAgent = "provision-bootstrap-controller"
	if o.WrapTransport != nil {
		cfg.Wrap(o.WrapTransport)
	}
	// Secrets are cached only when Cluster API labelled them with a cluster
	// name (<cluster>-kubeconfig, <cluster>-ca, the data Secrets): never every
	// Secret of the management cluster.
	hasCluster, err := labels.NewRequirement(clusterv1.ClusterNameLabel, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	cacheOpts := cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Secret{}: {Label: labels.NewSelector().Add(*hasCluster)},
	}}
	if o.Namespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{o.Namespace: {}}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   cacheOpts,
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:  o.ProbeAddr,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        "provision-bootstrap-controller.bootstrap.provision.dev",
		LeaderElectionNamespace: o.LeaderElectionNamespace,
	})
	if err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	r := &Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Workload: &WorkloadClients{
			Secrets: mgr.GetClient(), APIReader: mgr.GetAPIReader(), QPS: o.QPS, Burst: o.Burst, WrapTransport: o.WrapTransport,
		},
		TokenTTL:   o.TokenTTL,
		TokenGroup: o.TokenGroup,
	}
	if err := r.SetupWithManager(mgr, Options{MaxConcurrentReconciles: o.Concurrency, SkipNameValidation: o.SkipNameValidation}); err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	return mgr, nil
}
