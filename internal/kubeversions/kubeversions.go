// Package kubeversions is provision's one version policy: a table keyed by the
// kubelet's minor version that says what each minor needs and allows (support
// status, kubelet flags, KubeletConfiguration fields, the pause image, crictl and
// CNI plugins versions, the minimum containerd, cgroup v1, cloud providers).
// generate's validation and the node's renderers read it; no other package
// compares minor versions.
//
// Sources: kubeadm's constants (PauseVersion) and the kubelet's options.go and
// config/v1beta1 types of each k8s.io/kubernetes release on the Go module proxy;
// the Kubernetes release pages for support dates; ../shared/research.
package kubeversions

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Support is a minor's status in provision.
type Support string

const (
	// Supported minors are maintained upstream and tested end to end.
	Supported Support = "supported"
	// Legacy minors are end of life upstream: still rendered (the seed's legacy
	// profiles run them) but reported as unsupported, never silently.
	Legacy Support = "legacy"
)

// Release is one row of the table: what kubelet 1.<Minor> needs.
type Release struct {
	// Minor is MINOR of v1.MINOR.
	Minor int
	// Support is supported or legacy.
	Support Support
	// EOL is the upstream end-of-life date (YYYY-MM-DD).
	EOL string
	// PauseImage is the default sandbox image (kubeadm's PauseVersion).
	PauseImage string
	// Crictl is the default cri-tools release (cri-tools follows the kubelet minor).
	Crictl string
	// CNIPlugins is the default containernetworking/plugins release.
	CNIPlugins string
	// MinContainerd is the oldest containerd this kubelet is meant to run with;
	// an older one is reported (a warning and status.json), not refused.
	MinContainerd string
	// FailCgroupV1 is the kubelet's failCgroupV1 default: it refuses to start
	// on a cgroup v1 host unless the config sets failCgroupV1: false.
	FailCgroupV1 bool
}

// table lists every minor provision renders, oldest first. Minors outside it
// are refused.
var table = []Release{
	{Minor: 21, Support: Legacy, EOL: "2022-06-28", PauseImage: "registry.k8s.io/pause:3.4.1", Crictl: "v1.21.0", CNIPlugins: "v1.5.1", MinContainerd: "1.4.0"},
	{Minor: 22, Support: Legacy, EOL: "2022-10-28", PauseImage: "registry.k8s.io/pause:3.5", Crictl: "v1.22.0", CNIPlugins: "v1.5.1", MinContainerd: "1.4.0"},
	{Minor: 23, Support: Legacy, EOL: "2023-02-28", PauseImage: "registry.k8s.io/pause:3.6", Crictl: "v1.23.0", CNIPlugins: "v1.5.1", MinContainerd: "1.4.0"},
	{Minor: 24, Support: Legacy, EOL: "2023-07-28", PauseImage: "registry.k8s.io/pause:3.7", Crictl: "v1.24.0", CNIPlugins: "v1.5.1", MinContainerd: "1.6.0"},
	{Minor: 25, Support: Legacy, EOL: "2023-10-28", PauseImage: "registry.k8s.io/pause:3.8", Crictl: "v1.25.0", CNIPlugins: "v1.5.1", MinContainerd: "1.6.0"},
	{Minor: 26, Support: Legacy, EOL: "2024-02-28", PauseImage: "registry.k8s.io/pause:3.9", Crictl: "v1.26.0", CNIPlugins: "v1.5.1", MinContainerd: "1.6.0"},
	{Minor: 27, Support: Legacy, EOL: "2024-06-28", PauseImage: "registry.k8s.io/pause:3.9", Crictl: "v1.27.0", CNIPlugins: "v1.5.1", MinContainerd: "1.6.0"},
	{Minor: 28, Support: Legacy, EOL: "2024-10-28", PauseImage: "registry.k8s.io/pause:3.9", Crictl: "v1.28.0", CNIPlugins: "v1.5.1", MinContainerd: "1.6.0"},
	{Minor: 29, Support: Legacy, EOL: "2025-02-28", PauseImage: "registry.k8s.io/pause:3.9", Crictl: "v1.29.0", CNIPlugins: "v1.5.1", MinContainerd: "1.6.0"},
	{Minor: 30, Support: Legacy, EOL: "2025-06-28", PauseImage: "registry.k8s.io/pause:3.9", Crictl: "v1.30.0", CNIPlugins: "v1.5.1", MinContainerd: "1.6.0"},
	{Minor: 31, Support: Legacy, EOL: "2025-10-28", PauseImage: "registry.k8s.io/pause:3.10", Crictl: "v1.31.1", CNIPlugins: "v1.5.1", MinContainerd: "1.6.0"},
	{Minor: 32, Support: Legacy, EOL: "2026-02-28", PauseImage: "registry.k8s.io/pause:3.10", Crictl: "v1.32.0", CNIPlugins: "v1.6.2", MinContainerd: "1.7.0"},
	{Minor: 33, Support: Legacy, EOL: "2026-06-28", PauseImage: "registry.k8s.io/pause:3.10", Crictl: "v1.33.0", CNIPlugins: "v1.7.1", MinContainerd: "1.7.0"},
	{Minor: 34, Support: Legacy, EOL: "2026-10-27", PauseImage: "registry.k8s.io/pause:3.10.1", Crictl: "v1.34.0", CNIPlugins: "v1.7.1", MinContainerd: "1.7.0"},
	{Minor: 35, Support: Supported, EOL: "2027-02-28", PauseImage: "registry.k8s.io/pause:3.10.1", Crictl: "v1.35.0", CNIPlugins: "v1.9.1", MinContainerd: "1.7.0", FailCgroupV1: true},
	{Minor: 36, Support: Supported, EOL: "2027-06-28", PauseImage: "registry.k8s.io/pause:3.10.2", Crictl: "v1.36.0", CNIPlugins: "v1.9.1", MinContainerd: "2.0.0", FailCgroupV1: true},
	{Minor: 37, Support: Supported, EOL: "2027-10-28", PauseImage: "registry.k8s.io/pause:3.10.2", Crictl: "v1.37.0", CNIPlugins: "v1.10.0", MinContainerd: "2.0.0", FailCgroupV1: true},
}

