package validation

import (
	"strings"
	"testing"
)

// TestURL: one row per rule the configs rely on; want "" means accepted.
func TestURL(t *testing.T) {
	tls := URLRule{}
	mirror := URLRule{HTTP: true}
	artifact := URLRule{Schemes: []string{"file"}, HTTPHint: "plain http only with artifacts.allowHTTP: true"}
	tests := []struct {
		name string
		raw  string
		rule URLRule
		want string
	}{
		{"https", "https://10.0.0.1:6443", tls, ""},
		{"http refused", "http://10.0.0.1:6443", tls, "must be an https:// URL"},
		{"http refused with hint", "http://m/k", artifact, "must be an https:// or file:// URL (plain http only with artifacts.allowHTTP: true)"},
		{"http allowed", "http://m:5000", mirror, ""},
		{"file allowed", "file:///srv/k", artifact, ""},
		{"file refused", "file:///srv/k", tls, "must be an https:// URL"},
		{"ftp", "ftp://m/k", mirror, "must be an https:// or http:// URL"},
		{"no host", "https://", tls, "must be an https:// URL with a host"},
		{"opaque", "mirror:5000", mirror, "must be an https:// or http:// URL with a host"},
		{"credentials", "https://u:p@m/k", tls, "must not carry credentials (user:password@): " + DefaultCredentialsHint},
		{"user only", "https://token@m/k", tls, "must not carry credentials (user:password@): " + DefaultCredentialsHint},
		{"credentials hint", "https://u:p@m", URLRule{CredentialsHint: "use the token"}, "must not carry credentials (user:password@): use the token"},
		{"carriage return", "https://m/k\r", tls, "must be an https:// URL without spaces, control or non-ASCII characters (percent-encode them)"},
		{"space", "https://m/a b", tls, "must be an https:// URL without spaces, control or non-ASCII characters (percent-encode them)"},
		{"non-ASCII", "https://m/ä", tls, "must be an https:// URL without spaces, control or non-ASCII characters (percent-encode them)"},
		{"all schemes", "gopher://m", URLRule{HTTP: true, Schemes: []string{"file"}}, "must be an https://, http:// or file:// URL"},
	}
	for _, tt := range tests {
		if got := URL(tt.raw, tt.rule); got != tt.want {
			t.Errorf("%s: URL(%q) = %q, want %q", tt.name, tt.raw, got, tt.want)
		}
		if strings.Contains(URL(tt.raw, tt.rule), "@") && !strings.Contains(tt.want, "@") {
			t.Errorf("%s: message quotes the URL", tt.name)
		}
	}
}

