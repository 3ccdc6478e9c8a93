// Package artifacts is the one table of the files a node downloads: the kubelet,
// the CNI plugins, crictl, containerd and runc where the profile installs them
// from the release tarball, and provision itself. Each artifact is declared once,
// here; the node config's defaults and validation (node/nodeconfig), generate's
// overrides, the airgap bundle (node/bundle) and the node's builders (node/)
// iterate this table. Adding an artifact is one row (and its test row).
package artifacts

import (
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/provision-dev/provision/internal/kubeversions"
	"github.com/provision-dev/provision/osprofiles"
)

// CacheDir is where the node keeps downloaded archives until a builder extracts them.
const CacheDir = "/var/cache/provision"

// Names of the artifacts the node's builders refer to (the config key, artifacts.NAME).
const (
	Kubelet    = "kubelet"
	CNIPlugins = "cniPlugins"
	Crictl     = "crictl"
	Containerd = "containerd"
	Runc       = "runc"
	Provision  = "provision"
)

// Install is how an artifact lands on the node.
type Install string

const (
	// Binary is written to the profile's BinDir under its File name, mode 0755.
	Binary Install = "binary"
	// Archive is written to CacheDir under its File name, mode 0644; a builder extracts it.
	Archive Install = "archive"
)

// Need says which nodes need an artifact.
type Need string

const (
	// Always: every profile.
	Always Need = "always"
	// TarballRuntime: profiles that install containerd from the release tarball
	// (osprofiles.RuntimeTarball); the others get containerd and runc from a package.
	TarballRuntime Need = "tarball-runtime"
	// OnRequest: only when the user gives it (provision: `bundle --provision-binary`);
	// it is not a node config setting.
	OnRequest Need = "on-request"
)

// Checksum is an artifact's checksum convention: where upstream publishes the
// sha256 of an unpinned download, relative to the download's URL. The node
// applies it to the configured URL, the default or a mirror's (ChecksumURL), so
// a mirror serves the checksum file the same way upstream does (MirrorLayout).
type Checksum string

const (
	// SHA256File: URL + ".sha256", "HASH" or "HASH  NAME" (dl.k8s.io's kubelet,
	// the CNI plugins, crictl).
	SHA256File Checksum = "url.sha256"
	// SHA256SumFile: URL + ".sha256sum", "HASH  NAME" as sha256sum writes it
	// (containerd's release assets).
	SHA256SumFile Checksum = "url.sha256sum"
	// SumsInDir: one file named by the row's SumsFile, in the URL's directory,
	// lists every release asset ("HASH  runc.amd64", "HASH  runc.arm64", ...);
	// the entry naming the URL's file is taken (runc's runc.sha256sum).
	SumsInDir Checksum = "dir.sums"
	// LocalSHA256File: a local file with FILE.sha256 beside it (hack/build.sh writes
	// one) or a pinned sha256.
	LocalSHA256File Checksum = "local.sha256"
)

// VersionSource names the column of internal/kubeversions' table an artifact's
// default version comes from, for the artifacts that follow the kubelet minor.
type VersionSource string

const (
	// ReleaseCrictl is kubeversions.Release.Crictl (cri-tools follows the kubelet minor).
	ReleaseCrictl VersionSource = "kubeversions.Crictl"
	// ReleaseCNIPlugins is kubeversions.Release.CNIPlugins.
	ReleaseCNIPlugins VersionSource = "kubeversions.CNIPlugins"
)

// Artifact is one row of the table.
type Artifact struct {
	// Name is the key in the node config (artifacts.NAME) and in a bundle's manifest.
	Name string
	// Description says what it is, for errors and docs.
	Description string
	// File is the file name inside a bundle's artifacts/ directory and on the node
	// (in BinDir for a Binary, in CacheDir for an Archive).
	File string
	// Install is how it lands on the node (and so its path and mode).
	Install Install
	// Need says which profiles need it.
	Need Need
	// Version is the pinned default version; "" means the kubelet's version,
	// unless VersionFrom is set.
	Version string
	// VersionFrom, when set, takes the default version from the kubelet minor's
	// row of internal/kubeversions; Version is then empty.
	VersionFrom VersionSource
	// URL is the default download URL: {version} and {arch} (amd64, arm64) are
	// replaced. Empty for OnRequest artifacts, which have no default source.
	URL string
	// Checksum is where an unpinned sha256 comes from.
	Checksum Checksum
	// SumsFile is the name of the checksum file of a SumsInDir row.
	SumsFile string
}

