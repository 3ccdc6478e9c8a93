package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Format is the userdata format of the data Secret: what the machine's
// first-boot agent reads. Butane is not a boot format and is not offered.
// +kubebuilder:validation:Enum=cloud-init;ignition
type Format string

const (
	// CloudInit is a #cloud-config document (Secret key format: cloud-config).
	CloudInit Format = "cloud-init"
	// Ignition is an Ignition v3 config (Secret key format: ignition).
	Ignition Format = "ignition"
)

// HostnamePolicy says where the node's hostname comes from.
// +kubebuilder:validation:Enum=MachineName;None
type HostnamePolicy string

const (
	// HostnameMachineName sets the hostname to the Machine's name (a
	// MachinePool's machines have none: they keep the cloud's).
	HostnameMachineName HostnamePolicy = "MachineName"
	// HostnameNone leaves the hostname to the cloud (its metadata service).
	HostnameNone HostnamePolicy = "None"
)

// ProvisionConfigSpec is provision's GenerateConfig minus what the cluster
// supplies: the kubelet version, API server URL, CA, bootstrap token and
// hostname are derived per Machine. Each field means what the GenerateConfig
// field of the same name means; the controller validates the whole with
// provision's own validation and reports every problem, by field path, in
// the DataSecretAvailable condition.
// +kubebuilder:validation:MinProperties=1
type ProvisionConfigSpec struct {
	// os is an OS profile of provision, e.g. "ubuntu-24.04", "debian-12", "flatcar".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	OS string `json:"os"`

	// format is cloud-init or ignition; empty means the OS profile's default.
	// +optional
	Format Format `json:"format,omitempty"`

	// arch is amd64 (default) or arm64.
	// +optional
	// +kubebuilder:validation:Enum=amd64;arm64
	Arch string `json:"arch,omitempty"`

	// cloudProvider is the kubelet's --cloud-provider: empty, or "external" when a
	// cloud-controller-manager initializes the nodes.
	// +optional
	// +kubebuilder:validation:Enum=external
	CloudProvider string `json:"cloudProvider,omitempty"`

	// hostname says where the node's hostname comes from: MachineName (default)
	// or None (the cloud's).
	// +optional
	// +kubebuilder:default=MachineName
	Hostname HostnamePolicy `json:"hostname,omitempty"`

	// sshAuthorizedKeys go to the OS profile's default user.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=16384
	SSHAuthorizedKeys []string `json:"sshAuthorizedKeys,omitempty"`

	// provisionSource is the https:// URL of the provision binary the machine runs.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	ProvisionSource string `json:"provisionSource"`

	// provisionSHA256 pins that binary: 64 lower-case hex digits.
	// +required
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	ProvisionSHA256 string `json:"provisionSHA256"`

	// allowHTTPSource permits a plain http:// provisionSource (internal mirrors).
	// +optional
	AllowHTTPSource bool `json:"allowHTTPSource,omitempty"`

	// ignitionVersion is the Ignition spec version: 3.3, 3.4 (default) or 3.5.
	// +optional
	// +kubebuilder:validation:Enum="3.3";"3.4";"3.5"
	IgnitionVersion string `json:"ignitionVersion,omitempty"`

	// gzip compresses the userdata: the whole cloud-config, or each Ignition file.
	// +optional
	Gzip bool `json:"gzip,omitempty"`

	// clusterDNS are the kubelet's cluster DNS servers. Empty: the tenth address
	// of the Cluster's first services CIDR (Cluster.spec.clusterNetwork.services;
	// 10.96.0.0/12 if none, kubeadm's default), as kubeadm derives it. Set it for
	// e.g. a node-local DNS cache (169.254.20.10).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=2
	// +kubebuilder:validation:items:MaxLength=45
	ClusterDNS []string `json:"clusterDNS,omitempty"`

	// clusterDomain is the cluster's DNS domain. Empty: the Cluster's
	// spec.clusterNetwork.serviceDomain, else cluster.local.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ClusterDomain string `json:"clusterDomain,omitempty"`

	// nodeLabels are labels the kubelet puts on its Node when it registers
	// (not in the kubernetes.io/ and k8s.io/ namespaces but the kubelet's own:
	// NodeRestriction refuses them).
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	NodeLabels map[string]string `json:"nodeLabels,omitempty"`

	// taints the kubelet registers its Node with: key=value:Effect or key:Effect.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=384
	Taints []string `json:"taints,omitempty"`

	// serverTLSBootstrap makes the kubelet request its serving certificate from
	// the cluster; something must approve those CSRs.
	// +optional
	ServerTLSBootstrap bool `json:"serverTLSBootstrap,omitempty"`

	// kubeletConfig is a partial KubeletConfiguration (kubelet.config.k8s.io/v1beta1)
	// merged over provision's defaults; provision refuses fields it owns and
	// fields the kubelet version does not know.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	KubeletConfig *runtime.RawExtension `json:"kubeletConfig,omitempty"`

	// kubeletExtraArgs are kubelet flags without a KubeletConfiguration field, by
	// name without "--".
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	KubeletExtraArgs map[string]string `json:"kubeletExtraArgs,omitempty"`

	// failCgroupV1: false lets a kubelet 1.35+ run on a cgroup v1 host (the
	// legacy OS profiles ubuntu-18.04 and centos-7), which it refuses by default.
	// +optional
	FailCgroupV1 *bool `json:"failCgroupV1,omitempty"`

	// prebaked says the image already ran `provision node base`: the machine only joins.
	// +optional
	Prebaked bool `json:"prebaked,omitempty"`

	// artifacts overrides the node's downloads by name (kubelet, cniPlugins,
	// crictl, containerd, runc): mirrors and sha256 pins.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Artifacts map[string]Artifact `json:"artifacts,omitempty"`

	// packages names the node's apt/yum mirrors.
	// +optional
	Packages Packages `json:"packages,omitempty,omitzero"`

	// containerd sets the sandbox image, registry mirrors and registries (CA,
	// TLS verification, credentials from a Secret).
	// +optional
	Containerd Containerd `json:"containerd,omitempty,omitzero"`

	// files are extra files the userdata writes (as CABPK's files), before any
	// unit starts. Paths provision writes itself are refused. Their contents
	// land in the data Secret; a ProvisionConfig is not a Secret, so keep
	// credentials out of them.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Files []File `json:"files,omitempty"`

	// units are extra systemd units the userdata writes to /etc/systemd/system.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Units []Unit `json:"units,omitempty"`

	// proxy is the node's forward proxy: httpProxy and httpsProxy from a
	// Secret (they may carry credentials), noProxy inline.
	// +optional
	Proxy *Proxy `json:"proxy,omitempty"`
}

