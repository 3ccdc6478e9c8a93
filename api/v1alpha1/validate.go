package v1alpha1

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/internal/kubeversions"
	"github.com/provision-dev/provision/osprofiles"
)

// MaxFileSize bounds each embedded file (CA, cloud config, token file).
const MaxFileSize = 1 << 20

var (
	optional = validation.Optional
	required = validation.Required
)

// apiServerRule: the API server is reached over TLS only, with the bootstrap token.
var apiServerRule = validation.URLRule{
	HTTPHint:        "the API server is only reached over TLS; nothing allows plain http here",
	CredentialsHint: "the node authenticates with the bootstrap token (token / --token-file), never with URL credentials",
}

func apiServerURL(raw string) string { return validation.URL(raw, apiServerRule) }

// Validate checks every field of the node config and returns all problems, by field path.
func (c NodeConfig) Validate(p validation.Path) validation.Errors {
	var es validation.Errors
	es.Check(p.Child("apiVersion"), validation.Equal(APIVersion)(c.APIVersion))
	es.Check(p.Child("kind"), validation.Equal(NodeConfigKind)(c.Kind))
	es.Check(p.Child("osProfile"), optional(c.OSProfile, osProfile))
	es.Check(p.Child("arch"), optional(c.Arch, validation.Arch))
	es.Append(c.Kubernetes.Validate(p.Child("kubernetes")))
	es.Append(c.Artifacts.Validate(p.Child("artifacts")))
	es.Append(c.Artifacts.validateRequired(p.Child("artifacts")))
	es.Append(c.Artifacts.validateKubeletURL(p.Child("artifacts"), c.Kubernetes.Version, string(p.Child("kubernetes").Child("version"))))
	es.Append(c.Containerd.Validate(p.Child("containerd")))
	es.Append(c.Containerd.validateRegistries(p.Child("containerd"), true))
	es.Append(c.validateTarballVersion(p))
	es.Append(c.Packages.Validate(p.Child("packages")))
	es.Append(c.Proxy.Validate(p.Child("proxy")))
	es.SortByField()
	return es
}

func osProfile(name string) string {
	if _, err := osprofiles.Get(name); err != nil {
		return err.Error()
	}
	return ""
}

// Validate checks the kubelet's settings: every value here reaches the
// kubelet's unit line, its config or a file path.
func (k Kubernetes) Validate(p validation.Path) validation.Errors {
	var es validation.Errors
	es.Check(p.Child("version"), validation.KubeletVersion(k.Version))
	es.Check(p.Child("apiServerURL"), optional(k.APIServerURL, apiServerURL))
	es.Check(p.Child("cloudProvider"), optional(k.CloudProvider, cloudProviderFor(k.Version)))
	es.Check(p.Child("cloudConfigPath"), optional(k.CloudConfigPath, validation.AbsPath))
	es.Check(p.Child("caCertPath"), validation.AbsPath(k.CACertPath))
	es.Check(p.Child("bootstrapKubeconfigPath"), validation.AbsPath(k.BootstrapKubeconfigPath))
	es.Check(p.Child("kubeconfigPath"), validation.AbsPath(k.KubeconfigPath))
	es.Check(p.Child("nodeIP"), optional(k.NodeIP, validation.IP))
	es.Append(validateClusterDNS(p, k.ClusterDNS, k.ClusterDomain))
	es.Append(validateRegistration(p, k.NodeLabels, k.Taints))
	es.Append(validateKubeletConfig(p, k.Version, k.KubeletConfig))
	es.Append(validateKubeletExtraArgs(p, k.Version, k.KubeletExtraArgs))
	es.Append(validateImageCredentialProviders(p, k.Version, k.ImageCredentialProviders, k.KubeletExtraArgs))
	return es
}

// validateRegistration checks the labels and taints the kubelet registers its
// Node with, as Kubernetes checks them (and the labels NodeRestriction lets a
// kubelet set on itself); a taint's key and effect appear once.
func validateRegistration(p validation.Path, labels map[string]string, taints []string) validation.Errors {
	var es validation.Errors
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		msg := validation.LabelKey(k)
		if msg == "" {
			msg = validation.LabelValue(labels[k])
		}
		es.Check(p.Child("nodeLabels").Key(k), msg)
	}
	seen := map[string]bool{}
	for i, s := range taints {
		t, msg := validation.ParseTaint(s)
		if id := t.Key + ":" + string(t.Effect); msg == "" && seen[id] {
			msg = fmt.Sprintf("repeats the taint %s with effect %s (a Node has one taint per key and effect)", validation.Quote(t.Key), t.Effect)
		} else {
			seen[id] = true
		}
		es.Check(p.Child("taints").Index(i), msg)
	}
	return es
}

