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
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/provision-dev/provision/capi/internal/controller"
)

func main() {
	o := controller.ManagerOptions{}
	var qps float64
	var logLevel string
	fs := flag.CommandLine
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables it)")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":9440", "address of the /healthz and /readyz endpoints (0 disables them)")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "elect a leader, so that only one replica reconciles")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: the pod's)")
	fs.StringVar(&o.Namespace, "namespace", "", "watch only this namespace (default: all)")
	fs.DurationVar(&o.TokenTTL, "bootstrap-token-ttl", controller.DefaultTokenTTL, "lifetime of a bootstrap token; extended until the node joins")
	fs.StringVar(&o.TokenGroup, "bootstrap-token-group", controller.DefaultTokenGroup, "extra group of the bootstrap tokens (its RBAC must allow node CSRs and their approval)")
	fs.IntVar(&o.Concurrency, "concurrency", 10, "ProvisionConfigs reconciled at once")
	fs.Float64Var(&qps, "kube-api-qps", 50, "client requests per second to each API server")
	fs.IntVar(&o.Burst, "kube-api-burst", 100, "client request burst to each API server")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	// --kubeconfig is controller-runtime's (default: $KUBECONFIG, else in-cluster)
	flag.Parse()
	o.QPS = float32(qps)
	if err := run(o, logLevel); err != nil {
		fmt.Fprintln(os.Stderr, "provision-bootstrap-controller:", err)
		os.Exit(1)
	}
}

func validate(o controller.ManagerOptions) error {
	var errs []error
	if o.TokenTTL < time.Minute {
		errs = append(errs, fmt.Errorf("--bootstrap-token-ttl: %s is shorter than 1m", o.TokenTTL))
	}
	if err := bootstraputil.ValidateBootstrapGroupName(o.TokenGroup); err != nil {
		errs = append(errs, fmt.Errorf("--bootstrap-token-group: %w", err))
	}
	if o.Concurrency < 1 {
		errs = append(errs, errors.New("--concurrency: must be at least 1"))
	}
	if o.QPS <= 0 || o.Burst < 1 {
		errs = append(errs, errors.New("--kube-api-qps and --kube-api-burst: must be positive"))
	}
	return errors.Join(errs...)
}

func run(o controller.ManagerOptions, logLevel string) error {
	if err := validate(o); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctrl.SetLogger(log)
	klog.SetLogger(log)

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	mgr, err := controller.NewManager(cfg, o)
	if err != nil {
		return err
	}
	log.Info("starting", "tokenTTL", o.TokenTTL.String(), "tokenGroup", o.TokenGroup, "concurrency", o.Concurrency, "namespace", o.Namespace)
	return mgr.Start(ctrl.SetupSignalHandler())
}