// File is one extra file of the userdata: content inline or, with format
// ignition, an https:// source pinned by its sha256.
type File struct {
	// path is the file's absolute, clean path on the node.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Path string `json:"path"`
	// mode is the file's permission bits (0 or omitted: 0644; in YAML an octal
	// number such as 0600 is read as such). setuid, setgid, sticky and
	// world-writable bits are refused.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=511
	Mode int32 `json:"mode,omitempty"`
	// content is the file's contents, written byte for byte.
	// +optional
	// +kubebuilder:validation:MaxLength=1048576
	Content string `json:"content,omitempty"`
	// source is an https:// URL the machine downloads the contents from (format ignition only).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Source string `json:"source,omitempty"`
	// sha256 pins source: 64 lower-case hex digits, required with source.
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	SHA256 string `json:"sha256,omitempty"`
}

// Unit is one extra systemd unit of the userdata.
type Unit struct {
	// name is the unit's file name, e.g. "node-exporter.service".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	Name string `json:"name"`
	// content is the unit file's text.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=65536
	Content string `json:"content"`
	// enabled enables and starts the unit at first boot through its [Install] section.
	// +optional
	Enabled bool `json:"enabled,omitempty"`
}

// Artifact is one download of the node: a URL and its pinned sha256.
type Artifact struct {
	// url is an https:// or file:// URL (http:// with allowHTTP); empty keeps the default.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	URL string `json:"url,omitempty"`
	// sha256 pins the download: 64 lower-case hex digits.
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	SHA256 string `json:"sha256,omitempty"`
	// allowHTTP permits a plain http:// url.
	// +optional
	AllowHTTP bool `json:"allowHTTP,omitempty"`
}

// Packages names the OS package manager's repositories.
type Packages struct {
	// apt is the apt repository (Debian family).
	// +optional
	Apt *AptRepository `json:"apt,omitempty"`
	// yum is the yum/dnf repository (RHEL family).
	// +optional
	Yum *YumRepository `json:"yum,omitempty"`
}

