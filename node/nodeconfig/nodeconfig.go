// Package nodeconfig is the versioned settings file that `provision generate` writes
// to the machine and `provision node` reads (/etc/provision/node.yaml). It never
// holds a secret: the bootstrap token lives only in the 0600 bootstrap kubeconfig.
package nodeconfig

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/internal/yamlsafe"
	"github.com/provision-dev/provision/osprofiles"
)

const (
	// APIVersion is the version of the NodeConfig schema.
	APIVersion = "provision.dev/v1alpha1"
	// Kind is the kind of a NodeConfig document.
	Kind = "NodeConfig"
	// DefaultPath is where generate writes the node config and node reads it.
	DefaultPath = "/etc/provision/node.yaml"

	// Well-known paths on the node, shared by generate and node.
	CACertPath              = "/etc/kubernetes/pki/ca.crt"
	CloudConfigPath         = "/etc/kubernetes/cloud-config"
	BootstrapKubeconfigPath = "/etc/kubernetes/bootstrap-kubelet.conf"
	KubeconfigPath          = "/etc/kubernetes/kubelet.conf"

	// DefaultSandboxImage is containerd's pause image.
	DefaultSandboxImage = "registry.k8s.io/pause:3.10"
)

// NodeConfig is everything `provision node` needs to know, except secrets.
type NodeConfig struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// OSProfile names the profile (osprofiles); empty means detect from /etc/os-release.
	OSProfile string `json:"osProfile,omitempty"`
	// Arch is amd64 or arm64; empty means the running machine's.
	Arch       string     `json:"arch,omitempty"`
	Kubernetes Kubernetes `json:"kubernetes"`
	Artifacts  Artifacts  `json:"artifacts"`
	Containerd Containerd `json:"containerd,omitzero"`
	Packages   Packages   `json:"packages,omitzero"`
}

// Kubernetes holds the kubelet's settings.
type Kubernetes struct {
	// Version is the kubelet version, vMAJOR.MINOR.PATCH.
	Version string `json:"version"`
	// APIServerURL is the https URL of the API server (informational for node; the
	// bootstrap kubeconfig carries it).
	APIServerURL string `json:"apiServerURL,omitempty"`
	// CloudProvider is passed to the kubelet ("external", or an in-tree name on old versions).
	CloudProvider string `json:"cloudProvider,omitempty"`
	// CloudConfigPath is the cloud provider's config file on the node, if any.
	CloudConfigPath         string   `json:"cloudConfigPath,omitempty"`
	CACertPath              string   `json:"caCertPath"`
	BootstrapKubeconfigPath string   `json:"bootstrapKubeconfigPath"`
	KubeconfigPath          string   `json:"kubeconfigPath"`
	NodeIP                  string   `json:"nodeIP,omitempty"`
	ClusterDNS              []string `json:"clusterDNS,omitempty"`
	ClusterDomain           string   `json:"clusterDomain,omitempty"`
}

// Artifact is one download: a URL and its pinned sha256. An empty SHA256 means
// the checksum is fetched from URL + ".sha256" (upstream's convention); it is never skipped.
type Artifact struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256,omitempty"`
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
	SandboxImage string `json:"sandboxImage,omitempty"`
	// RegistryMirrors maps a registry host (e.g. "docker.io") to mirror endpoints (https URLs).
	RegistryMirrors map[string][]string `json:"registryMirrors,omitempty"`
}

// Packages configures the OS package manager's repositories (mirrors for airgap).
type Packages struct {
	Apt *AptRepository `json:"apt,omitempty"`
	Yum *YumRepository `json:"yum,omitempty"`
}

// AptRepository is one apt repository provision adds (a deb822 .sources file).
type AptRepository struct {
	// URL of the repository, e.g. http://mirror.internal/debian.
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
	BaseURL string `json:"baseURL"`
	// GPGKey is the URL (file:// or https://) of the key that signs the packages; empty disables gpgcheck.
	GPGKey string `json:"gpgKey,omitempty"`
	// Exclusive disables the OS's other repositories.
	Exclusive bool `json:"exclusive,omitempty"`
}