// table holds every artifact, in the order the node downloads them.
var table = []Artifact{
	{Name: Kubelet, Description: "the kubelet binary", File: "kubelet", Install: Binary, Need: Always,
		URL: "https://dl.k8s.io/release/{version}/bin/linux/{arch}/kubelet", Checksum: SHA256File},
	{Name: CNIPlugins, Description: "the CNI plugins release tarball", File: "cni-plugins.tgz", Install: Archive, Need: Always, VersionFrom: ReleaseCNIPlugins,
		URL: "https://github.com/containernetworking/plugins/releases/download/{version}/cni-plugins-linux-{arch}-{version}.tgz", Checksum: SHA256File},
	{Name: Crictl, Description: "the crictl release tarball", File: "crictl.tgz", Install: Archive, Need: Always, VersionFrom: ReleaseCrictl,
		URL: "https://github.com/kubernetes-sigs/cri-tools/releases/download/{version}/crictl-{version}-linux-{arch}.tar.gz", Checksum: SHA256File},
	// containerd 2.3 (config version 3); 1.7 is past its end of life (2026-03-10).
	{Name: Containerd, Description: "the containerd release tarball", File: "containerd.tgz", Install: Archive, Need: TarballRuntime, Version: "2.3.7",
		URL: "https://github.com/containerd/containerd/releases/download/v{version}/containerd-{version}-linux-{arch}.tar.gz", Checksum: SHA256SumFile},
	// runc 1.3.7: 1.3.3 and later fix CVE-2025-31133, CVE-2025-52565 and CVE-2025-52881.
	{Name: Runc, Description: "the runc binary", File: "runc", Install: Binary, Need: TarballRuntime, Version: "v1.3.7",
		URL: "https://github.com/opencontainers/runc/releases/download/{version}/runc.{arch}", Checksum: SumsInDir, SumsFile: "runc.sha256sum"},
	{Name: Provision, Description: "the provision binary", File: "provision", Install: Binary, Need: OnRequest, Checksum: LocalSHA256File},
}

// All returns every artifact, in table order.
func All() []Artifact { return append([]Artifact(nil), table...) }

// Get returns the artifact named name.
func Get(name string) (Artifact, bool) {
	for _, a := range table {
		if a.Name == name {
			return a, true
		}
	}
	return Artifact{}, false
}

// MustGet returns the artifact named name and panics if there is none (for the
// names declared above, used by builders).
func MustGet(name string) Artifact {
	a, ok := Get(name)
	if !ok {
		panic("artifacts: no artifact " + name)
	}
	return a
}

// Configurable returns the artifacts that are node config settings
// (artifacts.NAME: every artifact but the OnRequest ones), in table order.
func Configurable() []Artifact {
	var out []Artifact
	for _, a := range table {
		if a.Configurable() {
			out = append(out, a)
		}
	}
	return out
}

// ConfigNames returns the names of the Configurable artifacts, for error messages.
func ConfigNames() []string {
	var out []string
	for _, a := range Configurable() {
		out = append(out, a.Name)
	}
	return out
}

// Required returns the artifacts a profile's base phase downloads, in table order.
func Required(p osprofiles.Profile) []Artifact {
	var out []Artifact
	for _, a := range table {
		if a.Need != OnRequest && a.NeededBy(p) {
			out = append(out, a)
		}
	}
	return out
}

// Configurable reports whether the artifact is a node config setting.
func (a Artifact) Configurable() bool { return a.Need != OnRequest }