// Lifetime says in which minors something exists: from Since (0: before the
// table) up to, not including, Removed (0: still there).
type Lifetime struct{ Since, Removed int }

// in reports whether minor is inside the lifetime.
func (l Lifetime) in(minor int) bool {
	return minor >= l.Since && (l.Removed == 0 || minor < l.Removed)
}

// flags are the kubelet flags whose existence changed within the table's
// minors (from each release's cmd/kubelet/app/options). A flag not listed
// exists in every minor of the table.
var flags = map[string]Lifetime{
	"--container-runtime":                 {Removed: 27},
	"--container-runtime-endpoint":        {}, // a flag in every minor; a config field from 1.27
	"--network-plugin":                    {Removed: 24},
	"--cni-bin-dir":                       {Removed: 24},
	"--cni-conf-dir":                      {Removed: 24},
	"--cloud-config":                      {Removed: 34},
	"--pod-infra-container-image":         {Removed: 35},
	"--register-schedulable":              {Removed: 35},
	"--iptables-drop-bit":                 {Removed: 31},
	"--iptables-masquerade-bit":           {Removed: 31},
	"--keep-terminated-pod-volumes":       {Removed: 31},
	"--fail-cgroupv1":                     {Since: 31},
	"--image-credential-provider-config":  {Since: 24},
	"--image-credential-provider-bin-dir": {Since: 24},
}

// configFields are the KubeletConfiguration (kubelet.config.k8s.io/v1beta1)
// fields added within the table's minors (from k8s.io/kubelet's
// config/v1beta1/types.go of each release). A field not listed exists in every
// minor of the table.
var configFields = map[string]Lifetime{
	"memorySwap":                             {Since: 22},
	"registerNode":                           {Since: 23},
	"registerWithTaints":                     {Since: 23},
	"containerRuntimeEndpoint":               {Since: 27},
	"imageServiceEndpoint":                   {Since: 27},
	"imageMaximumGCAge":                      {Since: 29},
	"failCgroupV1":                           {Since: 31},
	"crashLoopBackOff":                       {Since: 32},
	"singleProcessOOMKill":                   {Since: 32},
	"imagePullCredentialsVerificationPolicy": {Since: 33},
	"preloadedImagesVerificationAllowlist":   {Since: 33},
	"mergeDefaultEvictionSettings":           {Since: 33},
	"userNamespaces":                         {Since: 33},
	"memoryReservationPolicy":                {Since: 36},
	"tlsCurvePreferences":                    {Since: 36},
	"defaultPodSysctls":                      {Since: 37},
}

// Oldest and Newest are the table's ends.
func Oldest() Release { return table[0] }

// Newest is the newest minor provision knows.
func Newest() Release { return table[len(table)-1] }

// SupportedMinors lists the supported minors, oldest first, as "1.N".
func SupportedMinors() []string {
	var out []string
	for _, r := range table {
		if r.Support == Supported {
			out = append(out, r.String())
		}
	}
	return out
}

// PauseImages lists every default pause image of the table, once each, oldest
// first (tests import their local pause image under each name).
func PauseImages() []string {
	var out []string
	for _, r := range table {
		if len(out) == 0 || out[len(out)-1] != r.PauseImage {
			out = append(out, r.PauseImage)
		}
	}
	return out
}