// New returns a NodeConfig with the defaults for a kubelet version and architecture.
func New(version, arch string) NodeConfig {
	if arch == "" {
		arch = "amd64"
	}
	return NodeConfig{
		APIVersion: APIVersion,
		Kind:       Kind,
		Arch:       arch,
		Kubernetes: Kubernetes{
			Version:                 version,
			CACertPath:              CACertPath,
			BootstrapKubeconfigPath: BootstrapKubeconfigPath,
			KubeconfigPath:          KubeconfigPath,
		},
		Artifacts:  DefaultArtifacts(version, arch),
		Containerd: Containerd{SandboxImage: DefaultSandboxImage},
	}
}

// DefaultArtifacts returns the upstream download URLs of every configurable
// artifact for a kubelet version and architecture. Checksums are left empty:
// they come from the upstream .sha256 files unless pinned.
func DefaultArtifacts(version, arch string) Artifacts {
	out := Artifacts{}
	for _, a := range artifacts.Configurable() {
		out[a.Name] = Artifact{URL: a.DefaultURL(version, arch)}
	}
	return out
}

// Marshal renders the config as YAML, deterministically.
func (c NodeConfig) Marshal() ([]byte, error) {
	out, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("marshal node config: %w", err)
	}
	return out, nil
}

// Parse reads a NodeConfig document strictly (unknown fields are errors) and validates it.
// A document over yamlsafe's limits (1 MiB, 64 levels of nesting, any YAML
// anchor or alias) is refused before it is decoded, so parsing is linear-time.
func Parse(data []byte) (NodeConfig, error) {
	if err := yamlsafe.Check(data); err != nil {
		return NodeConfig{}, fmt.Errorf("parse node config: %w", err)
	}
	var c NodeConfig
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return NodeConfig{}, fmt.Errorf("parse node config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return NodeConfig{}, err
	}
	return c, nil
}