// SortedTaints parses taints (valid: see Validate), sorted by key, effect and
// value so the rendered kubelet config does not depend on the order given.
func SortedTaints(taints []string) []corev1.Taint {
	out := make([]corev1.Taint, 0, len(taints))
	for _, s := range taints {
		if t, msg := validation.ParseTaint(s); msg == "" {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b corev1.Taint) int {
		return strings.Compare(a.Key+"\x00"+string(a.Effect)+"\x00"+a.Value, b.Key+"\x00"+string(b.Effect)+"\x00"+b.Value)
	})
	return out
}

// NodeLabelsFlag is the kubelet's --node-labels value: key=value pairs sorted
// by key, joined by commas ("" without labels).
func NodeLabelsFlag(labels map[string]string) string {
	pairs := make([]string, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		pairs = append(pairs, k+"="+labels[k])
	}
	return strings.Join(pairs, ",")
}

// validateClusterDNS checks the cluster DNS servers (IP addresses, each once)
// and the cluster domain (a DNS name) of the kubelet settings at p.
func validateClusterDNS(p validation.Path, servers []string, domain string) validation.Errors {
	var es validation.Errors
	seen := map[string]bool{}
	for i, ip := range servers {
		msg := validation.IP(ip)
		if msg == "" && seen[ip] {
			msg = "lists " + ip + " twice"
		}
		seen[ip] = true
		es.Check(p.Child("clusterDNS").Index(i), msg)
	}
	es.Check(p.Child("clusterDomain"), optional(domain, validation.Hostname))
	return es
}

// cloudProviderFor checks a cloud provider name against the kubelet version: a
// kubelet without in-tree providers (kubeversions: 1.29 and newer) takes only
// "external". An unknown version is the version field's error, not this one's.
func cloudProviderFor(kubeletVersion string) func(string) string {
	return func(name string) string {
		if msg := validation.CloudProvider(name); msg != "" {
			return msg
		}
		r, err := kubeversions.For(kubeletVersion)
		if err != nil || r.InTreeCloudProviders() || name == CloudProviderExternal {
			return ""
		}
		return fmt.Sprintf("%s is an in-tree cloud provider: kubelet %s (1.%d and newer) takes only %q: use external and run the provider's cloud-controller-manager (a cloud config, if given, is still installed for it and its CSI driver)",
			validation.Quote(name), kubeletVersion, kubeversions.ExternalCloudProviderOnlySince, CloudProviderExternal)
	}
}

// validateKubeletURL refuses a kubelet URL naming another version than the
// config's (versionField names the version's field in the message).
func (a Artifacts) validateKubeletURL(p validation.Path, version, versionField string) validation.Errors {
	var es validation.Errors
	if u := a[artifacts.Kubelet].URL; u != "" && validation.ValidVersion(version) {
		es.Check(p.Child(artifacts.Kubelet).Child("url"), validation.KubeletURL(u, version, versionField))
	}
	return es
}

// artifactRule: https or file; plain http only with the artifact's own opt-in.
func artifactRule(allowHTTP bool) validation.URLRule {
	return validation.URLRule{Schemes: []string{"file"}, HTTP: allowHTTP,
		HTTPHint: "plain http only with allowHTTP: true on this artifact; pin sha256 too"}
}

// Validate checks every artifact given: its name is one of internal/artifacts'
// configurable artifacts, its URL and sha256 their forms. An empty URL is left
// to the caller: required in a NodeConfig, "keep the default" in a GenerateConfig.
func (a Artifacts) Validate(p validation.Path) validation.Errors {
	var es validation.Errors
	for _, name := range slices.Sorted(maps.Keys(a)) {
		if d, ok := artifacts.Get(name); !ok || !d.Configurable() {
			es.Add(p.Child(name), "unknown artifact (one of %s)", strings.Join(artifacts.ConfigNames(), ", "))
			continue
		}
		es.Append(a[name].Validate(p.Child(name)))
	}
	return es
}

// validateRequired reports the artifacts every node needs that have no URL.
func (a Artifacts) validateRequired(p validation.Path) validation.Errors {
	var es validation.Errors
	for _, d := range artifacts.Configurable() {
		if d.Need == artifacts.Always && a[d.Name].URL == "" {
			es.Add(p.Child(d.Name).Child("url"), "is required")
		}
	}
	return es
}

// Validate checks one artifact.
func (a Artifact) Validate(p validation.Path) validation.Errors {
	var es validation.Errors
	es.Check(p.Child("url"), optional(a.URL, func(u string) string { return validation.URL(u, artifactRule(a.AllowHTTP)) }))
	es.Check(p.Child("sha256"), optional(a.SHA256, validation.SHA256))
	return es
}

// mirrorRule: registries are reached over https or, for local registries, http.
var mirrorRule = validation.URLRule{HTTP: true}

