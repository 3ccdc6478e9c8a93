package v1alpha1

import (
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/provision-dev/provision/osprofiles"
)

// NodeConfig is everything `provision node` needs to know, except secrets: the
// bootstrap token lives only in the 0600 bootstrap kubeconfig.
type NodeConfig struct {
	// APIVersion is provision.dev/v1alpha1.
	APIVersion string `json:"apiVersion"`
	// Kind is NodeConfig.
	Kind string `json:"kind"`
	// OSProfile names the OS profile (osprofiles), e.g. "debian-12"; empty means
	// detect it from the root's /etc/os-release.
	OSProfile string `json:"osProfile,omitempty"`
	// Arch is amd64 or arm64; empty means the running machine's.
	Arch string `json:"arch,omitempty"`
	// Kubernetes holds the kubelet's settings.
	Kubernetes Kubernetes `json:"kubernetes"`
	// Artifacts are the node's downloads (kubelet, CNI plugins, crictl, ...).
	Artifacts Artifacts `json:"artifacts"`
	// Containerd configures the container runtime.
	Containerd Containerd `json:"containerd,omitzero"`
	// Packages names the OS package manager's mirrors.
	Packages Packages `json:"packages,omitzero"`
	// BootstrapSentinel makes a successful join touch BootstrapSentinelPath
	// (Cluster API's bootstrap contract).
	BootstrapSentinel bool `json:"bootstrapSentinel,omitempty"`
	// Proxy names the environment file with the proxy settings (never the
	// URLs themselves: they may carry credentials).
	Proxy NodeProxy `json:"proxy,omitzero"`
}

// Kubernetes holds the kubelet's settings.
type Kubernetes struct {
	// Version is the kubelet version, vMAJOR.MINOR.PATCH.
	Version string `json:"version"`
	// APIServerURL is the https:// URL of the API server; node uses it to build
	// the bootstrap kubeconfig when given a token.
	APIServerURL string `json:"apiServerURL,omitempty"`
	// CloudProvider is the kubelet's --cloud-provider: "external" (the cloud's
	// cloud-controller-manager initializes the node), or an in-tree name for a
	// kubelet older than 1.29 (lower-case letters, digits, '-'). From 1.29 an
	// in-tree name is refused.
	CloudProvider string `json:"cloudProvider,omitempty"`
	// CloudConfigPath is the cloud provider's config file on the node (0600),
	// if any. It is passed to the kubelet (--cloud-config) only with an in-tree
	// provider on a kubelet that still has the flag (before 1.29 here; the
	// flag is gone in 1.34); otherwise it is installed for the
	// cloud-controller-manager and CSI drivers that read it on the node.
	CloudConfigPath string `json:"cloudConfigPath,omitempty"`
	// CACertPath is the cluster CA on the node (default CACertPath).
	CACertPath string `json:"caCertPath"`
	// BootstrapKubeconfigPath is the bootstrap kubeconfig (default BootstrapKubeconfigPath).
	BootstrapKubeconfigPath string `json:"bootstrapKubeconfigPath"`
	// KubeconfigPath is the kubelet's kubeconfig (default KubeconfigPath).
	KubeconfigPath string `json:"kubeconfigPath"`
	// NodeIP is the kubelet's --node-ip; empty lets the kubelet pick.
	NodeIP string `json:"nodeIP,omitempty"`
	// ClusterDNS are the cluster DNS servers' IP addresses.
	ClusterDNS []string `json:"clusterDNS,omitempty"`
	// ClusterDomain is the cluster's DNS domain (default DefaultClusterDomain).
	ClusterDomain string `json:"clusterDomain,omitempty"`
	// NodeLabels are the labels the kubelet registers its Node with (its
	// --node-labels flag, sorted by key); only labels a kubelet may set on
	// itself under NodeRestriction.
	NodeLabels map[string]string `json:"nodeLabels,omitempty"`
	// Taints the kubelet registers its Node with, each key=value:Effect or
	// key:Effect (the KubeletConfiguration's registerWithTaints, sorted; the
	// --register-with-taints flag for a kubelet older than 1.23).
	Taints []string `json:"taints,omitempty"`
	// ServerTLSBootstrap is the KubeletConfiguration's serverTLSBootstrap: the
	// kubelet's serving certificate comes from a kubernetes.io/kubelet-serving
	// CSR that something in the cluster must approve. Off (kubeadm's default):
	// the kubelet serves a self-signed certificate.
	ServerTLSBootstrap bool `json:"serverTLSBootstrap,omitempty"`
	// KubeletConfig is a partial KubeletConfiguration merged over the one
	// provision renders (objects key by key, other values replaced, null removes
	// a default), checked like the GenerateConfig's kubeletConfig.
	KubeletConfig map[string]any `json:"kubeletConfig,omitempty"`
	// KubeletExtraArgs are extra kubelet flags, by name without "--", appended
	// to the kubelet's command line as --NAME=VALUE sorted by name.
	KubeletExtraArgs map[string]string `json:"kubeletExtraArgs,omitempty"`
	// FailCgroupV1 is the KubeletConfiguration's failCgroupV1: false lets a
	// kubelet that refuses cgroup v1 by default (1.35+) run on a cgroup v1 host.
	// Unset keeps the kubelet's default; it is rendered only when set and the
	// kubelet has the field (1.31+). Base and join check the running host's
	// cgroup version against it before starting anything.
	FailCgroupV1 *bool `json:"failCgroupV1,omitempty"`
	// ImageCredentialProviders are the kubelet's image credential provider
	// plugins: each downloaded (pinned by sha256) into the plugins' directory
	// and named in the CredentialProviderConfig the kubelet reads
	// (--image-credential-provider-config, --image-credential-provider-bin-dir).
	// Kubelet 1.26 and newer.
	ImageCredentialProviders []ImageCredentialProvider `json:"imageCredentialProviders,omitempty"`
}