// Load reads and parses the node config at path; it reads no more than
// yamlsafe.MaxBytes+1 bytes of it.
func Load(path string) (NodeConfig, error) {
	data, err := yamlsafe.ReadFile(path)
	if err != nil {
		return NodeConfig{}, fmt.Errorf("read node config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return NodeConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

var (
	versionRE = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)
	sha256RE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ValidVersion reports whether v is of the form vMAJOR.MINOR.PATCH.
func ValidVersion(v string) bool { return versionRE.MatchString(v) }

// ValidSHA256 reports whether s is 64 lower-case hex digits.
func ValidSHA256(s string) bool { return sha256RE.MatchString(s) }

// FieldError is a problem with one field, named by its path in the document.
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// Errors is a list of field errors; Error joins them one per line.
type Errors []FieldError

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Validate checks every field and returns all problems at once, as Errors.
func (c NodeConfig) Validate() error {
	var errs Errors
	add := func(field, format string, a ...any) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, a...)})
	}
	if c.APIVersion != APIVersion {
		add("apiVersion", "must be %q, got %q", APIVersion, c.APIVersion)
	}
	if c.Kind != Kind {
		add("kind", "must be %q, got %q", Kind, c.Kind)
	}
	if c.OSProfile != "" {
		if _, err := osprofiles.Get(c.OSProfile); err != nil {
			add("osProfile", "%v", err)
		}
	}
	if c.Arch != "" && c.Arch != "amd64" && c.Arch != "arm64" {
		add("arch", "must be amd64 or arm64, got %q", c.Arch)
	}
	k := c.Kubernetes
	if !ValidVersion(k.Version) {
		add("kubernetes.version", "must be vMAJOR.MINOR.PATCH (e.g. v1.31.4), got %q", k.Version)
	}
	if k.APIServerURL != "" {
		if u, err := url.Parse(k.APIServerURL); err != nil || u.Scheme != "https" || u.Host == "" {
			add("kubernetes.apiServerURL", "must be an https:// URL")
		}
	}
	for field, p := range map[string]string{
		"kubernetes.caCertPath":              k.CACertPath,
		"kubernetes.bootstrapKubeconfigPath": k.BootstrapKubeconfigPath,
		"kubernetes.kubeconfigPath":          k.KubeconfigPath,
	} {
		if !strings.HasPrefix(p, "/") {
			add(field, "must be an absolute path, got %q", p)
		}
	}
	if k.CloudConfigPath != "" && !strings.HasPrefix(k.CloudConfigPath, "/") {
		add("kubernetes.cloudConfigPath", "must be an absolute path, got %q", k.CloudConfigPath)
	}
	if k.NodeIP != "" && net.ParseIP(k.NodeIP) == nil {
		add("kubernetes.nodeIP", "must be an IP address, got %q", k.NodeIP)
	}
	for i, ip := range k.ClusterDNS {
		if net.ParseIP(ip) == nil {
			add(fmt.Sprintf("kubernetes.clusterDNS[%d]", i), "must be an IP address, got %q", ip)
		}
	}
	checkArtifact := func(field string, a Artifact, required bool) {
		if a.URL == "" {
			if required {
				add(field+".url", "is required")
			}
			return
		}
		if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "file") || (u.Scheme != "file" && u.Host == "") {
			add(field+".url", "must be an http(s):// or file:// URL")
		}
		if a.SHA256 != "" && !ValidSHA256(a.SHA256) {
			add(field+".sha256", "must be 64 lower-case hex digits")
		}
	}
	names := make([]string, 0, len(c.Artifacts))
	for name := range c.Artifacts {
		if a, ok := artifacts.Get(name); !ok || !a.Configurable() {
			add("artifacts."+name, "unknown artifact (one of %s)", strings.Join(artifacts.ConfigNames(), ", "))
			continue
		}
		names = append(names, name)
	}
	for _, a := range artifacts.Configurable() {
		if _, ok := c.Artifacts[a.Name]; !ok && a.Need == artifacts.Always {
			names = append(names, a.Name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		a, _ := artifacts.Get(name)
		checkArtifact("artifacts."+name, c.Artifacts[name], a.Need == artifacts.Always)
	}
	hosts := make([]string, 0, len(c.Containerd.RegistryMirrors))
	for h := range c.Containerd.RegistryMirrors {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		if h == "" || strings.ContainsAny(h, "/ \n") {
			add("containerd.registryMirrors", "registry %q must be a host[:port]", h)
		}
		for i, m := range c.Containerd.RegistryMirrors[h] {
			if u, err := url.Parse(m); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				add(fmt.Sprintf("containerd.registryMirrors[%s][%d]", h, i), "must be an http(s):// URL")
			}
		}
	}
	if a := c.Packages.Apt; a != nil {
		if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "file") {
			add("packages.apt.url", "must be an http(s):// or file:// URL")
		}
		if a.Suite == "" || strings.ContainsAny(a.Suite, " \n") {
			add("packages.apt.suite", "must be a suite name such as \"bookworm\"")
		}
		if len(a.Components) == 0 {
			add("packages.apt.components", "must list at least one component, e.g. [main]")
		}
		for i, comp := range a.Components {
			if comp == "" || strings.ContainsAny(comp, " \n/") {
				add(fmt.Sprintf("packages.apt.components[%d]", i), "must be a component name such as \"main\"")
			}
		}
		if a.SignedBy != "" && !strings.HasPrefix(a.SignedBy, "/") {
			add("packages.apt.signedBy", "must be an absolute path, got %q", a.SignedBy)
		}
		if a.SignedBy != "" && a.Trusted {
			add("packages.apt.trusted", "cannot be combined with signedBy")
		}
	}
	if y := c.Packages.Yum; y != nil {
		if u, err := url.Parse(y.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "file") {
			add("packages.yum.baseURL", "must be an http(s):// or file:// URL")
		}
		if y.GPGKey != "" {
			if u, err := url.Parse(y.GPGKey); err != nil || (u.Scheme != "https" && u.Scheme != "file") {
				add("packages.yum.gpgKey", "must be an https:// or file:// URL")
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
	return errs
}

// AsErrors extracts field errors from err, if it holds any.
func AsErrors(err error) (Errors, bool) {
	var es Errors
	ok := errors.As(err, &es)
	return es, ok
}
