package v1alpha1

import (
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/internal/kubeversions"
)

// The plugin API versions (CredentialProviderRequest/Response) a kubelet takes
// in a provider's apiVersion; DefaultCredentialProviderAPIVersion is the GA one.
const DefaultCredentialProviderAPIVersion = "credentialprovider.kubelet.k8s.io/v1"

// credentialProviderAPIVersions are the apiVersions the kubelet's plugin
// manager still accepts (k8s.io/kubernetes pkg/credentialprovider/plugin).
var credentialProviderAPIVersions = []string{
	DefaultCredentialProviderAPIVersion,
	"credentialprovider.kubelet.k8s.io/v1beta1",
	"credentialprovider.kubelet.k8s.io/v1alpha1",
}

// ImageCredentialProvider is one kubelet image credential provider plugin
// (GenerateConfig.imageCredentialProviders, NodeConfig
// kubernetes.imageCredentialProviders): an executable the node downloads like
// its other artifacts (pinned by sha256) into the plugins' directory, and one
// entry of the kubelet's CredentialProviderConfig
// (kubelet.config.k8s.io/v1), which names it.
//
// The config file is world-readable (0644), as the kubelet's own: args and env
// values are not secrets. A plugin that needs a secret reads it from a file of
// its own (written 0600, e.g. with files) or from the cloud's metadata.
type ImageCredentialProvider struct {
	// Name is the plugin's file name in the plugins' directory and the
	// provider's name: letters, digits, '.', '_' and '-', e.g. ecr-credential-provider.
	Name string `json:"name"`
	// MatchImages are the images the plugin is asked about: a registry host
	// with globs per dot-separated part (*.dkr.ecr.*.amazonaws.com), an
	// optional port and an optional path prefix (registry.io:8080/team).
	MatchImages []string `json:"matchImages"`
	// DefaultCacheDuration is how long the kubelet caches credentials the
	// plugin returns without a cacheDuration of its own, a Go duration such
	// as 12h or 0s (no caching). Required, as in the kubelet.
	DefaultCacheDuration string `json:"defaultCacheDuration"`
	// APIVersion is the CredentialProviderRequest version the plugin speaks
	// (default credentialprovider.kubelet.k8s.io/v1).
	APIVersion string `json:"apiVersion,omitempty"`
	// Args are the plugin's command-line arguments.
	Args []string `json:"args,omitempty"`
	// Env are extra environment variables of the plugin (not secrets: they
	// are written to a 0644 file).
	Env []CredentialProviderEnv `json:"env,omitempty"`
	// URL is where the plugin binary comes from: https:// or file://; plain
	// http:// only with AllowHTTP.
	URL string `json:"url"`
	// SHA256 pins the binary: 64 lower-case hex digits, required.
	SHA256 string `json:"sha256"`
	// AllowHTTP permits a plain http:// URL (the sha256 still protects it).
	AllowHTTP bool `json:"allowHTTP,omitempty"`
}

// CredentialProviderEnv is one environment variable of a plugin.
type CredentialProviderEnv struct {
	// Name is the variable's name, [A-Za-z_][A-Za-z0-9_]*.
	Name string `json:"name"`
	// Value is its value (not a secret: the config is 0644).
	Value string `json:"value"`
}

// CacheDuration parses DefaultCacheDuration (valid: see Validate).
func (p ImageCredentialProvider) CacheDuration() time.Duration {
	d, _ := time.ParseDuration(p.DefaultCacheDuration)
	return d
}

// ProviderAPIVersion is APIVersion or its default.
func (p ImageCredentialProvider) ProviderAPIVersion() string {
	if p.APIVersion == "" {
		return DefaultCredentialProviderAPIVersion
	}
	return p.APIVersion
}

// Artifact is the plugin's download.
func (p ImageCredentialProvider) Artifact() Artifact {
	return Artifact{URL: p.URL, SHA256: p.SHA256, AllowHTTP: p.AllowHTTP}
}

var (
	providerNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	envNameRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// hostGlobPartRE: one dot-separated part of a matchImages host: DNS
	// characters and '*' (filepath.Match's '?' would start the URL's query and
	// '[' an IPv6 literal: the kubelet never matches them in a host).
	hostGlobPartRE = regexp.MustCompile(`^[A-Za-z0-9*_-]+$`)
)

// MaxCredentialProviders bounds the list (each is a download and a process).
const MaxCredentialProviders = 16

// validateImageCredentialProviders checks the providers at p (the kubelet
// settings' path): each as the kubelet checks its CredentialProviderConfig
// (k8s.io/kubernetes pkg/credentialprovider/plugin: a name without '/' and
// spaces, unique; a known apiVersion; matchImages that parse; a
// defaultCacheDuration >= 0), plus a plain file name, a pinned download, and
// a kubelet that reads a v1 config (kubeversions.CredentialProvidersSince).
// With providers, kubeletExtraArgs may not set the two flags provision sets.
func validateImageCredentialProviders(p validation.Path, version string, ps []ImageCredentialProvider, extraArgs map[string]string) validation.Errors {
	var es validation.Errors
	if len(ps) == 0 {
		return nil
	}
	lp := p.Child("imageCredentialProviders")
	if r, err := kubeversions.For(version); err == nil && !r.CredentialProviders() {
		es.Add(lp, "kubelet %s (%s) reads no kubelet.config.k8s.io/v1 CredentialProviderConfig: image credential providers need kubelet 1.%d or newer",
			version, r, kubeversions.CredentialProvidersSince)
	}
	if len(ps) > MaxCredentialProviders {
		es.Add(lp, "lists %d providers, at most %d are allowed", len(ps), MaxCredentialProviders)
	}
	for _, flag := range []string{"image-credential-provider-config", "image-credential-provider-bin-dir"} {
		if _, ok := extraArgs[flag]; ok {
			es.Add(p.Child("kubeletExtraArgs").Key(flag), "--%s is set by provision when imageCredentialProviders are given: drop one of them", flag)
		}
	}
	seen := map[string]int{}
	for i, c := range ps {
		ip := lp.Index(i)
		if j, dup := seen[c.Name]; dup && c.Name != "" {
			es.Add(ip.Child("name"), "repeats the name of imageCredentialProviders[%d] (names are unique: each is a file in the plugins' directory)", j)
		} else {
			seen[c.Name] = i
			es.Check(ip.Child("name"), required(c.Name, "is required, the plugin's file name such as ecr-credential-provider", providerName))
		}
		es.Append(c.validate(ip))
	}
	return es
}

