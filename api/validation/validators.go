package validation

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/provision-dev/provision/internal/kubeversions"
)

var (
	versionRE   = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)
	sha256RE    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	labelRE     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	nameRE      = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	wordRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~+-]*$`)
	imageRE     = regexp.MustCompile(`^[a-z0-9]([a-z0-9._:/@-]*[a-z0-9])?$`)
	sshTypeRE   = regexp.MustCompile(`^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)$`)
	bootstrapRE = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)
)

// Quote quotes a user value for a message: shortened to 80 bytes and made valid
// UTF-8, then Go-quoted so a control character shows as an escape. Never for secrets.
func Quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strconv.Quote(strings.ToValidUTF8(s, "?"))
}

// ValidVersion reports whether v is of the form vMAJOR.MINOR.PATCH.
func ValidVersion(v string) bool { return versionRE.MatchString(v) }

// ValidSHA256 reports whether s is 64 lower-case hex digits.
func ValidSHA256(s string) bool { return sha256RE.MatchString(s) }

// ValidBootstrapToken reports whether t has the form [a-z0-9]{6}.[a-z0-9]{16}.
func ValidBootstrapToken(t string) bool { return bootstrapRE.MatchString(t) }

// Version checks the form of a Kubernetes version.
func Version(v string) string {
	if !ValidVersion(v) {
		return "must be vMAJOR.MINOR.PATCH (e.g. v1.37.2), got " + Quote(v)
	}
	return ""
}

// KubeletVersion checks a kubelet version: its form, and that provision's
// version table (internal/kubeversions) has its minor. The message names the
// version and the supported minors.
func KubeletVersion(v string) string {
	if msg := Version(v); msg != "" {
		return msg
	}
	if _, err := kubeversions.For(v); err != nil {
		return err.Error()
	}
	return ""
}

// urlVersionRE matches a kubelet version in a URL's path (the boundaries are checked by URLVersions).
var urlVersionRE = regexp.MustCompile(`v1\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)`)

// URLVersions returns the kubelet versions (v1.MINOR.PATCH) a URL's path names
// as a component of its own, e.g. v1.36.3 in
// https://dl.k8s.io/release/v1.36.3/bin/linux/amd64/kubelet or in
// .../kubelet-v1.36.3; none for a path such as /mirror/kubelet. A version is
// bounded by the start or a character other than a letter or digit ("/", "-",
// "_", ...) before it, and by the end or anything but a digit or ".DIGIT"
// after it, so v1.36.30 and v1.36.3.1 are not v1.36.3. Only the path counts
// (percent-decoded), not the host or the query.
func URLVersions(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	p := u.Path
	var out []string
	for _, m := range urlVersionRE.FindAllStringIndex(p, -1) {
		start, end := m[0], m[1]
		if start > 0 && isAlnum(p[start-1]) {
			continue
		}
		if end < len(p) && (isDigit(p[end]) || p[end] == '.' && end+1 < len(p) && isDigit(p[end+1])) {
			continue
		}
		out = append(out, p[start:end])
	}
	return out
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// KubeletURL checks that a kubelet download URL names no other version than
// the config's (versionField is that field's name, for the message). A URL that
// names no version (a mirror path such as .../kubelet) passes. The URL itself is
// never quoted (it may carry a secret); only the version it names is.
func KubeletURL(raw, version, versionField string) string {
	for _, v := range URLVersions(raw) {
		if v != version {
			return fmt.Sprintf("names kubelet %s but %s is %s: point it at the %s kubelet (or change the version)", v, versionField, version, version)
		}
	}
	return ""
}

// SHA256 checks a sha256 digest.
func SHA256(s string) string {
	if !ValidSHA256(s) {
		return "must be 64 lower-case hex digits"
	}
	return ""
}

// Arch checks a machine architecture.
func Arch(a string) string {
	if a != "amd64" && a != "arm64" {
		return "must be amd64 or arm64, got " + Quote(a)
	}
	return ""
}

// IP checks an IP address (v4 or v6).
func IP(s string) string {
	if net.ParseIP(s) == nil {
		return "must be an IP address, got " + Quote(s)
	}
	return ""
}

// AbsPath checks a path on the node: absolute, clean, printable ASCII without
// spaces (it reaches unit lines and command lines).
func AbsPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "must be an absolute path, got " + Quote(p)
	}
	if hasSpaceOrControl(p) || path.Clean(p) != p {
		return "must be a clean absolute path (no '..', '//', spaces or control characters), got " + Quote(p)
	}
	return ""
}

// Name checks a lower-case name such as a cloud provider ("external").
func Name(s, example string) string {
	if !nameRE.MatchString(s) {
		return "must be a name such as " + example + " (lower-case letters, digits, '-'), got " + Quote(s)
	}
	return ""
}

// Word checks one token of a config line (an apt suite or component): letters,
// digits and . _ ~ + -, no spaces, slashes or control characters.
func Word(s, example string) string {
	if !wordRE.MatchString(s) {
		return "must be a name such as " + example + " (letters, digits, '.', '_', '~', '+', '-'), got " + Quote(s)
	}
	return ""
}

// Image checks a container image reference such as registry.k8s.io/pause:3.10.
func Image(s string) string {
	if len(s) > 255 || !imageRE.MatchString(s) {
		return "must be an image reference such as registry.k8s.io/pause:3.10 (lower-case, no spaces), got " + Quote(s)
	}
	return ""
}

// Hostname checks an RFC 1123 DNS name.
func Hostname(h string) string {
	const msg = "must be a DNS name (RFC 1123): lower-case letters, digits and '-', labels of 1-63 characters separated by '.', at most 253 characters"
	if len(h) > 253 || h == "" {
		return msg
	}
	for _, l := range strings.Split(h, ".") {
		if !labelRE.MatchString(l) {
			return msg
		}
	}
	return ""
}

// HostPort checks a registry host: a DNS name or IP address, with an optional port.
func HostPort(s string) string {
	msg := "must be a registry host[:port] such as docker.io or mirror.internal:5000, got " + Quote(s)
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return msg
		}
	}
	if net.ParseIP(host) != nil || Hostname(host) == "" {
		return ""
	}
	return msg
}

// URLRule says which URLs a field takes.
type URLRule struct {
	// Schemes allowed besides https (e.g. "file"); plain http is governed by HTTP.
	Schemes []string
	// HTTP permits plain http:// (an explicit opt-in, or a field signed otherwise).
	HTTP bool
	// HTTPHint says how to opt in to plain http, or why it is refused.
	HTTPHint string
	// CredentialsHint says where credentials go instead of the URL.
	CredentialsHint string
}

// DefaultCredentialsHint is the pointer for URLs written to world-readable files.
const DefaultCredentialsHint = "URLs are written to world-readable files (node.yaml, 0644); keep credentials out of URLs and serve mirrors to the nodes without them"

// URL checks raw against rule. Its messages never quote the URL (it may carry a secret).
func URL(raw string, rule URLRule) string {
	want := rule.want()
	if hasSpaceOrControl(raw) || strings.ContainsFunc(raw, func(r rune) bool { return r >= 0x80 }) {
		return "must be " + want + " without spaces, control or non-ASCII characters (percent-encode them)"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || (u.Host == "" && u.Scheme != "file") {
		return "must be " + want + " with a host"
	}
	if u.User != nil {
		hint := rule.CredentialsHint
		if hint == "" {
			hint = DefaultCredentialsHint
		}
		return "must not carry credentials (user:password@): " + hint
	}
	switch {
	case u.Scheme == "https", u.Scheme == "http" && rule.HTTP:
		return ""
	case u.Scheme == "http" && rule.HTTPHint != "":
		return "must be " + strings.Replace(want, " or http://", "", 1) + " (" + rule.HTTPHint + ")"
	}
	for _, s := range rule.Schemes {
		if u.Scheme == s {
			return ""
		}
	}
	return "must be " + want
}

func (r URLRule) want() string {
	s := []string{"https://"}
	if r.HTTP {
		s = append(s, "http://")
	}
	for _, x := range r.Schemes {
		s = append(s, x+"://")
	}
	if len(s) == 1 {
		return "an https:// URL"
	}
	return "an " + strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1] + " URL"
}

// CACert checks a cluster CA: PEM CERTIFICATE blocks only, each a parseable X.509 certificate.
func CACert(b []byte) string {
	if !utf8.Valid(b) {
		return "must be a PEM CERTIFICATE (text), not binary/DER"
	}
	rest, n := b, 0
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		n++
		if blk.Type != "CERTIFICATE" {
			return fmt.Sprintf("PEM block %d is %s, must be CERTIFICATE", n, Quote(blk.Type))
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return fmt.Sprintf("PEM block %d is not an X.509 certificate: %v", n, err)
		}
	}
	if n == 0 {
		return "must be a PEM CERTIFICATE (-----BEGIN CERTIFICATE-----)"
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return "has data after the last PEM CERTIFICATE"
	}
	return ""
}

// SSHKey checks one OpenSSH authorized_keys line.
func SSHKey(k string) string {
	if strings.ContainsAny(k, "\r\n\x00") {
		return "must be a single line (one key per flag)"
	}
	if !utf8.ValidString(k) {
		return "must be UTF-8 text"
	}
	f := strings.Fields(k)
	if len(f) < 2 || !sshTypeRE.MatchString(f[0]) {
		return "must be an OpenSSH public key line: TYPE BASE64 [COMMENT], TYPE one of ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521, sk-*@openssh.com"
	}
	if _, err := base64.StdEncoding.DecodeString(f[1]); err != nil {
		return "has a key that is not valid base64"
	}
	if !PlainLine(k) {
		return "must not contain control characters"
	}
	return ""
}

// PlainLine reports whether s is valid UTF-8 with no control or invisible
// line-breaking characters (tab allowed): safe on one line of any config file.
func PlainLine(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == '\t':
		case r < 0x20 || r == 0x7f, r >= 0x80 && r <= 0x9f:
			return false
		case r == 0x2028, r == 0x2029, r == 0xfeff, r >= 0xfff0 && r <= 0xffff:
			return false
		}
	}
	return true
}

func hasSpaceOrControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// Required returns missing when v is empty, else check(v).
func Required(v, missing string, check func(string) string) string {
	if v == "" {
		return missing
	}
	return check(v)
}

// Optional returns check(v), or "" when v is empty.
func Optional(v string, check func(string) string) string {
	if v == "" {
		return ""
	}
	return check(v)
}

// Equal checks a fixed value such as an apiVersion or kind.
func Equal(want string) func(string) string {
	return func(v string) string {
		if v != want {
			return fmt.Sprintf("must be %q, got %s", want, Quote(v))
		}
		return ""
	}
}

// BootstrapToken checks a bootstrap token. The message never quotes it.
func BootstrapToken(t string) string {
	if !ValidBootstrapToken(t) {
		return "must be of the form [a-z0-9]{6}.[a-z0-9]{16}"
	}
	return ""
}

// CloudProvider checks the kubelet's --cloud-provider: it reaches the kubelet's
// unit line, so only a plain name passes (no space, newline or control character).
func CloudProvider(s string) string {
	if !nameRE.MatchString(s) {
		return "must be a provider name such as external (lower-case letters, digits, '-'), got " + Quote(s)
	}
	return ""
}
