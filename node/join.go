package node

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/kubeconfig"
	"github.com/provision-dev/provision/internal/kubeversions"
	"github.com/provision-dev/provision/node/tasks"
)

// Kubelet paths and endpoints of join.
const (
	KubeletConfigPath = "/var/lib/kubelet/config.yaml"
	KubeletUnitPath   = "/etc/systemd/system/kubelet.service"
	KubeletDropInPath = "/etc/systemd/system/kubelet.service.d/10-provision.conf"
	KubeletHealthzURL = "http://127.0.0.1:10248/healthz"
	// KubeletClientCertPath is the client certificate the kubelet's TLS bootstrap ends with.
	KubeletClientCertPath = "/var/lib/kubelet/pki/kubelet-client-current.pem"
)

// Task names kubelet/service restarts on.
const (
	tKubeletConfig = "kubelet/config"
	tKubeletUnit   = "kubelet/unit"
	tKubeletDropIn = "kubelet/dropin"
	tBootstrap     = "kubelet/bootstrap-kubeconfig"
	tCACert        = "kubelet/ca-cert"
	tCloudConfig   = "kubelet/cloud-config"
)

// bootstrapRefusalGrace is how long the API server may refuse the bootstrap
// token (a token created a moment ago may not be known to it yet) before join fails.
const bootstrapRefusalGrace = 10 * time.Second

func joinBuilder(n *Node) ([]tasks.Task, error) {
	k := n.Config.Kubernetes
	s := n.opts.Flags
	out := []tasks.Task{&tasks.RequireFile{TaskName: "kubelet/binary-present", Path: n.binPath("kubelet"), Hint: "run `provision node base` first"}}
	// containerd takes the node config's registries, mirrors and proxy (and
	// restarts on a change) before the kubelet starts.
	rt, err := n.runtimeJoinTasks()
	if err != nil {
		return nil, err
	}
	out = append(out, rt...)
	if s.CACert != "" {
		if n.in.caCert.err != nil {
			return nil, n.in.caCert.err
		}
		out = append(out, &tasks.File{TaskName: tCACert, Path: k.CACertPath, Content: n.in.caCert.data})
	}
	if s.CloudConfig != "" {
		if n.in.cloudConfig.err != nil {
			return nil, n.in.cloudConfig.err
		}
		out = append(out, &tasks.File{TaskName: tCloudConfig, Path: k.CloudConfigPath, Content: n.in.cloudConfig.data, Secret: true})
	}
	if n.token != "" {
		kc, err := kubeconfig.Build(kubeconfig.Bootstrap{Server: k.APIServerURL, CAPath: k.CACertPath, Token: n.token})
		if err != nil {
			return nil, err
		}
		out = append(out, &tasks.File{TaskName: tBootstrap, Path: k.BootstrapKubeconfigPath, Content: kc, Secret: true})
	} else if !n.in.joined {
		out = append(out, &tasks.RequireFile{TaskName: tBootstrap, Path: k.BootstrapKubeconfigPath,
			Hint: "it is written by the generated userdata; or pass --token/--token-file with --apiserver-url and --ca-cert"})
	}
	out = append(out, &tasks.RequireFile{TaskName: "kubelet/ca-present", Path: k.CACertPath, Hint: "pass --ca-cert or let the userdata write it"})
	kcfg, err := renderKubeletConfig(k, n.Release(), n.in.resolvConf)
	if err != nil {
		return nil, err
	}
	url := n.opts.HealthzURL
	if url == "" {
		url = KubeletHealthzURL
	}
	timeout := n.opts.HealthzTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	out = append(out, n.skewTask(Join)...)
	cps, err := n.credentialProviderTasks()
	if err != nil {
		return nil, err
	}
	out = append(out, cps...)
	out = append(out,
		&tasks.File{TaskName: tKubeletConfig, Path: KubeletConfigPath, Content: kcfg},
		&tasks.File{TaskName: tKubeletUnit, Path: KubeletUnitPath, Content: n.kubeletUnit()},
		&tasks.File{TaskName: tKubeletDropIn, Path: KubeletDropInPath, Content: n.kubeletDropIn()},
		&tasks.Service{TaskName: "kubelet/service", Unit: "kubelet.service", Start: true, ExecPath: n.binPath("kubelet"),
			ReloadOn:  []string{tKubeletUnit, tKubeletDropIn},
			RestartOn: []string{tKubeletUnit, tKubeletDropIn, tKubeletConfig, tBootstrap, tCACert, tCloudConfig, tCredentialProviderConfig}},
		// The kubelet serves healthz only after its TLS bootstrap: wait for that
		// first, failing fast with the kubelet's error when the token is refused.
		&tasks.KubeletBootstrap{TaskName: "kubelet/tls-bootstrap", CertPath: KubeletClientCertPath, Unit: "kubelet.service",
			Timeout: timeout, Grace: bootstrapRefusalGrace, Poll: 200 * time.Millisecond},
		&tasks.WaitHTTP{TaskName: "kubelet/healthz", URL: url, Timeout: timeout, Poll: 200 * time.Millisecond},
	)
	return out, nil
}