// Validate checks the sandbox image and every registry mirror: the host becomes
// a directory name under /etc/containerd/certs.d, the endpoints TOML keys.
func (c Containerd) Validate(p validation.Path) validation.Errors {
	var es validation.Errors
	es.Check(p.Child("install"), optional(string(c.Install), containerdInstall))
	es.Check(p.Child("version"), optional(c.Version, containerdVersion))
	es.Check(p.Child("sandboxImage"), optional(c.SandboxImage, validation.Image))
	hosts := make([]string, 0, len(c.RegistryMirrors))
	for h := range c.RegistryMirrors {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	mp := p.Child("registryMirrors")
	for _, h := range hosts {
		if msg := registryHost(h); msg != "" {
			es.Add(mp, "registry %s %s", validation.Quote(h), msg)
			continue
		}
		for i, m := range c.RegistryMirrors[h] {
			es.Check(mp.Key(h).Index(i), validation.URL(m, mirrorRule))
		}
	}
	return es
}

func registryHost(h string) string {
	if h == "_default" || validation.HostPort(h) == "" {
		return ""
	}
	return "must be a host[:port] such as docker.io or mirror.internal:5000 (or _default)"
}

// Validate checks the package repositories.
func (pk Packages) Validate(p validation.Path) validation.Errors {
	var es validation.Errors
	if pk.Apt != nil {
		es.Append(pk.Apt.Validate(p.Child("apt")))
	}
	if pk.Yum != nil {
		es.Append(pk.Yum.Validate(p.Child("yum")))
	}
	return es
}

// repoRule: package repositories are signed (or explicitly unchecked), so http is fine.
var repoRule = validation.URLRule{HTTP: true, Schemes: []string{"file"}}

// Validate checks the apt repository: each value becomes one deb822 field.
func (a AptRepository) Validate(p validation.Path) validation.Errors {
	var es validation.Errors
	es.Check(p.Child("url"), validation.URL(a.URL, repoRule))
	es.Check(p.Child("suite"), validation.Word(a.Suite, `"bookworm"`))
	if len(a.Components) == 0 {
		es.Add(p.Child("components"), "must list at least one component, e.g. [main]")
	}
	for i, comp := range a.Components {
		es.Check(p.Child("components").Index(i), validation.Word(comp, `"main"`))
	}
	es.Check(p.Child("signedBy"), optional(a.SignedBy, validation.AbsPath))
	if a.SignedBy != "" && a.Trusted {
		es.Add(p.Child("trusted"), "cannot be combined with signedBy")
	}
	return es
}

// gpgKeyRule: the key itself must come over a channel that is authenticated.
var gpgKeyRule = validation.URLRule{Schemes: []string{"file"}}

// Validate checks the yum repository: unsigned packages need an explicit gpgCheck: false.
func (y YumRepository) Validate(p validation.Path) validation.Errors {
	var es validation.Errors
	es.Check(p.Child("baseURL"), validation.URL(y.BaseURL, repoRule))
	es.Check(p.Child("gpgKey"), optional(y.GPGKey, func(u string) string { return validation.URL(u, gpgKeyRule) }))
	switch {
	case y.GPGKey == "" && (y.GPGCheck == nil || *y.GPGCheck):
		es.Add(p.Child("gpgCheck"), "must be set to false explicitly when no gpgKey is given (packages then install unsigned); or give gpgKey")
	case y.GPGKey != "" && y.GPGCheck != nil && !*y.GPGCheck:
		es.Add(p.Child("gpgCheck"), "false contradicts gpgKey: drop one of them")
	}
	return es
}

// Validate checks the fields of a GenerateConfig that need no file and no OS
// profile: presence, forms, and which of inline/file is given. generate adds the
// checks of file contents and of the profile's formats, and names the flags.
func (c GenerateConfig) Validate(p validation.Path) validation.Errors {
	var es validation.Errors
	es.Check(p.Child("apiVersion"), optional(c.APIVersion, fixed(APIVersion)))
	es.Check(p.Child("kind"), optional(c.Kind, fixed(GenerateConfigKind)))
	es.Check(p.Child("os"), required(c.OS, "is required; one of "+strings.Join(osprofiles.Names(), ", "), osName))
	es.Check(p.Child("format"), optional(string(c.Format), formatName))
	es.Check(p.Child("arch"), optional(c.Arch, validation.Arch))
	es.Check(p.Child("kubeletVersion"), required(c.KubeletVersion, "is required, of the form vMAJOR.MINOR.PATCH (e.g. v1.37.2; supported are "+kubeversions.SupportedList()+")", validation.KubeletVersion))
	es.Check(p.Child("apiServerURL"), required(c.APIServerURL, "is required, an https:// URL such as https://10.0.0.10:6443", apiServerURL))
	es.Append(c.validateSecrets(p))
	es.Append(c.validateCloud(p))
	es.Check(p.Child("hostname"), optional(c.Hostname, validation.Hostname))
	for i, k := range c.SSHAuthorizedKeys {
		es.Check(p.Child("sshAuthorizedKeys").Index(i), validation.SSHKey(k))
	}
	es.Check(p.Child("provisionSource"), required(c.ProvisionSource, "is required, the https:// URL of the provision binary", c.sourceURL))
	es.Check(p.Child("provisionSHA256"), required(c.ProvisionSHA256, "is required, 64 lower-case hex digits (sha256sum of the binary)", validation.SHA256))
	es.Check(p.Child("nodeIP"), optional(c.NodeIP, validation.IP))
	es.Append(validateClusterDNS(p, c.ClusterDNS, c.ClusterDomain))
	es.Append(validateClusterNetwork(p, c.PodCIDRs, c.ServiceCIDRs, c.ClusterDNS))
	es.Append(validateRegistration(p, c.NodeLabels, c.Taints))
	es.Append(validateKubeletConfig(p, c.KubeletVersion, c.KubeletConfig))
	es.Append(validateKubeletExtraArgs(p, c.KubeletVersion, c.KubeletExtraArgs))
	es.Append(validateImageCredentialProviders(p, c.KubeletVersion, c.ImageCredentialProviders, c.KubeletExtraArgs))
	es.Append(c.Artifacts.Validate(p.Child("artifacts")))
	es.Append(c.Artifacts.validateKubeletURL(p.Child("artifacts"), c.KubeletVersion, string(p.Child("kubeletVersion"))))
	es.Append(c.Containerd.Validate(p.Child("containerd")))
	es.Append(c.Containerd.validateRegistries(p.Child("containerd"), false))
	es.Append(c.Packages.Validate(p.Child("packages")))
	es.Append(validateFiles(p, c.Files))
	es.Append(validateUnits(p, c.Units))
	es.Append(c.Proxy.Validate(p.Child("proxy")))
	return es
}

// fixed checks an optional fixed value (apiVersion, kind of a GenerateConfig).
func fixed(want string) func(string) string {
	return func(v string) string {
		if v != want {
			return "must be " + want
		}
		return ""
	}
}

func osName(name string) string {
	if _, err := osprofiles.Get(name); err != nil {
		return fmt.Sprintf("unknown OS %s; one of %s", validation.Quote(name), strings.Join(osprofiles.Names(), ", "))
	}
	return ""
}

func formatName(f string) string {
	var names []string
	for _, k := range osprofiles.Formats() {
		if f == string(k) {
			return ""
		}
		names = append(names, string(k))
	}
	return fmt.Sprintf("unknown format %s; one of %s", validation.Quote(f), strings.Join(names, ", "))
}

func (c GenerateConfig) sourceURL(raw string) string {
	return validation.URL(raw, validation.URLRule{HTTP: c.AllowHTTPSource,
		HTTPHint: "plain http only with --allow-http-source / allowHTTPSource; the pinned sha256 still protects it"})
}

// validateSecrets checks the token and CA sources: inline or file, not both;
// inline values by form (the token never quoted).
func (c GenerateConfig) validateSecrets(p validation.Path) validation.Errors {
	var es validation.Errors
	switch {
	case c.Token != "" && c.TokenFile != "":
		es.Add(p.Child("token"), "give the token or the token file, not both")
	case c.Token == "" && c.TokenFile == "":
		es.Add(p.Child("token"), "is required (a bootstrap token of the form [a-z0-9]{6}.[a-z0-9]{16})")
	case c.Token != "":
		es.Check(p.Child("token"), validation.BootstrapToken(c.Token))
	}
	switch {
	case c.CACert != "" && c.CACertFile != "":
		es.Add(p.Child("caCert"), "give the CA inline or as a file, not both")
	case c.CACert == "" && c.CACertFile == "":
		es.Add(p.Child("caCert"), "is required (the cluster CA, a PEM CERTIFICATE)")
	case c.CACert != "":
		es.Check(p.Child("caCert"), validation.CACert([]byte(c.CACert)))
	}
	return es
}

// validateCloud checks the cloud provider and its config (never quoted).
func (c GenerateConfig) validateCloud(p validation.Path) validation.Errors {
	var es validation.Errors
	es.Check(p.Child("cloudProvider"), optional(c.CloudProvider, cloudProviderFor(c.KubeletVersion)))
	if c.CloudConfig != "" && c.CloudConfigFile != "" {
		es.Add(p.Child("cloudConfig"), "give the cloud config inline or as a file, not both")
	}
	if len(c.CloudConfig) > MaxFileSize {
		es.Add(p.Child("cloudConfig"), "is larger than %d bytes", MaxFileSize)
	}
	if (c.CloudConfig != "" || c.CloudConfigFile != "") && c.CloudProvider == "" {
		es.Add(p.Child("cloudProvider"), "is required when a cloud config is given")
	}
	return es
}