// TestValidators: the small shared checks, accepted and refused values.
func TestValidators(t *testing.T) {
	tests := []struct {
		name  string
		check func(string) string
		ok    []string
		bad   []string
	}{
		{"Version", Version, []string{"v1.37.2", "v0.0.0"}, []string{"1.37.2", "v1.37", "v01.2.3", "v1.37.2\n"}},
		{"KubeletVersion", KubeletVersion, []string{"v1.37.2", "v1.35.4", "v1.23.17"}, []string{"1.37.2", "v0.0.0", "v1.38.0", "v1.20.15", "v2.0.0"}},
		{"SHA256", SHA256, []string{strings.Repeat("a", 64)}, []string{strings.Repeat("A", 64), "abc"}},
		{"Arch", Arch, []string{"amd64", "arm64"}, []string{"s390x", ""}},
		{"IP", IP, []string{"10.0.0.1", "fd00::1"}, []string{"10.0.0", "node-1"}},
		{"AbsPath", AbsPath, []string{"/etc/kubernetes/kubelet.conf"}, []string{"etc/x", "/etc/../x", "/etc//x", "/a b", "/a\nb", "/a/"}},
		{"Hostname", Hostname, []string{"worker-1", "a.b.c"}, []string{"Worker", "worker_1", "-a", strings.Repeat("a", 64), "a\nb", ""}},
		{"HostPort", HostPort, []string{"docker.io", "m.internal:5000", "10.0.0.1:5000", "[fd00::1]:5000"}, []string{"bad/host", "m:0", "m:99999", "../x", "a b", ""}},
		{"CloudProvider", CloudProvider, []string{"external", "openstack", "aws"}, []string{"external\r", "Open Stack", "a\nb", "x;y"}},
		{"Word", func(s string) string { return Word(s, `"main"`) }, []string{"main", "bookworm-updates", "1.0~rc"}, []string{"", "a b", "a/b", "a\n"}},
		{"Image", Image, []string{"registry.k8s.io/pause:3.10", "m.internal:5000/pause@sha256:" + strings.Repeat("a", 64)}, []string{"pause 3.10", "Pause", "p\n"}},
		{"BootstrapToken", BootstrapToken, []string{"abcdef.0123456789abcdef"}, []string{"ABCDEF.0123456789abcdef", "abcdef0123456789abcdef"}},
		{"LabelKey", LabelKey, []string{"pool", "example.com/pool", "kubernetes.io/hostname", "kubernetes.io/arch", "beta.kubernetes.io/os",
			"failure-domain.beta.kubernetes.io/zone", "topology.kubernetes.io/zone", "node.kubernetes.io/instance-type", "node.kubernetes.io/pool",
			"kubelet.kubernetes.io/x", "a.node.kubernetes.io/x", "example.com/kubernetes.io"},
			[]string{"", "-pool", "a/b/c", "Example.com/x", strings.Repeat("a", 64), "node-role.kubernetes.io/worker", "kubernetes.io/role",
				"k8s.io/x", "x.k8s.io/y", "topology.kubernetes.io/rack", "a b", "a\nb"}},
		{"LabelValue", LabelValue, []string{"", "gpu", "a.b_c-d", strings.Repeat("a", 63)}, []string{"-a", "a b", "a,b", "a=b", strings.Repeat("a", 64), "a\n"}},
		{"Taint", Taint, []string{"dedicated=gpu:NoSchedule", "example.com/x:NoExecute", "k=:PreferNoSchedule", "k=v:NoSchedule"},
			[]string{"", "k=v", "k=v:noschedule", "k=v:Evict", ":NoSchedule", "k=v w:NoSchedule", "k=v:NoSchedule,x=y:NoSchedule", "k=v:NoSchedule\n"}},
		{"SSHKey", SSHKey, []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJk= me"}, []string{"foo AAAA", "ssh-ed25519 !!", "ssh-ed25519 AAAA\nssh-rsa AAAA", "ssh-ed25519 AAAA \u2028x"}},
	}
	for _, tt := range tests {
		for _, v := range tt.ok {
			if msg := tt.check(v); msg != "" {
				t.Errorf("%s(%q) refused: %s", tt.name, v, msg)
			}
		}
		for _, v := range tt.bad {
			if msg := tt.check(v); msg == "" {
				t.Errorf("%s(%q) accepted", tt.name, v)
			}
		}
	}
}

// TestLabelMessages: a refused label says why and what to do instead.
func TestLabelMessages(t *testing.T) {
	for key, want := range map[string]string{
		"node-role.kubernetes.io/worker": "a kubelet may not set node-role.kubernetes.io/ labels on its own Node (the NodeRestriction admission plugin refuses them",
		"kubernetes.io/role":             "is in the kubernetes.io/k8s.io namespace, where a kubelet may set only its own labels",
		"Pool!":                          `label key "Pool!" is invalid: name part must consist of alphanumeric characters`,
	} {
		if got := LabelKey(key); !strings.Contains(got, want) {
			t.Errorf("LabelKey(%q) = %q, want %q", key, got, want)
		}
	}
	if got := Taint("k=v:Evict"); !strings.Contains(got, `must be key=value:Effect or key:Effect`) || !strings.Contains(got, `unknown effect "Evict"`) {
		t.Errorf("Taint: %q", got)
	}
}

// TestKubeletVersionMessage: an unknown minor names the version and the supported minors.
func TestKubeletVersionMessage(t *testing.T) {
	for v, want := range map[string]string{
		"v1.38.0":  "kubelet v1.38.0 is newer than provision knows (newest 1.37; supported are 1.35, 1.36, 1.37): update provision",
		"v1.20.15": "kubelet v1.20.15 is older than provision renders (oldest 1.21; supported are 1.35, 1.36, 1.37)",
		"1.37.2":   `must be vMAJOR.MINOR.PATCH (e.g. v1.37.2), got "1.37.2"`,
	} {
		if got := KubeletVersion(v); got != want {
			t.Errorf("KubeletVersion(%q) = %q, want %q", v, got, want)
		}
	}
}

// TestURLVersions: the kubelet versions a URL's path names as components of
// their own; none in a mirror path, a host name, or a longer version.
func TestURLVersions(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubelet", "v1.36.3"},
		{"https://mirror.internal/kubelet", ""},
		{"file:///srv/mirror/kubelet", ""},
		{"https://m/k8s/kubelet-v1.37.1", "v1.37.1"},
		{"https://m/k8s/kubelet_v1.37.1.bin", "v1.37.1"},
		{"https://m/v1.37.2-rc.0/kubelet", "v1.37.2"},
		{"https://m/a/v1.36.3/b/v1.37.2/kubelet", "v1.36.3 v1.37.2"},
		{"https://v1.36.3.example/kubelet", ""},            // the host is no path component
		{"https://m/release/v1.36.30/kubelet", "v1.36.30"}, // not v1.36.3
		{"https://m/release/v1.36.3.1/kubelet", ""},        // a four-part version is none
		{"https://m/release/xv1.36.3/kubelet", ""},         // inside a word
		{"https://m/release/v1.37/kubelet", ""},            // no patch: no version
		{"https://m/release/v2.0.0/kubelet", ""},           // not Kubernetes 1.x
		{"https://m/release/v1%2E36.3/kubelet", "v1.36.3"}, // percent-encoded
		{"https://m/kubelet?v=v1.36.3", ""},                // the query is no path
	}
	for _, tt := range tests {
		if got := strings.Join(URLVersions(tt.raw), " "); got != tt.want {
			t.Errorf("URLVersions(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

// TestKubeletURL: a kubelet URL naming another version is refused, naming both
// versions and never the URL (it may carry a secret).
func TestKubeletURL(t *testing.T) {
	const field = "kubernetes.version"
	if got := KubeletURL("https://dl.k8s.io/release/v1.37.2/bin/linux/amd64/kubelet", "v1.37.2", field); got != "" {
		t.Errorf("same version refused: %s", got)
	}
	if got := KubeletURL("https://mirror.internal/secret-token-path/kubelet", "v1.37.2", field); got != "" {
		t.Errorf("mirror without a version refused: %s", got)
	}
	got := KubeletURL("https://mirror.internal/secret-token-path/v1.36.3/kubelet", "v1.37.2", field)
	want := "names kubelet v1.36.3 but kubernetes.version is v1.37.2: point it at the v1.37.2 kubelet (or change the version)"
	if got != want {
		t.Errorf("KubeletURL = %q, want %q", got, want)
	}
	if strings.Contains(got, "secret-token-path") || strings.Contains(got, "mirror.internal") {
		t.Errorf("message quotes the URL: %s", got)
	}
}

func TestErrors(t *testing.T) {
	var es Errors
	if es.Err() != nil {
		t.Fatal("empty Errors is not nil")
	}
	p := Path("").Child("containerd").Child("registryMirrors").Key("docker.io").Index(0)
	es.Check(p, "")
	es.Check(p, "bad")
	es.Add("kubeletVersion", "must be %s", "x")
	es[1].Flag = "--kubelet-version"
	want := "containerd.registryMirrors[docker.io][0]: bad\n--kubelet-version / kubeletVersion: must be x"
	if got := es.Err().Error(); got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if got, ok := AsErrors(es.Err()); !ok || len(got) != 2 {
		t.Fatalf("AsErrors = %v, %v", got, ok)
	}
}

func TestQuote(t *testing.T) {
	if got := Quote("a\rb\xff"); got != `"a\rb?"` {
		t.Fatalf("Quote = %s", got)
	}
	if got := Quote(strings.Repeat("x", 100)); len(got) != 85 {
		t.Fatalf("Quote did not shorten: %d", len(got))
	}
}
