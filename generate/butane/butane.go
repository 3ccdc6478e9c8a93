// Package butane renders a plan.Plan as a Butane config (variant flatcar or
// fcos), built as a Go struct and marshalled with go-yaml v2 (field order kept,
// compact sequences; modes are decimal integers, which Butane accepts like
// 0644). A file's contents are inline text (a literal block) unless the gzip
// data URL Butane itself would make of them is the shorter entry, in which
// case that data URL is written. Translated by Butane (default options), it
// yields exactly the Ignition config the ignition package renders from the
// same plan.
package butane

import (
	"fmt"
	"unicode/utf8"

	yaml "sigs.k8s.io/yaml/goyaml.v2"

	"github.com/provision-dev/provision/generate/ignition"
	"github.com/provision-dev/provision/generate/plan"
)

// Options select the variant and the Ignition spec version the Butane version
// translates to.
type Options struct {
	// Variant is "flatcar" or "fcos".
	Variant string
	// IgnitionVersion is "3.3", "3.4" or "3.5"; empty means ignition.DefaultVersion.
	IgnitionVersion string
}

// Version returns the Butane config version of variant that translates to
// Ignition spec ignVersion.
func Version(variant, ignVersion string) (string, error) {
	full, ok := ignition.SpecVersion(ignVersion)
	if !ok {
		return "", fmt.Errorf("unsupported Ignition spec version %q", ignVersion)
	}
	versions := map[string]map[string]string{
		"fcos":    {"3.3.0": "1.4.0", "3.4.0": "1.5.0", "3.5.0": "1.6.0"},
		"flatcar": {"3.3.0": "1.0.0", "3.4.0": "1.1.0"},
	}
	byIgn, ok := versions[variant]
	if !ok {
		return "", fmt.Errorf("unsupported Butane variant %q (supported: fcos, flatcar)", variant)
	}
	v, ok := byIgn[full]
	if !ok {
		return "", fmt.Errorf("the Butane variant %s has no stable version for Ignition %s (use 3.3 or 3.4)", variant, full[:3])
	}
	return v, nil
}

type config struct {
	Variant string   `yaml:"variant"`
	Version string   `yaml:"version"`
	Storage *storage `yaml:"storage,omitempty"`
	Passwd  *passwd  `yaml:"passwd,omitempty"`
	Systemd *systemd `yaml:"systemd,omitempty"`
}

type storage struct {
	Files []file `yaml:"files"`
}

type file struct {
	Path      string   `yaml:"path"`
	Mode      int      `yaml:"mode"`
	Overwrite bool     `yaml:"overwrite,omitempty"`
	Contents  resource `yaml:"contents"`
}

type resource struct {
	Inline       *string       `yaml:"inline,omitempty"`
	Source       string        `yaml:"source,omitempty"`
	Compression  *string       `yaml:"compression,omitempty"`
	Verification *verification `yaml:"verification,omitempty"`
}

type verification struct {
	Hash string `yaml:"hash"`
}

type passwd struct {
	Users []user `yaml:"users"`
}

type user struct {
	Name              string   `yaml:"name"`
	SSHAuthorizedKeys []string `yaml:"ssh_authorized_keys,omitempty"`
}

type systemd struct {
	Units []unit `yaml:"units"`
}

type unit struct {
	Name     string `yaml:"name"`
	Enabled  bool   `yaml:"enabled,omitempty"`
	Contents string `yaml:"contents,omitempty"`
}

// Render returns the Butane YAML for p.
func Render(p plan.Plan, o Options) ([]byte, error) {
	v, err := Version(o.Variant, o.IgnitionVersion)
	if err != nil {
		return nil, fmt.Errorf("butane: %w", err)
	}
	c := config{Variant: o.Variant, Version: v}
	if files := plan.WithHostnameFile(p); len(files) > 0 {
		c.Storage = &storage{}
		for _, f := range files {
			c.Storage.Files = append(c.Storage.Files, file{Path: f.Path, Mode: f.Mode, Overwrite: f.Overwrite, Contents: fileContents(f)})
		}
	}
	if len(p.Users) > 0 {
		c.Passwd = &passwd{}
		for _, u := range p.Users {
			c.Passwd.Users = append(c.Passwd.Users, user{Name: u.Name, SSHAuthorizedKeys: u.SSHAuthorizedKeys})
		}
	}
	if len(p.Units) > 0 {
		c.Systemd = &systemd{}
		for _, u := range p.Units {
			c.Systemd.Units = append(c.Systemd.Units, unit{Name: u.Name, Enabled: u.Enabled, Contents: u.Contents})
		}
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("butane: marshal: %T", err) // never quote the document: it holds the token
	}
	return out, nil
}

// fileContents is a remote source pinned by its sha256, or contents(f).
func fileContents(f plan.File) resource {
	if f.Source != "" {
		return resource{Source: f.Source, Verification: &verification{Hash: "sha256-" + f.SHA256}}
	}
	return contents(f)
}

// contents inlines text, unless the data URL the ignition package encodes
// the same bytes as (gzipped when that is shorter, as Butane does) makes the
// file's entry shorter; bytes that are not UTF-8 (not a YAML string) always go
// into that data URL. Butane passes a data URL through unchanged and encodes
// inline text exactly as DataURL does, so both translate to the same Ignition.
func contents(f plan.File) resource {
	src, comp := ignition.DataURL(f.Contents)
	url := resource{Source: src, Compression: &comp}
	if !utf8.Valid(f.Contents) {
		return url
	}
	s := string(f.Contents)
	inline := resource{Inline: &s}
	if entryLen(f, url) < entryLen(f, inline) {
		return url
	}
	return inline
}

// entryLen is the size of f's entry with contents r, at its depth in the document.
func entryLen(f plan.File, r resource) int {
	out, err := yaml.Marshal(storage{Files: []file{{Path: f.Path, Mode: f.Mode, Overwrite: f.Overwrite, Contents: r}}})
	if err != nil {
		return int(^uint(0) >> 1) // cannot happen for strings; never chosen
	}
	return len(out)
}
