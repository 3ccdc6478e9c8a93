package v1alpha1

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/osprofiles"
)

// The values of containerd.install.
const (
	// InstallPackage installs containerd and runc from the OS's packages.
	InstallPackage = osprofiles.RuntimePackage
	// InstallTarball installs them from the release tarball and binary.
	InstallTarball = osprofiles.RuntimeTarball
)

var (
	containerdVersionRE = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)
	// containerdTarballRE finds the version in a release tarball's file name
	// (containerd-2.3.7-linux-amd64.tar.gz, containerd-static-1.7.24-linux-arm64.tar.gz).
	containerdTarballRE = regexp.MustCompile(`(?:^|/)containerd-(?:static-)?v?([0-9]+\.[0-9]+\.[0-9]+)-linux-[a-z0-9]+\.tar\.gz(?:$|[?#])`)
)

// containerdVersion checks a containerd version: [v]MAJOR.MINOR.PATCH.
func containerdVersion(v string) string {
	if !containerdVersionRE.MatchString(v) {
		return "must be MAJOR.MINOR.PATCH (e.g. 2.3.7), got " + validation.Quote(v)
	}
	return ""
}

// containerdInstall checks containerd.install's value.
func containerdInstall(v string) string {
	if v != string(InstallPackage) && v != string(InstallTarball) {
		return fmt.Sprintf("must be %s or %s (or empty: the OS profile's), got %s", InstallPackage, InstallTarball, validation.Quote(v))
	}
	return ""
}

// VersionInURL returns the containerd version a release tarball URL names in
// its file name, "" when it names none.
func VersionInURL(u string) string {
	if m := containerdTarballRE.FindStringSubmatch(u); m != nil {
		return m[1]
	}
	return ""
}

// TarballVersion is the containerd version of a tarball install: Version, else
// the one tarballURL names, else the default tarball's (internal/artifacts);
// without a leading "v".
func (c Containerd) TarballVersion(tarballURL string) string {
	switch {
	case c.Version != "":
		return strings.TrimPrefix(c.Version, "v")
	case VersionInURL(tarballURL) != "":
		return VersionInURL(tarballURL)
	}
	return artifacts.MustGet(artifacts.Containerd).Version
}

// ContainerdMajor returns MAJOR of a containerd version ([v]MAJOR.MINOR.PATCH), 0 if malformed.
func ContainerdMajor(v string) int {
	m := containerdVersionRE.FindStringSubmatch(v)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// Source is where containerd comes from on profile p: containerd.install, else the profile's.
func (c Containerd) Source(p osprofiles.Profile) osprofiles.RuntimeSource {
	if c.Install != "" {
		return c.Install
	}
	return p.Runtime
}

// validateTarballVersion: a version given beside a tarball URL that names another is refused.
func (c NodeConfig) validateTarballVersion(p validation.Path) validation.Errors {
	var es validation.Errors
	u := c.Artifacts.Get(artifacts.Containerd).URL
	v := strings.TrimPrefix(c.Containerd.Version, "v")
	if in := VersionInURL(u); containerdVersion(v) == "" && in != "" && in != v {
		es.Add(p.Child("containerd").Child("version"), "is %s but artifacts.containerd.url is containerd %s: make them agree (the version picks the config format)", v, in)
	}
	return es
}

// ValidateProfile checks the settings that depend on the OS profile p (the
// node's, known once it is detected; generate's from its os): where containerd
// comes from, and the downloads a tarball install needs.
func (c NodeConfig) ValidateProfile(p validation.Path, prof osprofiles.Profile) validation.Errors {
	var es validation.Errors
	es.Append(c.Containerd.ValidateProfile(p.Child("containerd"), prof))
	if len(es) == 0 && c.Containerd.Source(prof) == osprofiles.RuntimeTarball {
		for _, d := range artifacts.Configurable() {
			if d.Need == artifacts.TarballRuntime && c.Artifacts.Get(d.Name).URL == "" {
				es.Add(p.Child("artifacts").Child(d.Name).Child("url"), "is required: containerd comes from the release tarball on this node (%s)", tarballWhy(c.Containerd, prof))
			}
		}
	}
	return es
}

func tarballWhy(c Containerd, prof osprofiles.Profile) string {
	if c.Install != "" {
		return "containerd.install: " + string(c.Install)
	}
	return "the " + prof.Name + " profile's default"
}

// ValidateProfile checks containerd.install and containerd.version against the
// OS profile: an OS that ships containerd in its image takes neither; package
// needs a profile with a containerd package; version is the tarball's.
func (c Containerd) ValidateProfile(p validation.Path, prof osprofiles.Profile) validation.Errors {
	var es validation.Errors
	switch {
	case c.Install == "":
	case prof.Runtime == osprofiles.RuntimeBuiltin:
		es.Add(p.Child("install"), "%s ships containerd in its image: leave install empty", prof.Name)
	case c.Install == InstallPackage && prof.ContainerdPackage == "":
		es.Add(p.Child("install"), "%s has no containerd package provision installs: use %s (or leave it empty)", prof.Name, InstallTarball)
	}
	if c.Version != "" && len(es) == 0 && c.Source(prof) != osprofiles.RuntimeTarball {
		es.Add(p.Child("version"), "is the version of the release tarball, but containerd comes from %s on %s: drop it, or set install: %s",
			map[bool]string{true: "the image", false: "the " + prof.ContainerdPackage + " package"}[prof.Runtime == osprofiles.RuntimeBuiltin], prof.Name, InstallTarball)
	}
	return es
}