// NeededBy reports whether profile p needs the artifact (OnRequest: whenever given).
func (a Artifact) NeededBy(p osprofiles.Profile) bool {
	switch a.Need {
	case TarballRuntime:
		return p.Runtime == osprofiles.RuntimeTarball
	case Always, OnRequest:
		return true
	}
	return false
}

// Mode is the file mode on the node.
func (a Artifact) Mode() fs.FileMode {
	if a.Install == Binary {
		return 0o755
	}
	return 0o644
}

// NodePath is where the artifact is written on the node, given the profile's BinDir.
func (a Artifact) NodePath(binDir string) string {
	if a.Install == Binary {
		return path.Join(binDir, a.File)
	}
	return path.Join(CacheDir, a.File)
}

// DefaultVersion is the artifact's default version for a kubelet version: the
// pinned Version, the kubelet minor's column of internal/kubeversions
// (VersionFrom), or the kubelet's own version. It is "" when the version comes
// from kubeversions and the kubelet version is outside its table (validation
// refuses such a version).
func (a Artifact) DefaultVersion(kubeletVersion string) string {
	switch {
	case a.Version != "":
		return a.Version
	case a.VersionFrom != "":
		r, err := kubeversions.For(kubeletVersion)
		if err != nil {
			return ""
		}
		switch a.VersionFrom {
		case ReleaseCrictl:
			return r.Crictl
		case ReleaseCNIPlugins:
			return r.CNIPlugins
		}
		panic("artifacts: unknown version source " + string(a.VersionFrom))
	}
	return kubeletVersion
}

// DefaultURL is the upstream URL for a kubelet version and arch ("" for
// OnRequest artifacts, and when DefaultVersion is "").
func (a Artifact) DefaultURL(kubeletVersion, arch string) string {
	v := a.DefaultVersion(kubeletVersion)
	if a.URL == "" || v == "" {
		return ""
	}
	return strings.NewReplacer("{version}", v, "{arch}", arch).Replace(a.URL)
}

// URLFor is the upstream URL of the artifact at version (the row's own
// version when empty; the kubelet's version for a row without one) and arch.
// "" for OnRequest artifacts.
func (a Artifact) URLFor(version, kubeletVersion, arch string) string {
	if version == "" {
		return a.DefaultURL(kubeletVersion, arch)
	}
	if a.URL == "" {
		return ""
	}
	if strings.HasPrefix(a.Version, "v") != strings.HasPrefix(version, "v") {
		version = strings.TrimPrefix(version, "v")
		if strings.HasPrefix(a.Version, "v") {
			version = "v" + version
		}
	}
	return strings.NewReplacer("{version}", version, "{arch}", arch).Replace(a.URL)
}

// ChecksumURL is where the checksum file of the artifact downloaded from u is,
// under the row's convention ("" for LocalSHA256File rows: a local file's sum
// is beside it or pinned). A query or fragment of u is kept after the path.
func (a Artifact) ChecksumURL(u string) string {
	base, rest := u, ""
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		base, rest = u[:i], u[i:]
	}
	switch a.Checksum {
	case SHA256File:
		return base + ".sha256" + rest
	case SHA256SumFile:
		return base + ".sha256sum" + rest
	case SumsInDir:
		if i := strings.LastIndex(base, "/"); i >= 0 {
			return base[:i+1] + a.SumsFile + rest
		}
		return a.SumsFile + rest
	}
	return ""
}

// MirrorLayout says what a mirror (or an airgap server) must serve beside the
// artifact at URL for an unpinned download; pinning sha256 needs nothing beside it.
func (a Artifact) MirrorLayout() string {
	switch a.Checksum {
	case SHA256File:
		return `URL + ".sha256": "HASH" or "HASH  FILE"`
	case SHA256SumFile:
		return `URL + ".sha256sum": "HASH  FILE" (sha256sum's output)`
	case SumsInDir:
		return fmt.Sprintf(`%s in the URL's directory: sha256sum lines, one naming the URL's file (e.g. "HASH  %s")`, a.SumsFile, path.Base(a.DefaultURL("", "amd64")))
	}
	return "a pinned sha256 or FILE.sha256 beside the local file"
}