// kubeletArgs returns the kubelet's command line. Every version-dependent flag
// comes from the kubelet minor's row of internal/kubeversions.
func (n *Node) kubeletArgs() []string {
	k := n.Config.Kubernetes
	r := n.Release()
	args := []string{n.binPath("kubelet"),
		"--bootstrap-kubeconfig=" + k.BootstrapKubeconfigPath,
		"--kubeconfig=" + k.KubeconfigPath,
		"--config=" + KubeletConfigPath,
	}
	if !n.needsDocker() && !r.RuntimeEndpointInConfig() {
		if r.Dockershim() && r.HasFlag("--container-runtime") {
			args = append(args, "--container-runtime=remote") // dockershim's kubelet defaults to docker
		}
		args = append(args, "--container-runtime-endpoint="+ContainerdSocket)
	}
	if k.CloudProvider != "" {
		args = append(args, "--cloud-provider="+k.CloudProvider)
		if cloudConfigFlag(r, k) {
			args = append(args, "--cloud-config="+k.CloudConfigPath)
		}
	}
	if k.NodeIP != "" {
		args = append(args, "--node-ip="+k.NodeIP)
	}
	if len(k.NodeLabels) > 0 {
		args = append(args, "--node-labels="+v1alpha1.NodeLabelsFlag(k.NodeLabels))
	}
	if len(k.Taints) > 0 && !r.HasConfigField("registerWithTaints") {
		args = append(args, "--register-with-taints="+taintsFlag(k.Taints)) // 1.21, 1.22: no config field yet
	}
	args = append(args, credentialProviderFlags(k.ImageCredentialProviders)...)
	return append(args, v1alpha1.KubeletExtraArgs(k.KubeletExtraArgs)...) // validated: none of the above
}

// taintsFlag is the kubelet's --register-with-taints value: the taints sorted,
// each key=value:Effect (key:Effect without a value), joined by commas.
func taintsFlag(taints []string) string {
	var out []string
	for _, t := range v1alpha1.SortedTaints(taints) {
		s := t.Key
		if t.Value != "" {
			s += "=" + t.Value
		}
		out = append(out, s+":"+string(t.Effect))
	}
	return strings.Join(out, ",")
}

// cloudConfigFlag reports whether the kubelet gets --cloud-config: only an
// in-tree provider reads it, only kubelets with in-tree providers take one
// (before 1.29), and the flag is gone from 1.34. Otherwise the file is only
// installed, for the cloud-controller-manager and CSI drivers.
func cloudConfigFlag(r kubeversions.Release, k v1alpha1.Kubernetes) bool {
	return k.CloudConfigPath != "" && k.CloudProvider != "" && k.CloudProvider != v1alpha1.CloudProviderExternal &&
		r.InTreeCloudProviders() && r.HasFlag("--cloud-config")
}

func (n *Node) kubeletUnit() []byte {
	return serializeUnit([]*unit.UnitOption{
		unit.NewUnitOption("Unit", "Description", "kubelet: The Kubernetes Node Agent"),
		unit.NewUnitOption("Unit", "Documentation", "https://kubernetes.io/docs/"),
		unit.NewUnitOption("Unit", "Wants", "network-online.target"),
		unit.NewUnitOption("Unit", "After", "network-online.target containerd.service"),
		unit.NewUnitOption("Unit", "StartLimitIntervalSec", "0"),
		unit.NewUnitOption("Service", "ExecStart", execLine([]string{n.binPath("kubelet")})),
		unit.NewUnitOption("Service", "Restart", "always"),
		unit.NewUnitOption("Service", "RestartSec", "5"),
		unit.NewUnitOption("Install", "WantedBy", "multi-user.target"),
	})
}

func (n *Node) kubeletDropIn() []byte {
	opts := []*unit.UnitOption{
		unit.NewUnitOption("Service", "ExecStart", ""),
		unit.NewUnitOption("Service", "ExecStart", execLine(n.kubeletArgs())),
	}
	if f := n.Config.Proxy.EnvironmentFile; f != "" {
		// The proxy settings (they may hold credentials: read from the file, never copied).
		opts = append(opts, unit.NewUnitOption("Service", "EnvironmentFile", f))
	}
	return serializeUnit(opts)
}