// Artifact is one download: a URL and its pinned sha256. An empty SHA256 means
// the checksum is fetched from URL + ".sha256" (upstream's convention); it is
// never skipped.
type Artifact struct {
	// URL is an https:// or file:// URL; http:// only with AllowHTTP.
	URL string `json:"url"`
	// SHA256 pins the download: 64 lower-case hex digits.
	SHA256 string `json:"sha256,omitempty"`
	// AllowHTTP permits a plain http:// URL (and so an http:// checksum URL),
	// e.g. an internal mirror; pin SHA256 then. Off by default.
	AllowHTTP bool `json:"allowHTTP,omitempty"`
}

// Artifacts are the node's downloads by name: the configurable artifacts of
// internal/artifacts (kubelet, cniPlugins, crictl; containerd and runc where the
// profile installs containerd from the release tarball). Every URL may point at
// a mirror (airgap). It is a map: clone it (maps.Clone) before changing a copy
// of a config.
type Artifacts map[string]Artifact

// Get returns the artifact named name (zero if absent).
func (a Artifacts) Get(name string) Artifact { return a[name] }

// Containerd configures the container runtime.
type Containerd struct {
	// Install is where containerd and runc come from: "package" (the OS's
	// packages) or "tarball" (containerd's release tarball, artifacts.containerd,
	// and runc's release binary, artifacts.runc, with provision's systemd unit).
	// Empty means the OS profile's way: package on Debian and Ubuntu, tarball on
	// Rocky and CentOS. Flatcar and Fedora CoreOS ship containerd in the image
	// and take neither. Use tarball where the distribution's containerd is too
	// old for the kubelet (Debian 12 ships 1.6, Debian 13 and Ubuntu 1.7).
	Install osprofiles.RuntimeSource `json:"install,omitempty"`
	// Version is the containerd version the tarball holds, MAJOR.MINOR.PATCH
	// (tarball installs only). Empty means the version artifacts.containerd.url
	// names (containerd-X.Y.Z-linux-ARCH.tar.gz), else the default tarball's. It
	// picks the config format: version 4 for containerd 2.3+, 3 for 2.0-2.2, 2 for 1.x.
	Version string `json:"version,omitempty"`
	// SandboxImage is the pause image (default: DefaultSandboxImage of the
	// kubelet version, the one its minor's kubeadm uses).
	SandboxImage string `json:"sandboxImage,omitempty"`
	// RegistryMirrors maps a registry host (e.g. "docker.io") to mirror
	// endpoints (http(s):// URLs), tried in order.
	RegistryMirrors map[string][]string `json:"registryMirrors,omitempty"`
	// Registries are per-registry-host settings, keyed by host[:port] (the
	// host the node contacts: an upstream such as docker.io, or a mirror's
	// host): a custom CA, skipping TLS verification (development only), and
	// credentials. In a GenerateConfig the CA and credentials are given here
	// and generate moves them to files; in a NodeConfig only caPath and
	// skipVerify appear (node.yaml is world-readable), the credentials live in
	// CredentialsFile.
	Registries map[string]Registry `json:"registries,omitempty"`
	// CredentialsFile (NodeConfig only) is the registry credentials file
	// (RegistryCredentialsPath, 0600): a JSON object host -> {username,
	// password} or {identityToken}, rendered into containerd's CRI config.
	// generate writes it and sets this field.
	CredentialsFile string `json:"credentialsFile,omitempty"`
}

