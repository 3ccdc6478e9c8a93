// Package osprofiles describes the operating systems provision supports, as data.
//
// Both halves of provision use these profiles: generate picks the userdata format,
// the default user and the binary directory; node picks the package manager, the
// container runtime source and the packages. No other package branches on an OS
// name: it asks a Profile for a capability instead.
package osprofiles

import (
	"fmt"
	"sort"
	"strings"
)

// PackageManager is the tool a profile installs packages with.
type PackageManager string

const (
	// Apt is Debian's and Ubuntu's apt-get.
	Apt PackageManager = "apt"
	// Yum is the yum of CentOS 7.
	Yum PackageManager = "yum"
	// Dnf is the dnf of Rocky/RHEL 8+.
	Dnf PackageManager = "dnf"
	// NoPackages means the OS has no package manager provision may use (immutable /usr).
	NoPackages PackageManager = "none"
)

// Format is a userdata format.
type Format string

const (
	// CloudInit is a #cloud-config document.
	CloudInit Format = "cloud-init"
	// Ignition is an Ignition v3 JSON config.
	Ignition Format = "ignition"
	// Butane is a Butane YAML config (translated to Ignition by the user's tooling).
	Butane Format = "butane"
)

// Formats lists every userdata format, in a stable order.
func Formats() []Format { return []Format{CloudInit, Ignition, Butane} }

// RuntimeSource says where containerd comes from on a profile.
type RuntimeSource string

const (
	// RuntimePackage installs containerd from the OS's packages.
	RuntimePackage RuntimeSource = "package"
	// RuntimeTarball installs containerd from the upstream release tarball.
	RuntimeTarball RuntimeSource = "tarball"
	// RuntimeBuiltin uses the containerd the OS ships (Flatcar, Fedora CoreOS).
	RuntimeBuiltin RuntimeSource = "builtin"
)

// Cgroups is the cgroup hierarchy an OS boots with by default.
type Cgroups string

const (
	// CgroupV1 hosts boot the legacy (v1, or hybrid) hierarchy. A kubelet that
	// refuses cgroup v1 (failCgroupV1, true by default from 1.35) does not start
	// there unless its config sets failCgroupV1: false.
	CgroupV1 Cgroups = "v1"
	// CgroupV2 hosts boot the unified hierarchy (v1 still possible with
	// systemd.unified_cgroup_hierarchy=0 on the kernel command line).
	CgroupV2 Cgroups = "v2"
	// CgroupV2Only hosts cannot boot cgroup v1 at all (systemd 258 removed it).
	CgroupV2Only Cgroups = "v2-only"
)

// Profile is one supported operating system.
type Profile struct {
	// Name is the profile's identifier, e.g. "ubuntu-22.04".
	Name string
	// ID and VersionID match /etc/os-release's ID and VERSION_ID. An empty
	// VersionID matches any version (rolling distributions).
	ID        string
	VersionID string
	// VariantID, when set, must match os-release's VARIANT_ID (Fedora CoreOS is ID=fedora, VARIANT_ID=coreos).
	VariantID string
	// Seed marks the OSes provision was first built for.
	Seed bool
	// Legacy marks an OS past its end of life, kept for the kubelets it can
	// still run: its hosts boot cgroup v1 (Cgroups), so a kubelet that refuses
	// cgroup v1 (kubeversions: failCgroupV1) is refused for it unless the config
	// sets failCgroupV1: false.
	Legacy bool
	// Cgroups is the cgroup hierarchy the OS boots with by default. The node
	// checks the running host's own (base and join); generate goes by this.
	Cgroups Cgroups
	// PackageManager installs packages; NoPackages on immutable systems.
	PackageManager PackageManager
	// BinDir is where downloaded binaries (kubelet, crictl, provision) go:
	// /opt/bin where /usr is read-only.
	BinDir string
	// ImmutableUsr is true where /usr is read-only.
	ImmutableUsr bool
	// DefaultUser is the cloud image's login user that SSH keys go to.
	DefaultUser string
	// DefaultFormat is the userdata format the OS's first-boot agent reads.
	DefaultFormat Format
	// ButaneVariant is the Butane variant for this OS ("flatcar", "fcos"); empty
	// where Butane is not the OS's native tool (the Butane renderer then uses fcos).
	ButaneVariant string
	// Runtime says where containerd comes from.
	Runtime RuntimeSource
	// ContainerdPackage is the package name of containerd for RuntimePackage.
	ContainerdPackage string
	// Packages are the base packages kubelet needs (conntrack, socat, ...).
	Packages []string
	// DockerForOldKubelet is true where kubelet < 1.24 used Docker (dockershim) as the runtime.
	DockerForOldKubelet bool
	// DockerPackage is the package name of Docker where DockerForOldKubelet is set.
	DockerPackage string
}

// NeedsDocker reports whether the kubelet needs Docker on this profile, given
// whether that kubelet still runs Docker through dockershim (removed in 1.24:
// ask internal/kubeversions' Release.Dockershim).
func (p Profile) NeedsDocker(dockershim bool) bool {
	return p.DockerForOldKubelet && dockershim
}

// BootsCgroupV1 reports whether the OS's hosts boot cgroup v1 by default.
func (p Profile) BootsCgroupV1() bool { return p.Cgroups == CgroupV1 }

// IsDebianFamily reports whether the profile uses dpkg/apt.
func (p Profile) IsDebianFamily() bool { return p.PackageManager == Apt }

// IsRHELFamily reports whether the profile uses rpm (yum or dnf).
func (p Profile) IsRHELFamily() bool { return p.PackageManager == Yum || p.PackageManager == Dnf }

