package v1alpha1

import "github.com/provision-dev/provision/osprofiles"

// GenerateConfig is every input of `provision generate`: the document that
// `provision generate --config FILE` reads (flags override its fields). Each
// field's flag is listed in generate's field-to-flag table.
//
// Secrets and file contents come either inline (Token, CACert, CloudConfig) or
// from a file (TokenFile, CACertFile, CloudConfigFile), never both.
type GenerateConfig struct {
	// APIVersion is provision.dev/v1alpha1 (required in a file).
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind is GenerateConfig (required in a file).
	Kind string `json:"kind,omitempty"`

	// OS is an osprofiles name, e.g. "ubuntu-22.04" (--os).
	OS string `json:"os"`
	// Format is cloud-init, ignition or butane; empty means the profile's default (--format).
	Format osprofiles.Format `json:"format,omitempty"`
	// Arch is amd64 (default) or arm64 (--arch).
	Arch string `json:"arch,omitempty"`
	// KubeletVersion is vMAJOR.MINOR.PATCH (--kubelet-version); its minor must be
	// in provision's version table (internal/kubeversions). A minor that is not
	// supported upstream any more is rendered with a warning.
	KubeletVersion string `json:"kubeletVersion"`
	// APIServerURL is the https:// URL of the API server (--apiserver-url).
	APIServerURL string `json:"apiServerURL"`

	// Token is the bootstrap token, [a-z0-9]{6}.[a-z0-9]{16} (--token). A secret.
	Token string `json:"token,omitempty"`
	// TokenFile holds the token (--token-file); surrounding whitespace is trimmed.
	TokenFile string `json:"tokenFile,omitempty"`
	// CACert is the cluster CA, PEM (inline).
	CACert string `json:"caCert,omitempty"`
	// CACertFile holds the cluster CA (--ca-cert).
	CACertFile string `json:"caCertFile,omitempty"`

	// CloudProvider is the kubelet's --cloud-provider (--cloud-provider): "external"
	// (run the provider's cloud-controller-manager), or an in-tree name such as
	// "openstack" only for a kubelet older than 1.29.
	CloudProvider string `json:"cloudProvider,omitempty"`
	// CloudConfig is the cloud provider's config file contents (inline). Secret-like: never echoed.
	CloudConfig string `json:"cloudConfig,omitempty"`
	// CloudConfigFile holds the cloud provider's config (--cloud-config), installed
	// as /etc/kubernetes/cloud-config (0600) for the cloud-controller-manager and
	// CSI drivers; passed to the kubelet only with an in-tree provider (before 1.29).
	CloudConfigFile string `json:"cloudConfigFile,omitempty"`

	// Hostname is the node's hostname, an RFC 1123 DNS name (--hostname).
	Hostname string `json:"hostname,omitempty"`
	// SSHAuthorizedKeys go to the profile's default user (--ssh-authorized-key, repeatable).
	SSHAuthorizedKeys []string `json:"sshAuthorizedKeys,omitempty"`

	// ProvisionSource is the URL of the provision binary the machine runs (--provision-source).
	ProvisionSource string `json:"provisionSource"`
	// ProvisionSHA256 is its pinned sha256, 64 lower-case hex digits (--provision-sha256).
	ProvisionSHA256 string `json:"provisionSHA256"`
	// AllowHTTPSource permits a plain http:// ProvisionSource (internal mirrors) (--allow-http-source).
	AllowHTTPSource bool `json:"allowHTTPSource,omitempty"`

	// IgnitionVersion is 3.3, 3.4 (default) or 3.5, for ignition and butane (--ignition-version).
	IgnitionVersion string `json:"ignitionVersion,omitempty"`
	// Gzip compresses the whole cloud-config (--gzip). Every format already
	// writes each file gzip-compressed where that is shorter; Ignition and
	// Butane need nothing more.
	Gzip bool `json:"gzip,omitempty"`

	// NodeIP is the kubelet's --node-ip; empty lets the kubelet pick (--node-ip).
	NodeIP string `json:"nodeIP,omitempty"`
	// ClusterDNS are the cluster DNS service's IP addresses (kube-dns/CoreDNS),
	// the kubelet's clusterDNS: without one, pods fall back to the node's
	// resolver and cluster names do not resolve (--cluster-dns, repeatable).
	ClusterDNS []string `json:"clusterDNS,omitempty"`
	// ClusterDomain is the cluster's DNS domain (default cluster.local) (--cluster-domain).
	ClusterDomain string `json:"clusterDomain,omitempty"`
	// PodCIDRs are the cluster's pod ranges, IPv4 and/or IPv6 CIDRs (at most one
	// of each), as its --cluster-cidr; with a proxy, added to noProxy (--pod-cidr, repeatable).
	PodCIDRs []string `json:"podCIDRs,omitempty"`
	// ServiceCIDRs are the cluster's Service ranges, as its
	// --service-cluster-ip-range; with a proxy, added to noProxy, and clusterDNS
	// must lie inside them (--service-cidr, repeatable).
	ServiceCIDRs []string `json:"serviceCIDRs,omitempty"`
	// NodeLabels are labels the kubelet puts on its Node when it registers
	// (--node-label key=value, repeatable). Keys in the kubernetes.io/ and k8s.io/
	// namespaces are refused except the kubelet's own (NodeRestriction), so
	// node-role.kubernetes.io/* is set with kubectl after the join.
	NodeLabels map[string]string `json:"nodeLabels,omitempty"`
	// Taints the kubelet registers its Node with, each key=value:Effect or
	// key:Effect, Effect one of NoSchedule, PreferNoSchedule, NoExecute (--taint, repeatable).
	Taints []string `json:"taints,omitempty"`
	// ServerTLSBootstrap makes the kubelet request its serving certificate from
	// the cluster (a kubernetes.io/kubelet-serving CSR) instead of signing one
	// itself. Off by default, as in kubeadm: when on, something must approve those
	// CSRs (kubelet-csr-approver, a cloud's approver, or kubectl certificate
	// approve), or kubectl logs/exec/port-forward and metrics-server fail against
	// the node. Config file only.
	ServerTLSBootstrap bool `json:"serverTLSBootstrap,omitempty"`
	// KubeletConfig is a partial KubeletConfiguration (kubelet.config.k8s.io/v1beta1:
	// maxPods, kubeReserved, systemReserved, evictionHard, featureGates,
	// shutdownGracePeriod, containerLogMaxSize, ...) merged over provision's
	// defaults: objects key by key, other values replaced, null removes a
	// default. Decoded strictly with the kubelet's own types; a field the chosen
	// kubelet does not know, or one provision owns, is refused. Config file only.
	KubeletConfig map[string]any `json:"kubeletConfig,omitempty"`
	// KubeletExtraArgs are kubelet flags without a KubeletConfiguration field,
	// by name without "--" (provider-id, hostname-override, ...), each a single
	// token of printable ASCII. Flags provision sets and flags the chosen kubelet
	// no longer has (the version table) are refused. Config file only.
	KubeletExtraArgs map[string]string `json:"kubeletExtraArgs,omitempty"`
	// FailCgroupV1 becomes the node config's kubernetes.failCgroupV1: false lets
	// a kubelet 1.35+ run on cgroup v1 hosts, which the legacy OS profiles
	// (ubuntu-18.04, centos-7) boot; without it generate refuses that
	// combination. Config file only.
	FailCgroupV1 *bool `json:"failCgroupV1,omitempty"`
	// ImageCredentialProviders are the kubelet's image credential provider
	// plugins (ECR, ACR, GCR or your own): each a binary the node downloads,
	// pinned by its sha256, and an entry of the kubelet's
	// CredentialProviderConfig (kubelet.config.k8s.io/v1, kubelet 1.26+). The
	// config is world-readable: args and env are not secrets. Config file only.
	ImageCredentialProviders []ImageCredentialProvider `json:"imageCredentialProviders,omitempty"`
	// Prebaked says the image already ran `provision node base` and holds the provision
	// binary: setup downloads nothing when the binary's sha256 matches and runs only
	// `provision node join` (--prebaked).
	Prebaked bool `json:"prebaked,omitempty"`
	// BootstrapSentinel makes the node touch /run/cluster-api/bootstrap-success.complete
	// after a successful join: Cluster API's bootstrap contract, which infrastructure
	// providers (CAPD among them) wait for. The bootstrap provider (capi/) sets it.
	// Config file only.
	BootstrapSentinel bool `json:"bootstrapSentinel,omitempty"`
	// Artifacts overrides the node's downloads (mirrors, airgap) and pins their sha256s.
	// An entry with an empty URL keeps the upstream default (its sha256, if given, pins
	// that default). Config file only.
	Artifacts Artifacts `json:"artifacts,omitzero"`
	// Packages names the node's apt/yum mirrors. Config file only.
	Packages Packages `json:"packages,omitzero"`
	// Containerd sets the sandbox image, registry mirrors and registries (CA,
	// skipVerify, credentials: written only to RegistryCredentialsPath, 0600).
	// Config file only.
	Containerd Containerd `json:"containerd,omitzero"`
	// Files are extra files the userdata writes, natively in every format
	// (cloud-init write_files, Ignition/Butane storage.files), before any unit
	// starts. Paths provision writes itself are refused. Config file only.
	Files []File `json:"files,omitempty"`
	// Units are extra systemd units the userdata writes to /etc/systemd/system
	// (cloud-init write_files and runcmd, Ignition/Butane systemd.units).
	// Config file only.
	Units []Unit `json:"units,omitempty"`
	// Proxy is the node's forward proxy for every download (setup's binary,
	// artifacts, apt/dnf) and for containerd and the kubelet. Its URLs may
	// carry credentials: they are written only to ProxyEnvPath (0600).
	// Config file only: a URL with credentials must not be in argv.
	Proxy Proxy `json:"proxy,omitzero"`
}

