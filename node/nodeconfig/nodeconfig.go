// Package nodeconfig reads the node config document
// (/etc/provision/node.yaml, type v1alpha1.NodeConfig) and builds the default
// one for a kubelet version: the upstream artifact URLs live here, next to
// their pinned versions. The types, their defaults and their validation live
// in api/v1alpha1.
package nodeconfig

import (
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/internal/yamlsafe"
)

// New returns a NodeConfig with the defaults for a kubelet version and
// architecture ("" means amd64).
func New(version, arch string) v1alpha1.NodeConfig {
	if arch == "" {
		arch = v1alpha1.DefaultArch
	}
	c := v1alpha1.NodeConfig{Arch: arch, Kubernetes: v1alpha1.Kubernetes{Version: version}, Artifacts: DefaultArtifacts(version, arch)}
	c.SetDefaults()
	return c
}

// DefaultArtifacts returns the upstream download URLs of every configurable
// artifact for a kubelet version and architecture. Checksums are left empty:
// they come from the upstream .sha256 files unless pinned.
func DefaultArtifacts(version, arch string) v1alpha1.Artifacts {
	out := v1alpha1.Artifacts{}
	for _, a := range artifacts.Configurable() {
		out[a.Name] = v1alpha1.Artifact{URL: a.DefaultURL(version, arch)}
	}
	return out
}

// Parse reads a NodeConfig document strictly (unknown fields are errors),
// applies its defaults and validates it; an invalid one is validation.Errors.
// A document over yamlsafe's limits (1 MiB, 64 levels of nesting, any YAML
// anchor or alias) is refused before it is decoded, so parsing is linear-time.
func Parse(data []byte) (v1alpha1.NodeConfig, error) {
	if err := yamlsafe.Check(data); err != nil {
		return v1alpha1.NodeConfig{}, fmt.Errorf("parse node config: %w", err)
	}
	var c v1alpha1.NodeConfig
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return v1alpha1.NodeConfig{}, fmt.Errorf("parse node config: %w", err)
	}
	// Defaulting applies to a document's settings, never to what it says it is.
	var id validation.Errors
	id.Check("apiVersion", validation.Equal(v1alpha1.APIVersion)(c.APIVersion))
	id.Check("kind", validation.Equal(v1alpha1.NodeConfigKind)(c.Kind))
	if len(id) > 0 {
		return v1alpha1.NodeConfig{}, id
	}
	c.SetDefaults()
	if err := c.Validate("").Err(); err != nil {
		return v1alpha1.NodeConfig{}, err
	}
	return c, nil
}

// Load reads and parses the node config at path; it reads no more than
// yamlsafe.MaxBytes+1 bytes of it.
func Load(path string) (v1alpha1.NodeConfig, error) {
	data, err := yamlsafe.ReadFile(path)
	if err != nil {
		return v1alpha1.NodeConfig{}, fmt.Errorf("read node config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return v1alpha1.NodeConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
