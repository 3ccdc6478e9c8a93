// Command provision-bootstrap-controller is provision's Cluster API bootstrap
// provider: it turns ProvisionConfigs into bootstrap tokens in the workload
// clusters and Secrets holding the userdata `provision generate` would write.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	"k8s.io/klog/v2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	bootstrapv1 "github.com/provision-dev/provision/capi/api/v1alpha1"
	"github.com/provision-dev/provision/capi/internal/controller"
)

type options struct {
	metricsAddr, probeAddr string
	leaderElect            bool
	leaderElectionNS       string
	namespace              string
	tokenTTL               time.Duration
	tokenGroup             string
	concurrency            int
	qps                    float64
	burst                  int
	logLevel               string
}

func main() {
	var o options
	fs := flag.CommandLine
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables it)")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":9440", "address of the /healthz and /readyz endpoints")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "elect a leader, so that only one replica reconciles")
	fs.StringVar(&o.leaderElectionNS, "leader-election-namespace", "", "namespace of the leader election Lease (default: the pod's)")
	fs.StringVar(&o.namespace, "namespace", "", "watch only this namespace (default: all)")
	fs.DurationVar(&o.tokenTTL, "bootstrap-token-ttl", controller.DefaultTokenTTL, "lifetime of a bootstrap token; extended until the node joins")
	fs.StringVar(&o.tokenGroup, "bootstrap-token-group", controller.DefaultTokenGroup, "extra group of the bootstrap tokens (its RBAC must allow node CSRs and their approval)")
	fs.IntVar(&o.concurrency, "concurrency", 10, "ProvisionConfigs reconciled at once")
	fs.Float64Var(&o.qps, "kube-api-qps", 50, "client requests per second to each API server")
	fs.IntVar(&o.burst, "kube-api-burst", 100, "client request burst to each API server")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	// --kubeconfig is controller-runtime's (default: in-cluster, or $KUBECONFIG)
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "provision-bootstrap-controller:", err)
		os.Exit(1)
	}
}

func (o options) validate() error {
	var errs []error
	if o.tokenTTL < time.Minute {
		errs = append(errs, fmt.Errorf("--bootstrap-token-ttl: %s is shorter than 1m", o.tokenTTL))
	}
	if err := bootstraputil.ValidateBootstrapGroupName(o.tokenGroup); err != nil {
		errs = append(errs, fmt.Errorf("--bootstrap-token-group: %w", err))
	}
	if o.concurrency < 1 {
		errs = append(errs, fmt.Errorf("--concurrency: must be at least 1"))
	}
	if o.qps <= 0 || o.burst < 1 {
		errs = append(errs, fmt.Errorf("--kube-api-qps and --kube-api-burst: must be positive"))
	}
	return errors.Join(errs...)
}

func run(o options) error {
	if err := o.validate(); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctrl.SetLogger(log)
	klog.SetLogger(log)

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, clusterv1.AddToScheme, bootstrapv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return fmt.Errorf("scheme: %w", err)
		}
	}
	restCfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	restCfg.QPS, restCfg.Burst = float32(o.qps), o.burst
	restCfg.UserAgent = "provision-bootstrap-controller"

	// Secrets are cached only when Cluster API labelled them with a cluster
	// name (<cluster>-kubeconfig, <cluster>-ca, the data Secrets): never every
	// Secret of the management cluster.
	hasCluster, err := labels.NewRequirement(clusterv1.ClusterNameLabel, selection.Exists, nil)
	if err != nil {
		return err
	}
	cacheOpts := cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Secret{}: {Label: labels.NewSelector().Add(*hasCluster)},
	}}
	if o.namespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{o.namespace: {}}
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   cacheOpts,
		Metrics:                 metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:  o.probeAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "provision-bootstrap-controller.bootstrap.provision.dev",
		LeaderElectionNamespace: o.leaderElectionNS,
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	r := &controller.Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Workload: &controller.WorkloadClients{
			Secrets: mgr.GetClient(), APIReader: mgr.GetAPIReader(), QPS: float32(o.qps), Burst: o.burst,
		},
		TokenTTL:   o.tokenTTL,
		TokenGroup: o.tokenGroup,
	}
	if err := r.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: o.concurrency}); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	log.Info("starting", "tokenTTL", o.tokenTTL.String(), "tokenGroup", o.tokenGroup, "concurrency", o.concurrency)
	return mgr.Start(ctrl.SetupSignalHandler())
}