// SupportedList is SupportedMinors for a message: "1.35, 1.36, 1.37".
func SupportedList() string { return strings.Join(SupportedMinors(), ", ") }

var versionRE = regexp.MustCompile(`^v1\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)

// Parse returns MINOR and PATCH of a kubelet version v1.MINOR.PATCH.
func Parse(version string) (minor, patch int, err error) {
	m := versionRE.FindStringSubmatch(version)
	if m == nil {
		return 0, 0, fmt.Errorf("version %q is not of the form v1.MINOR.PATCH", version)
	}
	minor, err = strconv.Atoi(m[1])
	if err != nil {
		return 0, 0, fmt.Errorf("version %q: minor: %w", version, err)
	}
	patch, err = strconv.Atoi(m[2])
	if err != nil {
		return 0, 0, fmt.Errorf("version %q: patch: %w", version, err)
	}
	return minor, patch, nil
}

// For returns the row of a kubelet version (vMAJOR.MINOR.PATCH); an error names
// the version and the range the table covers.
func For(version string) (Release, error) {
	minor, _, err := Parse(version)
	if err != nil {
		return Release{}, err
	}
	return ForMinor(minor, version)
}

// ForMinor returns the row of minor 1.minor; version is only used in the error.
func ForMinor(minor int, version string) (Release, error) {
	for _, r := range table {
		if r.Minor == minor {
			return r, nil
		}
	}
	if minor > Newest().Minor {
		return Release{}, fmt.Errorf("kubelet %s is newer than provision knows (newest %s; supported are %s): update provision", version, Newest(), SupportedList())
	}
	return Release{}, fmt.Errorf("kubelet %s is older than provision renders (oldest %s; supported are %s)", version, Oldest(), SupportedList())
}

// MustFor is For for versions already validated (renderers); it panics on a
// version outside the table, which validation refuses first.
func MustFor(version string) Release {
	r, err := For(version)
	if err != nil {
		panic("kubeversions: " + err.Error())
	}
	return r
}

// String is "1.MINOR".
func (r Release) String() string { return "1." + strconv.Itoa(r.Minor) }

// IsSupported reports whether the minor is supported (not legacy).
func (r Release) IsSupported() bool { return r.Support == Supported }

// Warning is the message reported for a legacy minor ("" for a supported one).
func (r Release) Warning() string {
	if r.IsSupported() {
		return ""
	}
	return fmt.Sprintf("kubelet %s is not supported (end of life upstream %s; supported are %s): it is rendered, but not tested", r, r.EOL, SupportedList())
}

// HasFlag reports whether the kubelet of this minor has the command-line flag
// (written with its leading "--").
func (r Release) HasFlag(flag string) bool {
	l, ok := flags[flag]
	return !ok || l.in(r.Minor)
}

// HasConfigField reports whether the KubeletConfiguration of this minor has the
// top-level field (its JSON name).
func (r Release) HasConfigField(field string) bool {
	l, ok := configFields[field]
	return !ok || l.in(r.Minor)
}

// FailsOnCgroupV1 reports whether this kubelet refuses to start on a cgroup v1
// host, given the config's failCgroupV1 (nil: not set): the config's value
// where the kubelet has the field, else the kubelet's default (FailCgroupV1).
func (r Release) FailsOnCgroupV1(failCgroupV1 *bool) bool {
	if failCgroupV1 != nil && r.HasConfigField("failCgroupV1") {
		return *failCgroupV1
	}
	return r.FailCgroupV1
}

// NewestOnCgroupV1 is the newest minor whose kubelet starts on a cgroup v1
// host by default (failCgroupV1 false): what the legacy OS profiles run
// without opting out.
func NewestOnCgroupV1() Release {
	var last Release
	for _, r := range table {
		if !r.FailCgroupV1 {
			last = r
		}
	}
	return last
}

// InTreeCloudProviders reports whether the kubelet takes an in-tree cloud
// provider name. From 1.29 only "external" (or none) is accepted: the in-tree
// providers are gone (1.31) or disabled (1.29, 1.30), and --cloud-provider
// stays only as the external switch (k/k#121367).
func (r Release) InTreeCloudProviders() bool { return r.Minor < ExternalCloudProviderOnlySince }

// ExternalCloudProviderOnlySince is the first minor whose kubelet takes only
// "external" as its cloud provider (for messages; ask InTreeCloudProviders).
const ExternalCloudProviderOnlySince = 29

// CredentialProvidersSince is the first minor whose kubelet reads a
// kubelet.config.k8s.io/v1 CredentialProviderConfig (image credential
// providers GA, KubeletCredentialProviders on without a feature gate). The
// flags exist since 1.20 (alpha, behind the gate; config v1alpha1, v1beta1 from
// 1.24): provision renders only v1, so it refuses older kubelets.
const CredentialProvidersSince = 26

// CredentialProviders reports whether the kubelet reads a v1
// CredentialProviderConfig (--image-credential-provider-config, 1.26+).
func (r Release) CredentialProviders() bool {
	return r.Minor >= CredentialProvidersSince && r.HasFlag("--image-credential-provider-config")
}

// Dockershim reports whether the kubelet still runs Docker through dockershim (< 1.24).
func (r Release) Dockershim() bool { return r.Minor < 24 }

// RuntimeEndpointInConfig reports whether the container runtime endpoint is a
// KubeletConfiguration field (1.27+) rather than a flag.
func (r Release) RuntimeEndpointInConfig() bool { return r.HasConfigField("containerRuntimeEndpoint") }

// MaxSkew is how many minors the kubelet may be older than the API server.
const MaxSkew = 3

// CheckSkew checks a kubelet version against the API server's: the kubelet may
// be up to MaxSkew minors older, never newer. The error names both versions.
func CheckSkew(kubelet, apiServer string) error {
	km, kp, err := Parse(kubelet)
	if err != nil {
		return fmt.Errorf("kubelet: %w", err)
	}
	am, ap, err := parseServer(apiServer)
	if err != nil {
		return fmt.Errorf("API server: %w", err)
	}
	switch {
	case km > am || (km == am && kp > ap):
		return fmt.Errorf("kubelet %s is newer than the API server %s: upgrade the control plane first (a kubelet may never be newer than its API server)", kubelet, apiServer)
	case am-km > MaxSkew:
		return fmt.Errorf("kubelet %s is %d minors older than the API server %s: at most %d are allowed", kubelet, am-km, apiServer, MaxSkew)
	}
	return nil
}

// serverVersionRE matches an API server's gitVersion, e.g. v1.37.2 or
// v1.37.2+k3s1 or v1.37.2-eks-abc.
var serverVersionRE = regexp.MustCompile(`^v1\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)([-+].*)?$`)

func parseServer(v string) (minor, patch int, err error) {
	m := serverVersionRE.FindStringSubmatch(v)
	if m == nil {
		return 0, 0, fmt.Errorf("version %q is not of the form v1.MINOR.PATCH", v)
	}
	minor, _ = strconv.Atoi(m[1])
	patch, _ = strconv.Atoi(m[2])
	return minor, patch, nil
}

// Markdown renders the table and the lifetimes as the Markdown of
// docs/kubernetes-versions.md (kept equal by a golden test).
func Markdown() string {
	var b strings.Builder
	b.WriteString("# Kubernetes versions\n\n")
	b.WriteString("Generated from `internal/kubeversions` (`go test ./internal/kubeversions -update`): the one table\n")
	b.WriteString("generate's validation and the node's renderers read. Supported minors are tested end to end;\n")
	b.WriteString("legacy minors are rendered for the legacy profiles and reported as unsupported (a warning on\n")
	b.WriteString("stderr and `kubeletSupport` in status.json). Other minors are refused.\n\n")
	b.WriteString("| minor | support | EOL | pause image | crictl | CNI plugins | min containerd | failCgroupV1 default | in-tree cloud providers | `--cloud-config` |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for i := len(table) - 1; i >= 0; i-- {
		r := table[i]
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %v | %s | %s |\n", r, r.Support, r.EOL, r.PauseImage, r.Crictl, r.CNIPlugins,
			r.MinContainerd, r.FailCgroupV1, yesNo(r.InTreeCloudProviders()), yesNo(r.HasFlag("--cloud-config")))
	}
	b.WriteString("\nKubelet flags whose existence changed within the table (others exist in every minor):\n\n")
	writeLifetimes(&b, flags)
	b.WriteString("\nKubeletConfiguration fields added within the table (others exist in every minor):\n\n")
	writeLifetimes(&b, configFields)
	fmt.Fprintf(&b, "\nImage credential providers (`--image-credential-provider-config`, a kubelet.config.k8s.io/v1 CredentialProviderConfig): from 1.%d.\n", CredentialProvidersSince)
	fmt.Fprintf(&b, "\nVersion skew: a kubelet may be up to %d minors older than the API server, never newer.\n", MaxSkew)
	return b.String()
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

func writeLifetimes(b *strings.Builder, m map[string]Lifetime) {
	b.WriteString("| name | since | removed in |\n|---|---|---|\n")
	for _, name := range slices.Sorted(maps.Keys(m)) {
		l := m[name]
		since, removed := "", ""
		if l.Since > 0 {
			since = "1." + strconv.Itoa(l.Since)
		}
		if l.Removed > 0 {
			removed = "1." + strconv.Itoa(l.Removed)
		}
		fmt.Fprintf(b, "| `%s` | %s | %s |\n", name, since, removed)
	}
}