// AptRepository is one apt repository provision adds.
type AptRepository struct {
	// url of the repository.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	URL string `json:"url"`
	// suite, e.g. "bookworm".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Suite string `json:"suite"`
	// components, e.g. ["main"].
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=256
	Components []string `json:"components"`
	// signedBy is the path on the node of the repository's keyring.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	SignedBy string `json:"signedBy,omitempty"`
	// trusted disables signature checks (development mirrors only).
	// +optional
	Trusted bool `json:"trusted,omitempty"`
	// exclusive disables the OS's other apt sources.
	// +optional
	Exclusive bool `json:"exclusive,omitempty"`
}

// YumRepository is one yum/dnf repository provision adds.
type YumRepository struct {
	// baseURL of the repository.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	BaseURL string `json:"baseURL"`
	// gpgKey is the URL (file:// or https://) of the packages' signing key.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	GPGKey string `json:"gpgKey,omitempty"`
	// gpgCheck must be false, explicitly, for a repository without gpgKey.
	// +optional
	GPGCheck *bool `json:"gpgCheck,omitempty"`
	// exclusive disables the OS's other repositories.
	// +optional
	Exclusive bool `json:"exclusive,omitempty"`
}

// Containerd configures the container runtime.
type Containerd struct {
	// sandboxImage is the pause image (default: the kubelet minor's).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	SandboxImage string `json:"sandboxImage,omitempty"`
	// registryMirrors maps a registry host to mirror endpoints, tried in order.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	RegistryMirrors map[string][]string `json:"registryMirrors,omitempty"`
	// registries maps a registry host[:port] (an upstream, or a mirror of
	// registryMirrors) to its CA, TLS verification and credentials. The
	// credentials come only from a Secret: a ProvisionConfig holds none.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	Registries map[string]Registry `json:"registries,omitempty"`
}

// Registry is one registry host's TLS settings and credentials. The
// controller reads the referenced ConfigMap and Secrets, in the
// ProvisionConfig's namespace, when it renders the userdata (a later change
// of them is not rendered again); the credentials land only in the data
// Secret's userdata, as /etc/provision/registry-credentials.json (0600).
// +kubebuilder:validation:MinProperties=1
// +kubebuilder:validation:XValidation:rule="!(has(self.caCert) && has(self.caCertFrom))",message="give the CA inline (caCert) or from a ConfigMap or Secret (caCertFrom), not both"
// +kubebuilder:validation:XValidation:rule="!(has(self.skipVerify) && self.skipVerify && (has(self.caCert) || has(self.caCertFrom)))",message="skipVerify cannot be combined with a CA"
type Registry struct {
	// caCert is a PEM bundle of the CA certificates the registry's TLS
	// certificate is checked against.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1048576
	CACert string `json:"caCert,omitempty"`
	// caCertFrom reads that PEM bundle from a key of a ConfigMap or a Secret.
	// +optional
	CACertFrom *CACertSource `json:"caCertFrom,omitempty"`
	// skipVerify turns TLS verification off for this host: development
	// registries only.
	// +optional
	SkipVerify bool `json:"skipVerify,omitempty"`
	// credentialsSecretRef names the Secret holding the registry's
	// credentials: a username and password, or an identity token.
	// +optional
	CredentialsSecretRef *RegistryCredentialsSecretRef `json:"credentialsSecretRef,omitempty"`
}

// CACertSource is where a registry's CA bundle is read from: exactly one of
// configMapKeyRef and secretKeyRef.
// +kubebuilder:validation:XValidation:rule="has(self.configMapKeyRef) != has(self.secretKeyRef)",message="give exactly one of configMapKeyRef and secretKeyRef"
type CACertSource struct {
	// configMapKeyRef is a key of a ConfigMap in the ProvisionConfig's namespace.
	// +optional
	ConfigMapKeyRef *KeyRef `json:"configMapKeyRef,omitempty"`
	// secretKeyRef is a key of a Secret in the ProvisionConfig's namespace.
	// +optional
	SecretKeyRef *KeyRef `json:"secretKeyRef,omitempty"`
}