// validate checks one provider's fields but its name.
func (c ImageCredentialProvider) validate(p validation.Path) validation.Errors {
	var es validation.Errors
	if len(c.MatchImages) == 0 {
		es.Add(p.Child("matchImages"), "is required: at least one image pattern such as *.dkr.ecr.*.amazonaws.com or registry.example.com:5000/team")
	}
	for i, m := range c.MatchImages {
		es.Check(p.Child("matchImages").Index(i), MatchImage(m))
	}
	es.Check(p.Child("defaultCacheDuration"), required(c.DefaultCacheDuration, "is required, a duration such as 12h, 30m or 0s (no caching)", cacheDuration))
	if c.APIVersion != "" && !slices.Contains(credentialProviderAPIVersions, c.APIVersion) {
		es.Add(p.Child("apiVersion"), "must be one of %s (the plugin API versions the kubelet takes), got %s",
			strings.Join(credentialProviderAPIVersions, ", "), validation.Quote(c.APIVersion))
	}
	for i, a := range c.Args {
		es.Check(p.Child("args").Index(i), plainValue(a, "an argument"))
	}
	envSeen := map[string]bool{}
	for i, e := range c.Env {
		ep := p.Child("env").Index(i)
		switch {
		case !envNameRE.MatchString(e.Name):
			es.Add(ep.Child("name"), "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*), got %s", validation.Quote(e.Name))
		case envSeen[e.Name]:
			es.Add(ep.Child("name"), "repeats %s", e.Name)
		}
		envSeen[e.Name] = true
		es.Check(ep.Child("value"), plainValue(e.Value, "a value"))
	}
	es.Check(p.Child("url"), required(c.URL, "is required, the https:// URL of the plugin binary", func(u string) string {
		return validation.URL(u, validation.URLRule{Schemes: []string{"file"}, HTTP: c.AllowHTTP,
			HTTPHint: "plain http only with allowHTTP: true on this provider; the sha256 still protects it"})
	}))
	es.Check(p.Child("sha256"), required(c.SHA256, "is required, 64 lower-case hex digits (sha256sum of the plugin binary): a plugin is never run unverified", validation.SHA256))
	return es
}

func providerName(s string) string {
	if !providerNameRE.MatchString(s) {
		return "must be a plain file name of letters, digits, '.', '_' and '-' (at most 128), such as ecr-credential-provider, got " + validation.Quote(s)
	}
	return ""
}

func cacheDuration(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil {
		return "must be a duration such as 12h, 30m or 0s, got " + validation.Quote(s)
	}
	if d < 0 {
		return "must not be negative (0s disables caching)"
	}
	return ""
}

// plainValue checks an argument or environment value: at most 4096 bytes of
// valid UTF-8 without control characters (it is written to YAML, then argv or
// the environment of the plugin).
func plainValue(s, what string) string {
	ok := len(s) <= 4096 && !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f || r == '\uFFFD' })
	if !ok {
		return "must be " + what + " of at most 4096 characters without control characters"
	}
	return ""
}

// MatchImage checks one matchImages pattern as the kubelet reads it
// (k8s.io/kubernetes pkg/credentialprovider: "https://" + pattern parsed as a
// URL, host parts matched with filepath.Match (so each glob spans one part), the port compared, the path a
// prefix), and refuses what would never match an image: a scheme, credentials,
// a query or fragment, an empty or malformed host part, a glob in the port, a
// port out of range, a '?' (the query) or '[' (an IPv6 literal) glob.
func MatchImage(m string) string {
	const want = "must be an image pattern host[:port][/path] with globs only in the host's parts, such as *.dkr.ecr.*.amazonaws.com, *.azurecr.io or registry.example.com:5000/team"
	if m == "" || strings.ContainsFunc(m, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return want + "; without spaces, control or non-ASCII characters, got " + validation.Quote(m)
	}
	if strings.Contains(m, "://") {
		return want + "; without a scheme, got " + validation.Quote(m)
	}
	u, err := url.Parse("https://" + m)
	if err != nil {
		return want + ", got " + validation.Quote(m)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(m, "#") {
		return want + "; without credentials, a query or a fragment, got " + validation.Quote(m)
	}
	host, port := u.Host, ""
	if h, p, err := net.SplitHostPort(u.Host); err == nil {
		host, port = h, p
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return want + "; the port is a number from 1 to 65535 (no globs), got " + validation.Quote(m)
		}
	}
	if net.ParseIP(host) != nil {
		return ""
	}
	for _, part := range strings.Split(host, ".") {
		if !hostGlobPartRE.MatchString(part) {
			return want + "; every dot-separated host part is non-empty and holds DNS characters and '*' globs, got " + validation.Quote(m)
		}
	}
	return ""
}
