// Package generate turns a GenerateConfig (api/v1alpha1: the inputs of
// `provision generate`) into the userdata a machine boots with: one neutral
// plan.Plan, rendered as cloud-init, Ignition or Butane. It never prints or
// exits, and no error it returns quotes a secret (the bootstrap token, the
// cloud-config contents, registry credentials).
package generate

import (
	"fmt"
	"path/filepath"

	"sigs.k8s.io/yaml"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/internal/yamlsafe"
)

// ParseConfig reads a GenerateConfig document strictly (unknown fields are
// errors). Relative *File paths are made absolute against baseDir, the config
// file's directory. It does not validate: call Validate or Render.
// A document over yamlsafe's limits (1 MiB, 64 levels of nesting, any YAML
// anchor or alias) is refused before it is decoded.
func ParseConfig(data []byte, baseDir string) (v1alpha1.GenerateConfig, error) {
	if err := yamlsafe.Check(data); err != nil {
		return v1alpha1.GenerateConfig{}, fmt.Errorf("parse %s: %w", v1alpha1.GenerateConfigKind, err)
	}
	var c v1alpha1.GenerateConfig
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		// yaml's errors name the field and the line; they quote no value.
		return v1alpha1.GenerateConfig{}, fmt.Errorf("parse %s: %w", v1alpha1.GenerateConfigKind, err)
	}
	if c.APIVersion != v1alpha1.APIVersion || c.Kind != v1alpha1.GenerateConfigKind {
		return v1alpha1.GenerateConfig{}, validation.Errors{{Field: "apiVersion", Message: fmt.Sprintf("a %s document needs apiVersion: %s and kind: %s",
			v1alpha1.GenerateConfigKind, v1alpha1.APIVersion, v1alpha1.GenerateConfigKind)}}
	}
	for _, p := range []*string{&c.TokenFile, &c.CACertFile, &c.CloudConfigFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(baseDir, *p)
		}
	}
	for h, r := range c.Containerd.Registries { // a fresh map: decoded just above
		if r.CACertFile != "" && !filepath.IsAbs(r.CACertFile) {
			r.CACertFile = filepath.Join(baseDir, r.CACertFile)
			c.Containerd.Registries[h] = r
		}
	}
	return c, nil
}

// LoadConfig reads the GenerateConfig at path (see ParseConfig); it reads no
// more than yamlsafe.MaxBytes+1 bytes of it.
func LoadConfig(path string) (v1alpha1.GenerateConfig, error) {
	data, err := yamlsafe.ReadFile(path)
	if err != nil {
		return v1alpha1.GenerateConfig{}, fmt.Errorf("read config: %w", err)
	}
	c, err := ParseConfig(data, filepath.Dir(path))
	if err != nil {
		return v1alpha1.GenerateConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