// SupportsFormat reports whether userdata in format f boots this OS.
// Ignition-based OSes read only Ignition (and Butane, translated): Flatcar's
// coreos-cloudinit ignores runcmd, so cloud-init userdata would never start setup.
// The cloud-init OSes also accept Ignition/Butane, because Ignition's files stage runs
// against any root (image builds, tests).
func (p Profile) SupportsFormat(f Format) bool {
	switch f {
	case CloudInit:
		return p.DefaultFormat == CloudInit
	case Ignition, Butane:
		return true
	}
	return false
}

var debianPackages = []string{"ca-certificates", "conntrack", "socat", "ebtables", "ethtool", "iptables", "kmod", "procps"}
var rhelPackages = []string{"ca-certificates", "conntrack-tools", "socat", "ebtables", "ethtool", "iptables", "kmod", "procps-ng"}

// el10Packages are rhelPackages by package names: the node checks what is
// installed with `rpm -q NAME`, which does not resolve a provide, and on EL
// "iptables" is a provide of iptables-nft. ebtables is left out: the kubelet
// does not use it, and on EL it is a provide too.
var el10Packages = []string{"ca-certificates", "conntrack-tools", "socat", "ethtool", "iptables-nft", "kmod", "procps-ng"}

var profiles = []Profile{
	{Name: "ubuntu-18.04", ID: "ubuntu", VersionID: "18.04", Seed: true, Legacy: true, Cgroups: CgroupV1, PackageManager: Apt, BinDir: "/usr/local/bin",
		DefaultUser: "ubuntu", DefaultFormat: CloudInit, Runtime: RuntimePackage, ContainerdPackage: "containerd",
		Packages: debianPackages, DockerForOldKubelet: true, DockerPackage: "docker.io"},
	{Name: "ubuntu-22.04", ID: "ubuntu", VersionID: "22.04", Cgroups: CgroupV2, PackageManager: Apt, BinDir: "/usr/local/bin",
		DefaultUser: "ubuntu", DefaultFormat: CloudInit, Runtime: RuntimePackage, ContainerdPackage: "containerd",
		Packages: debianPackages},
	{Name: "ubuntu-24.04", ID: "ubuntu", VersionID: "24.04", Cgroups: CgroupV2, PackageManager: Apt, BinDir: "/usr/local/bin",
		DefaultUser: "ubuntu", DefaultFormat: CloudInit, Runtime: RuntimePackage, ContainerdPackage: "containerd",
		Packages: debianPackages},
	{Name: "ubuntu-26.04", ID: "ubuntu", VersionID: "26.04", Cgroups: CgroupV2Only, PackageManager: Apt, BinDir: "/usr/local/bin",
		DefaultUser: "ubuntu", DefaultFormat: CloudInit, Runtime: RuntimePackage, ContainerdPackage: "containerd",
		Packages: debianPackages},
	{Name: "debian-12", ID: "debian", VersionID: "12", Cgroups: CgroupV2, PackageManager: Apt, BinDir: "/usr/local/bin",
		DefaultUser: "debian", DefaultFormat: CloudInit, Runtime: RuntimePackage, ContainerdPackage: "containerd",
		Packages: debianPackages},
	// Debian 13's containerd package is 1.7.24 (trixie had no containerd 2.x at release).
	{Name: "debian-13", ID: "debian", VersionID: "13", Cgroups: CgroupV2, PackageManager: Apt, BinDir: "/usr/local/bin",
		DefaultUser: "debian", DefaultFormat: CloudInit, Runtime: RuntimePackage, ContainerdPackage: "containerd",
		Packages: debianPackages},
	{Name: "centos-7", ID: "centos", VersionID: "7", Seed: true, Legacy: true, Cgroups: CgroupV1, PackageManager: Yum, BinDir: "/usr/local/bin",
		DefaultUser: "centos", DefaultFormat: CloudInit, Runtime: RuntimeTarball,
		Packages: rhelPackages, DockerForOldKubelet: true, DockerPackage: "docker"},
	{Name: "rocky-9", ID: "rocky", VersionID: "9", Cgroups: CgroupV2, PackageManager: Dnf, BinDir: "/usr/local/bin",
		DefaultUser: "rocky", DefaultFormat: CloudInit, Runtime: RuntimeTarball,
		Packages: rhelPackages},
	{Name: "rocky-10", ID: "rocky", VersionID: "10", Cgroups: CgroupV2, PackageManager: Dnf, BinDir: "/usr/local/bin",
		DefaultUser: "rocky", DefaultFormat: CloudInit, Runtime: RuntimeTarball,
		Packages: el10Packages},
	{Name: "flatcar", ID: "flatcar", Seed: true, Cgroups: CgroupV2, PackageManager: NoPackages, BinDir: "/opt/bin", ImmutableUsr: true,
		DefaultUser: "core", DefaultFormat: Ignition, ButaneVariant: "flatcar", Runtime: RuntimeBuiltin},
	{Name: "fedora-coreos", ID: "fedora", VariantID: "coreos", Cgroups: CgroupV2, PackageManager: NoPackages, BinDir: "/usr/local/bin", ImmutableUsr: true,
		DefaultUser: "core", DefaultFormat: Ignition, ButaneVariant: "fcos", Runtime: RuntimeBuiltin},
}

// All returns every profile, sorted by name. The slice is a copy.
func All() []Profile {
	out := make([]Profile, len(profiles))
	copy(out, profiles)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Names returns the profile names, sorted.
func Names() []string {
	var n []string
	for _, p := range All() {
		n = append(n, p.Name)
	}
	return n
}

// Get returns the profile called name, or an error listing the supported names.
func Get(name string) (Profile, error) {
	for _, p := range profiles {
		if p.Name == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("unknown OS profile %q: supported are %s", name, strings.Join(Names(), ", "))
}
