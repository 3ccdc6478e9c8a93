package v1alpha1

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/provision-dev/provision/api/validation"
)

// ProxyEnvPath is where generate writes the proxy settings (0600): setup's unit,
// containerd's and the kubelet's read it with EnvironmentFile=, and `provision
// node` loads it into its own environment (its downloader, apt and dnf). A
// proxy URL may carry credentials, so the URLs live only there, never in
// node.yaml (which names the file: NodeConfig.proxy.environmentFile).
const ProxyEnvPath = "/etc/provision/proxy.env"

// Proxy is the node's forward proxy (GenerateConfig.proxy).
type Proxy struct {
	// HTTPProxy is the proxy for http:// URLs: http(s)://[user:password@]host[:port].
	// Credentials are allowed and treated as a secret.
	HTTPProxy string `json:"httpProxy,omitempty"`
	// HTTPSProxy is the proxy for https:// URLs, of the same form.
	HTTPSProxy string `json:"httpsProxy,omitempty"`
	// NoProxy is a comma-separated list of hosts, domains (.example.com), IPs and
	// CIDRs reached directly. generate adds localhost, 127.0.0.1 and the API
	// server's host.
	NoProxy string `json:"noProxy,omitempty"`
}

// IsZero reports whether no proxy is configured.
func (p Proxy) IsZero() bool { return p == Proxy{} }

// NodeProxy is the node config's reference to the proxy settings.
type NodeProxy struct {
	// EnvironmentFile is an environment file (KEY=value lines) holding
	// http_proxy, https_proxy and no_proxy (upper-case forms are accepted);
	// generate writes ProxyEnvPath.
	EnvironmentFile string `json:"environmentFile,omitempty"`
}

// proxyValueChars: what a value may hold so that it is written unquoted to an
// environment file read by systemd (EnvironmentFile=) and by sh.
func proxySafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("'\"\\$`;#&|<>(){}", c) >= 0 {
			return false
		}
	}
	return true
}

// ProxyURL checks a proxy URL: http or https, a host, an optional port and
// credentials, nothing else. Its messages never quote the URL.
func ProxyURL(raw string) string {
	const want = "an http:// or https:// proxy URL, [user:password@]host[:port]"
	if !proxySafe(raw) {
		return "must be " + want + " without spaces, quotes, '\\', '$', '`', ';', '#', '&', '|', '<', '>', parentheses, braces or non-ASCII characters (percent-encode them)"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return "must be " + want + " with a host"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "must be " + want + " (scheme http or https)"
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "must be " + want + ", without a path, query or fragment"
	}
	if p := u.Port(); p != "" {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 1 || n > 65535 {
			return "must be " + want + " with a port from 1 to 65535"
		}
	}
	return ""
}

var noProxyEntryRE = regexp.MustCompile(`^(\*|\.?[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?(:[0-9]{1,5})?|[0-9A-Fa-f:.]+(/[0-9]{1,3})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?)$`)

// NoProxyList checks a noProxy value: comma-separated host names, .domains,
// IPs, CIDRs or *.
func NoProxyList(s string) string {
	for i, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			return fmt.Sprintf("entry %d is empty; give a comma-separated list of hosts, .domains, IPs or CIDRs", i+1)
		}
		if !noProxyEntryRE.MatchString(e) {
			return fmt.Sprintf("entry %d (%s) is not a host, .domain, IP, CIDR or *", i+1, validation.Quote(e))
		}
		if strings.Contains(e, "/") {
			if _, _, err := net.ParseCIDR(e); err != nil {
				return fmt.Sprintf("entry %d (%s) is not a valid CIDR", i+1, validation.Quote(e))
			}
		}
	}
	return ""
}

// Validate checks the proxy settings; a noProxy without a proxy is refused.
func (p Proxy) Validate(pa validation.Path) validation.Errors {
	var es validation.Errors
	es.Check(pa.Child("httpProxy"), optional(p.HTTPProxy, ProxyURL))
	es.Check(pa.Child("httpsProxy"), optional(p.HTTPSProxy, ProxyURL))
	es.Check(pa.Child("noProxy"), optional(p.NoProxy, NoProxyList))
	if p.NoProxy != "" && p.HTTPProxy == "" && p.HTTPSProxy == "" {
		es.Add(pa.Child("noProxy"), "is given without httpProxy or httpsProxy")
	}
	return es
}

// Validate checks the environment file's path (it reaches unit files).
func (p NodeProxy) Validate(pa validation.Path) validation.Errors {
	var es validation.Errors
	es.Check(pa.Child("environmentFile"), optional(p.EnvironmentFile, func(s string) string {
		if !path.IsAbs(s) || path.Clean(s) != s || !proxySafe(s) || strings.ContainsAny(s, "%") {
			return "must be a clean absolute path without spaces, quotes or shell and systemd special characters"
		}
		return ""
	}))
	return es
}

// WithNoProxy returns p with hosts appended to its noProxy (each once, in
// order), after localhost and 127.0.0.1. A zero p stays zero.
func (p Proxy) WithNoProxy(hosts ...string) Proxy {
	if p.HTTPProxy == "" && p.HTTPSProxy == "" {
		return p
	}
	var list []string
	seen := map[string]bool{}
	add := func(h string) {
		h = strings.TrimSpace(h)
		if h != "" && !seen[h] {
			seen[h] = true
			list = append(list, h)
		}
	}
	if p.NoProxy != "" {
		for _, e := range strings.Split(p.NoProxy, ",") {
			add(e)
		}
	}
	for _, h := range append([]string{"localhost", "127.0.0.1"}, hosts...) {
		add(h)
	}
	p.NoProxy = strings.Join(list, ",")
	return p
}

// proxyEnvKeys are the variables an environment file may set. EnvFile writes
// the lower-case ones only: curl, apt, dnf (libcurl) and Go (containerd, the
// kubelet, provision) all read them (curl ignores upper-case HTTP_PROXY).
var proxyEnvKeys = []string{"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"}

// EnvFile renders p as an environment file for systemd's EnvironmentFile= and
// sh's `.`: KEY=value lines, values unquoted (Validate allows only characters
// that need no quoting). The result holds the proxy credentials: write it 0600.
func (p Proxy) EnvFile() []byte {
	var b strings.Builder
	for _, kv := range [][2]string{{"http_proxy", p.HTTPProxy}, {"https_proxy", p.HTTPSProxy}, {"no_proxy", p.NoProxy}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
		}
	}
	return []byte(b.String())
}

// ParseProxyEnv reads an environment file written by EnvFile: KEY=value lines
// (comments and blank lines skipped, optional "export " and quotes), only the
// proxy variables. Errors name the line, never its value.
func ParseProxyEnv(data []byte) ([][2]string, error) {
	var out [][2]string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: not KEY=value", i+1)
		}
		known := false
		for _, want := range proxyEnvKeys {
			known = known || k == want
		}
		if !known {
			return nil, fmt.Errorf("line %d: %s is not one of %s", i+1, validation.Quote(k), strings.Join(proxyEnvKeys, ", "))
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}