// File is one extra file of the userdata (GenerateConfig.files), as CABPK's
// files: given inline (content) or, in Ignition and Butane only, fetched by
// the machine from an https:// URL pinned by its sha256 (source, sha256).
// Its content is treated as a secret: never quoted in errors or logs.
type File struct {
	// Path is the file's absolute, clean path on the node.
	Path string `json:"path"`
	// Mode is the file's permission bits, an octal number such as 0600 in YAML;
	// 0 or omitted means 0644. setuid, setgid, sticky and world-writable bits are refused.
	Mode int `json:"mode,omitempty"`
	// Content is the file's contents, written byte for byte.
	Content string `json:"content,omitempty"`
	// Source is an https:// URL the machine downloads the contents from
	// (Ignition and Butane only: cloud-init's write_files has no remote source).
	Source string `json:"source,omitempty"`
	// SHA256 pins Source's contents: 64 lower-case hex digits, required with Source.
	SHA256 string `json:"sha256,omitempty"`
}

// DefaultFileMode is the mode of an extra file without one.
const DefaultFileMode = 0o644

// FileMode returns f's mode, DefaultFileMode when it is not set.
func (f File) FileMode() int {
	if f.Mode == 0 {
		return DefaultFileMode
	}
	return f.Mode
}

// Unit is one extra systemd unit of the userdata (GenerateConfig.units).
type Unit struct {
	// Name is the unit's file name, e.g. "node-exporter.service".
	Name string `json:"name"`
	// Content is the unit file's text (sections and Key=Value lines).
	Content string `json:"content"`
	// Enabled enables (and, at first boot, starts) the unit through its
	// [Install] section, which it then must have.
	Enabled bool `json:"enabled,omitempty"`
}

// SetDefaults fills the defaults that need no OS profile: the architecture and
// the cluster domain. (The format's default is the OS profile's own, chosen
// when rendering.)
func (c *GenerateConfig) SetDefaults() {
	setDefault(&c.Arch, DefaultArch)
	setDefault(&c.ClusterDomain, DefaultClusterDomain)
}
