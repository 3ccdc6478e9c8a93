// Package generate turns a Spec (the inputs of `provision generate`) into the
// userdata a machine boots with: one neutral plan.Plan, rendered as cloud-init,
// Ignition or Butane. It never prints or exits, and no error it returns quotes a
// secret (the bootstrap token, the cloud-config contents).
package generate

import (
	"fmt"
	"path/filepath"

	"sigs.k8s.io/yaml"

	"github.com/provision-dev/provision/internal/yamlsafe"
	"github.com/provision-dev/provision/node/nodeconfig"
	"github.com/provision-dev/provision/osprofiles"
)

const (
	// APIVersion is the version of the GenerateConfig document.
	APIVersion = "provision.dev/v1alpha1"
	// Kind is the kind of the GenerateConfig document.
	Kind = "GenerateConfig"
)

// Spec is every input of generate. It is also the GenerateConfig document that
// `provision generate --config FILE` reads (flags override its fields).
//
// Secrets and file contents come either inline (Token, CACert, CloudConfig) or
// from a file (TokenFile, CACertFile, CloudConfigFile), never both.
type Spec struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`

	// OS is an osprofiles name, e.g. "ubuntu-22.04" (--os).
	OS string `json:"os"`
	// Format is cloud-init, ignition or butane; empty means the profile's default (--format).
	Format osprofiles.Format `json:"format,omitempty"`
	// Arch is amd64 (default) or arm64 (--arch).
	Arch string `json:"arch,omitempty"`
	// KubeletVersion is vMAJOR.MINOR.PATCH (--kubelet-version).
	KubeletVersion string `json:"kubeletVersion"`
	// APIServerURL is the https URL of the API server (--apiserver-url).
	APIServerURL string `json:"apiServerURL"`

	// Token is the bootstrap token, [a-z0-9]{6}.[a-z0-9]{16} (--token). A secret.
	Token string `json:"token,omitempty"`
	// TokenFile holds the token (--token-file); surrounding whitespace is trimmed.
	TokenFile string `json:"tokenFile,omitempty"`
	// CACert is the cluster CA, PEM (inline).
	CACert string `json:"caCert,omitempty"`
	// CACertFile holds the cluster CA (--ca-cert).
	CACertFile string `json:"caCertFile,omitempty"`

	// CloudProvider is passed to the kubelet, e.g. "external" or "openstack" (--cloud-provider).
	CloudProvider string `json:"cloudProvider,omitempty"`
	// CloudConfig is the cloud provider's config file contents (inline). Secret-like: never echoed.
	CloudConfig string `json:"cloudConfig,omitempty"`
	// CloudConfigFile holds the cloud provider's config (--cloud-config).
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
	// Gzip compresses the output: the whole cloud-config, or per file for Ignition/Butane (--gzip).
	Gzip bool `json:"gzip,omitempty"`

	// NodeIP is the kubelet's --node-ip; empty lets the kubelet pick (--node-ip).
	NodeIP string `json:"nodeIP,omitempty"`
	// Prebaked says the image already ran `provision node base` and holds the provision
	// binary: setup downloads nothing when the binary's sha256 matches and runs only
	// `provision node join` (--prebaked).
	Prebaked bool `json:"prebaked,omitempty"`
	// Artifacts overrides the node's downloads (mirrors, airgap) and pins their sha256s.
	// An entry with an empty URL keeps the upstream default (its sha256, if given, pins
	// that default). Config file only.
	Artifacts nodeconfig.Artifacts `json:"artifacts,omitzero"`
	// Packages names the node's apt/yum mirrors. Config file only.
	Packages nodeconfig.Packages `json:"packages,omitzero"`
	// Containerd sets the sandbox image and registry mirrors. Config file only.
	Containerd nodeconfig.Containerd `json:"containerd,omitzero"`
}

// ParseConfig reads a GenerateConfig document strictly (unknown fields are
// errors). Relative *File paths are made absolute against baseDir, the config
// file's directory. It does not validate: call Validate or Render.
// A document over yamlsafe's limits (1 MiB, 64 levels of nesting, any YAML
// anchor or alias) is refused before it is decoded.
func ParseConfig(data []byte, baseDir string) (Spec, error) {
	if err := yamlsafe.Check(data); err != nil {
		return Spec{}, fmt.Errorf("parse %s: %w", Kind, err)
	}
	var s Spec
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		// yaml's errors name the field and the line; they quote no value.
		return Spec{}, fmt.Errorf("parse %s: %w", Kind, err)
	}
	if s.APIVersion != APIVersion || s.Kind != Kind {
		return Spec{}, Errors{{Field: "apiVersion", Message: fmt.Sprintf("a %s document needs apiVersion: %s and kind: %s", Kind, APIVersion, Kind)}}
	}
	for _, p := range []*string{&s.TokenFile, &s.CACertFile, &s.CloudConfigFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(baseDir, *p)
		}
	}
	return s, nil
}

// LoadConfig reads the GenerateConfig at path (see ParseConfig); it reads no
// more than yamlsafe.MaxBytes+1 bytes of it.
func LoadConfig(path string) (Spec, error) {
	data, err := yamlsafe.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("read config: %w", err)
	}
	s, err := ParseConfig(data, filepath.Dir(path))
	if err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