// Packages configures the OS package manager's repositories (mirrors for airgap).
type Packages struct {
	// Apt is the apt repository (Debian family).
	Apt *AptRepository `json:"apt,omitempty"`
	// Yum is the yum/dnf repository (RHEL family).
	Yum *YumRepository `json:"yum,omitempty"`
}

// AptRepository is one apt repository provision adds (a deb822 .sources file).
type AptRepository struct {
	// URL of the repository, e.g. http://mirror.internal/debian (apt checks signatures).
	URL string `json:"url"`
	// Suite, e.g. "bookworm"; "./" style flat repositories are not supported.
	Suite string `json:"suite"`
	// Components, e.g. ["main"].
	Components []string `json:"components"`
	// SignedBy is the path on the node of the keyring that signs the repository.
	SignedBy string `json:"signedBy,omitempty"`
	// Trusted disables signature checks (development mirrors only; the pinned
	// artifacts are unaffected). Mutually exclusive with SignedBy.
	Trusted bool `json:"trusted,omitempty"`
	// Exclusive disables the OS's other apt sources (airgapped nodes).
	Exclusive bool `json:"exclusive,omitempty"`
}

// YumRepository is one yum/dnf repository provision adds.
type YumRepository struct {
	// BaseURL of the repository.
	BaseURL string `json:"baseURL"`
	// GPGKey is the URL (file:// or https://) of the key that signs the packages.
	GPGKey string `json:"gpgKey,omitempty"`
	// GPGCheck must be false, explicitly, to use a repository without GPGKey
	// (packages then install unsigned); it may be omitted when GPGKey is given.
	GPGCheck *bool `json:"gpgCheck,omitempty"`
	// Exclusive disables the OS's other repositories.
	Exclusive bool `json:"exclusive,omitempty"`
}

// SetDefaults fills the fields that have a default and are empty: apiVersion,
// kind, the well-known paths and the sandbox image (the kubelet minor's; left
// empty for a version provision does not know, which Validate refuses).
// Artifact URLs depend on the versions and come from nodeconfig.DefaultArtifacts.
func (c *NodeConfig) SetDefaults() {
	setDefault(&c.APIVersion, APIVersion)
	setDefault(&c.Kind, NodeConfigKind)
	c.Kubernetes.SetDefaults()
	setDefault(&c.Containerd.SandboxImage, DefaultSandboxImage(c.Kubernetes.Version))
}

// SetDefaults fills the node paths left empty.
func (k *Kubernetes) SetDefaults() {
	setDefault(&k.CACertPath, CACertPath)
	setDefault(&k.BootstrapKubeconfigPath, BootstrapKubeconfigPath)
	setDefault(&k.KubeconfigPath, KubeconfigPath)
	setDefault(&k.ClusterDomain, DefaultClusterDomain)
}

func setDefault(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

// Marshal renders the config as YAML, deterministically.
func (c NodeConfig) Marshal() ([]byte, error) {
	out, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("marshal node config: %w", err)
	}
	return out, nil
}