// renderKubeletConfig builds the KubeletConfiguration from the upstream types,
// with only the fields the kubelet minor r knows (internal/kubeversions).
// resolvConf is the host's resolv.conf for pods when it is not /etc/resolv.conf
// (systemd-resolved: see systemdResolved), else "".
func renderKubeletConfig(k v1alpha1.Kubernetes, r kubeversions.Release, resolvConf string) ([]byte, error) {
	t, f := true, false
	cfg := kubeletv1beta1.KubeletConfiguration{
		TypeMeta:           metav1.TypeMeta{APIVersion: "kubelet.config.k8s.io/v1beta1", Kind: "KubeletConfiguration"},
		CgroupDriver:       "systemd",
		RotateCertificates: true,
		ServerTLSBootstrap: k.ServerTLSBootstrap, // off by default (kubeadm's): nothing approves serving CSRs
		Authentication: kubeletv1beta1.KubeletAuthentication{
			X509:      kubeletv1beta1.KubeletX509Authentication{ClientCAFile: k.CACertPath},
			Webhook:   kubeletv1beta1.KubeletWebhookAuthentication{Enabled: &t, CacheTTL: metav1.Duration{Duration: 2 * time.Minute}},
			Anonymous: kubeletv1beta1.KubeletAnonymousAuthentication{Enabled: &f},
		},
		Authorization: kubeletv1beta1.KubeletAuthorization{
			Mode: kubeletv1beta1.KubeletAuthorizationModeWebhook,
			Webhook: kubeletv1beta1.KubeletWebhookAuthorization{
				CacheAuthorizedTTL:   metav1.Duration{Duration: 5 * time.Minute},
				CacheUnauthorizedTTL: metav1.Duration{Duration: 30 * time.Second},
			},
		},
		ReadOnlyPort:       0,
		HealthzBindAddress: "127.0.0.1",
		HealthzPort:        ptr(int32(10248)),
		ClusterDNS:         k.ClusterDNS,
		ClusterDomain:      k.ClusterDomain,
		ResolverConfig:     optionalString(resolvConf),
		EvictionHard:       maps.Clone(v1alpha1.DefaultEvictionHard),
		KubeReserved:       maps.Clone(v1alpha1.DefaultKubeReserved),
		SystemReserved:     maps.Clone(v1alpha1.DefaultSystemReserved),
		FailSwapOn:         &t,
	}
	if r.RuntimeEndpointInConfig() {
		cfg.ContainerRuntimeEndpoint = ContainerdSocket
	}
	if len(k.Taints) > 0 && r.HasConfigField("registerWithTaints") {
		cfg.RegisterWithTaints = v1alpha1.SortedTaints(k.Taints) // older kubelets: --register-with-taints
	}
	if k.FailCgroupV1 != nil && r.HasConfigField("failCgroupV1") {
		cfg.FailCgroupV1 = k.FailCgroupV1 // only when set: unset keeps the kubelet's default
	}
	return marshalKubeletConfig(cfg, k.KubeletConfig, r)
}

// marshalKubeletConfig renders cfg, with the node config's kubeletConfig
// merged over it (mergeJSON), as YAML without the top-level fields the kubelet
// minor r does not have: a field set (or marshalled as a zero value) from a
// newer k8s.io/kubelet never reaches an older kubelet. The merged result must
// decode strictly into the kubelet's KubeletConfiguration.
func marshalKubeletConfig(cfg kubeletv1beta1.KubeletConfiguration, overrides map[string]any, r kubeversions.Release) ([]byte, error) {
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("marshal KubeletConfiguration: %w", err)
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, fmt.Errorf("marshal KubeletConfiguration: %w", err)
	}
	if len(overrides) > 0 {
		fields = mergeJSON(fields, overrides).(map[string]any)
		if data, err = json.Marshal(fields); err != nil {
			return nil, fmt.Errorf("merge kubeletConfig: %w", err)
		}
		if err := v1alpha1.DecodeKubeletConfig("kubernetes.kubeletConfig", data, &kubeletv1beta1.KubeletConfiguration{}).Err(); err != nil {
			return nil, fmt.Errorf("merge kubeletConfig over provision's KubeletConfiguration: %w", err)
		}
	}
	for name := range fields {
		if !r.HasConfigField(name) {
			delete(fields, name)
		}
	}
	if data, err = json.Marshal(fields); err != nil {
		return nil, fmt.Errorf("marshal KubeletConfiguration: %w", err)
	}
	out, err := yaml.JSONToYAML(data)
	if err != nil {
		return nil, fmt.Errorf("marshal KubeletConfiguration: %w", err)
	}
	return out, nil
}

// mergeJSON merges patch over base (v1alpha1.MergeJSON: RFC 7386), as
// generate's validation merges a kubeletConfig.
func mergeJSON(base, patch any) any { return v1alpha1.MergeJSON(base, patch) }

func ptr[T any](v T) *T { return &v }

// optionalString is nil for "", else a pointer to s.
func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