// KeyRef names one key of a ConfigMap or Secret in the ProvisionConfig's namespace.
type KeyRef struct {
	// name of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// key in its data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// RegistryCredentialsSecretRef names a Secret in the ProvisionConfig's
// namespace and the keys of the credentials in it: usernameKey and
// passwordKey (default "username" and "password", a kubernetes.io/basic-auth
// Secret's), or identityTokenKey alone.
// +kubebuilder:validation:XValidation:rule="!(has(self.identityTokenKey) && (has(self.usernameKey) || has(self.passwordKey)))",message="identityTokenKey excludes usernameKey and passwordKey"
type RegistryCredentialsSecretRef struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// usernameKey is the key of the username (default "username").
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	UsernameKey string `json:"usernameKey,omitempty"`
	// passwordKey is the key of the password (default "password").
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	PasswordKey string `json:"passwordKey,omitempty"`
	// identityTokenKey is the key of an OAuth identity (refresh) token,
	// instead of a username and password.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	IdentityTokenKey string `json:"identityTokenKey,omitempty"`
}

// Keys returns the Secret's keys for the username, password and identity
// token ("" for those not used): the defaults applied.
func (r RegistryCredentialsSecretRef) Keys() (username, password, identityToken string) {
	if r.IdentityTokenKey != "" {
		return "", "", r.IdentityTokenKey
	}
	username, password = r.UsernameKey, r.PasswordKey
	if username == "" {
		username = "username"
	}
	if password == "" {
		password = "password"
	}
	return username, password, ""
}

// ProvisionConfigStatus is what the controller observed and produced. It
// holds the bootstrap token's ID and expiry, never its secret half.
// +kubebuilder:validation:MinProperties=1
type ProvisionConfigStatus struct {
	// conditions: Ready (mirrored into the Machine's BootstrapConfigReady),
	// DataSecretAvailable, BootstrapTokenAvailable and Paused.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// initialization holds the v1beta2 contract's provisioning flags.
	// +optional
	Initialization ProvisionConfigInitializationStatus `json:"initialization,omitempty,omitzero"`

	// ready is true once the data Secret exists (the v1beta1 contract's flag).
	// +optional
	Ready bool `json:"ready,omitempty"`

	// dataSecretName names the Secret holding the userdata (keys value and format).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	DataSecretName string `json:"dataSecretName,omitempty"`

	// bootstrapTokenID is the ID (public half) of the bootstrap token the
	// userdata holds, the Secret kube-system/bootstrap-token-<id> of the
	// workload cluster; empty once the token is deleted (the node joined).
	// +optional
	// +kubebuilder:validation:Pattern=`^[a-z0-9]{6}$`
	BootstrapTokenID string `json:"bootstrapTokenID,omitempty"`

	// bootstrapTokenExpiration is when that token expires unless refreshed.
	// +optional
	BootstrapTokenExpiration *metav1.Time `json:"bootstrapTokenExpiration,omitempty"`

	// observedGeneration is the generation of the spec last rendered.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// ProvisionConfigInitializationStatus is the v1beta2 contract's provisioning state.
// +kubebuilder:validation:MinProperties=1
type ProvisionConfigInitializationStatus struct {
	// dataSecretCreated is true once the data Secret exists.
	// +optional
	DataSecretCreated *bool `json:"dataSecretCreated,omitempty"`
}

// ProvisionConfig is the userdata request of one Machine or MachinePool.
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=provisionconfigs,scope=Namespaced,categories=cluster-api
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta1=v1alpha1"
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta2=v1alpha1"
// +kubebuilder:printcolumn:name="Cluster",type="string",JSONPath=".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']",description="Cluster"
// +kubebuilder:printcolumn:name="Data Secret Created",type="boolean",JSONPath=".status.initialization.dataSecretCreated",description="The data Secret exists"
// +kubebuilder:printcolumn:name="Token",type="string",JSONPath=".status.bootstrapTokenID",description="Bootstrap token ID"
// +kubebuilder:printcolumn:name="Paused",type="string",JSONPath=`.status.conditions[?(@.type=="Paused")].status`,description="Reconciliation paused",priority=10
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type ProvisionConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the userdata's settings.
	// +required
	Spec ProvisionConfigSpec `json:"spec,omitzero"`
	// status is what the controller observed and produced.
	// +optional
	Status ProvisionConfigStatus `json:"status,omitempty,omitzero"`
}

// ProvisionConfigList is a list of ProvisionConfigs.
// +kubebuilder:object:root=true
type ProvisionConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ProvisionConfig `json:"items"`
}
