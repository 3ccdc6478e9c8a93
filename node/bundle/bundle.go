// Package bundle is the airgap artifact bundle: one tar file holding every
// artifact a kubelet version, OS profile and architecture need, and a manifest
// of their sha256s.
//
// Layout (members in this order, nothing else):
//
//	manifest.json          the Manifest, first so a reader knows what follows
//	artifacts/NAME...      one regular file per artifact, sorted by name
//
// Every header is fixed (mode 0644, uid/gid 0, no user names, mtime 0), so the
// same artifacts always give the same bytes. A bundle is verified as a whole:
// the manifest is checked against what the node expects, then every member is
// hashed; any problem refuses the bundle and nothing stays extracted.
package bundle

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/osprofiles"
)

const (
	// Kind is the manifest's kind.
	Kind = "Bundle"
	// ManifestName is the manifest's member name, the bundle's first.
	ManifestName = "manifest.json"
	// ArtifactDir is the directory of the artifacts inside the bundle.
	ArtifactDir = "artifacts"
	// maxManifest bounds the manifest's size (it lists a handful of artifacts).
	maxManifest = 1 << 20
)

// Manifest describes a bundle: what it is for and every artifact it holds.
type Manifest struct {
	APIVersion     string  `json:"apiVersion"`
	Kind           string  `json:"kind"`
	KubeletVersion string  `json:"kubeletVersion"`
	OSProfile      string  `json:"osProfile"`
	Arch           string  `json:"arch"`
	Artifacts      []Entry `json:"artifacts"`
}

// Entry is one artifact of the bundle.
type Entry struct {
	// Name is the artifact's name in internal/artifacts (kubelet, cniPlugins, crictl, containerd, runc, provision).
	Name string `json:"name"`
	// File is the member's path inside the bundle, e.g. artifacts/kubelet.
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Source is where the artifact was fetched from (credentials removed).
	Source string `json:"source"`
}

// Get returns the entry named name.
func (m Manifest) Get(name string) (Entry, bool) {
	for _, e := range m.Artifacts {
		if e.Name == name {
			return e, true
		}
	}
	return Entry{}, false
}

// TotalSize is the sum of the artifacts' sizes.
func (m Manifest) TotalSize() int64 {
	var n int64
	for _, e := range m.Artifacts {
		n += e.Size
	}
	return n
}

// Required lists the names of the artifacts a profile's base phase downloads, in table order.
func Required(p osprofiles.Profile) []string {
	var names []string
	for _, a := range artifacts.Required(p) {
		names = append(names, a.Name)
	}
	return names
}

// FilePath is the member path of artifact name ("" for an unknown name).
func FilePath(name string) string {
	a, ok := artifacts.Get(name)
	if !ok {
		return ""
	}
	return path.Join(ArtifactDir, a.File)
}

// Marshal renders the manifest as indented JSON with a final newline, entries sorted by name.
func (m Manifest) Marshal() ([]byte, error) {
	sort.Slice(m.Artifacts, func(i, j int) bool { return m.Artifacts[i].Name < m.Artifacts[j].Name })
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal bundle manifest: %w", err)
	}
	return append(out, '\n'), nil
}

// ParseManifest reads a manifest strictly and validates it.
func ParseManifest(data []byte) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%s: %w", ManifestName, err)
	}
	if err := m.Validate(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// Validate checks every field and returns all problems at once.
func (m Manifest) Validate() error {
	var errs validation.Errors
	add := func(field, format string, a ...any) {
		errs = append(errs, validation.FieldError{Field: ManifestName + ": " + field, Message: fmt.Sprintf(format, a...)})
	}
	if m.APIVersion != v1alpha1.APIVersion {
		add("apiVersion", "must be %q, got %q", v1alpha1.APIVersion, m.APIVersion)
	}
	if m.Kind != Kind {
		add("kind", "must be %q, got %q", Kind, m.Kind)
	}
	if !validation.ValidVersion(m.KubeletVersion) {
		add("kubeletVersion", "must be vMAJOR.MINOR.PATCH, got %q", m.KubeletVersion)
	}
	if _, err := osprofiles.Get(m.OSProfile); err != nil {
		add("osProfile", "%v", err)
	}
	if m.Arch != "amd64" && m.Arch != "arm64" {
		add("arch", "must be amd64 or arm64, got %q", m.Arch)
	}
	if len(m.Artifacts) == 0 {
		add("artifacts", "lists no artifact")
	}
	seen := map[string]bool{}
	for i, e := range m.Artifacts {
		f := fmt.Sprintf("artifacts[%d]", i)
		if _, ok := artifacts.Get(e.Name); !ok {
			add(f+".name", "unknown artifact %q (one of %s)", e.Name, strings.Join(allNames(), ", "))
		} else if e.File != FilePath(e.Name) {
			add(f+".file", "must be %q for %s, got %q", FilePath(e.Name), e.Name, e.File)
		}
		if seen[e.Name] {
			add(f+".name", "%s is listed twice", e.Name)
		}
		seen[e.Name] = true
		if !validation.ValidSHA256(e.SHA256) {
			add(f+".sha256", "must be 64 lower-case hex digits")
		}
		if e.Size < 0 {
			add(f+".size", "must not be negative")
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// Expect is what a node requires of a bundle.
type Expect struct {
	KubeletVersion string
	OSProfile      osprofiles.Profile
	Arch           string
	// Pinned maps artifact names to sha256s the node config pins (empty values are ignored).
	Pinned map[string]string
	// Provision also requires the provision binary.
	Provision bool
}

// Check compares the manifest with what the node expects and returns every difference.
func (m Manifest) Check(x Expect) error {
	var errs validation.Errors
	add := func(field, format string, a ...any) {
		errs = append(errs, validation.FieldError{Field: ManifestName + ": " + field, Message: fmt.Sprintf(format, a...)})
	}
	if m.KubeletVersion != x.KubeletVersion {
		add("kubeletVersion", "bundle is for %s, the node config asks for %s", m.KubeletVersion, x.KubeletVersion)
	}
	if m.OSProfile != x.OSProfile.Name {
		add("osProfile", "bundle is for %s, this node is %s", m.OSProfile, x.OSProfile.Name)
	}
	if m.Arch != x.Arch {
		add("arch", "bundle is for %s, this node is %s", m.Arch, x.Arch)
	}
	need := Required(x.OSProfile)
	if x.Provision {
		need = append(need, artifacts.Provision)
	}
	for _, name := range need {
		if _, ok := m.Get(name); !ok {
			add("artifacts", "has no %s, which %s needs", name, x.OSProfile.Name)
		}
	}
	names := make([]string, 0, len(x.Pinned))
	for name := range x.Pinned {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		want := x.Pinned[name]
		if e, ok := m.Get(name); ok && want != "" && e.SHA256 != want {
			add("artifacts."+name+".sha256", "bundle has %s, the node config pins %s", e.SHA256, want)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// allNames are the names of every artifact a bundle may hold.
func allNames() []string {
	var out []string
	for _, a := range artifacts.All() {
		out = append(out, a.Name)
	}
	return out
}
