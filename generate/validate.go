package generate

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/provision-dev/provision/generate/butane"
	"github.com/provision-dev/provision/generate/cloudinit"
	"github.com/provision-dev/provision/generate/ignition"
	"github.com/provision-dev/provision/generate/setup"
	"github.com/provision-dev/provision/node/nodeconfig"
	"github.com/provision-dev/provision/osprofiles"
)

// FieldError is a problem with one input, named by its GenerateConfig field and
// its command-line flag. Message never quotes a secret.
type FieldError struct {
	// Field is the GenerateConfig field, e.g. "token" or "sshAuthorizedKeys[1]".
	Field string
	// Flag is the command-line flag, e.g. "--token-file"; empty for config-only fields.
	Flag    string
	Message string
}

func (e FieldError) Error() string {
	if e.Flag == "" {
		return e.Field + ": " + e.Message
	}
	return e.Flag + " / " + e.Field + ": " + e.Message
}

// Errors is every problem found, in input order; Error joins them one per line.
type Errors []FieldError

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// MaxFileSize bounds each embedded file (CA, cloud-config, token file).
const MaxFileSize = 1 << 20

var (
	tokenRE    = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)
	labelRE    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	providerRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	sshTypeRE  = regexp.MustCompile(`^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)$`)
)

// resolved is a validated Spec with every default applied and every file read.
type resolved struct {
	Spec
	profile     osprofiles.Profile
	format      osprofiles.Format
	token       string
	caCert      []byte
	cloudConfig []byte
}

// Validate checks every input and returns all problems at once, as Errors.
// It reads the files the Spec names.
func (s Spec) Validate() error {
	_, err := s.resolve()
	return err
}

func (s Spec) resolve() (resolved, error) {
	r := resolved{Spec: s}
	var errs Errors
	add := func(field, flag, format string, a ...any) {
		errs = append(errs, FieldError{Field: field, Flag: flag, Message: fmt.Sprintf(format, a...)})
	}
	if s.APIVersion != "" && s.APIVersion != APIVersion {
		add("apiVersion", "", "must be %s", APIVersion)
	}
	if s.Kind != "" && s.Kind != Kind {
		add("kind", "", "must be %s", Kind)
	}

	// OS and format.
	profileOK := false
	if s.OS == "" {
		add("os", "--os", "is required; one of %s", strings.Join(osprofiles.Names(), ", "))
	} else if p, err := osprofiles.Get(s.OS); err != nil {
		add("os", "--os", "unknown OS %q; one of %s", printable(s.OS), strings.Join(osprofiles.Names(), ", "))
	} else {
		r.profile, profileOK = p, true
	}
	r.format = s.Format
	formatOK := true
	if r.format == "" && profileOK {
		r.format = r.profile.DefaultFormat
	}
	if r.format != "" && !knownFormat(r.format) {
		add("format", "--format", "unknown format %q; one of %s", printable(string(r.format)), formatNames())
		formatOK = false
	} else if profileOK && !r.profile.SupportsFormat(r.format) {
		add("format", "--format", "%s does not boot from %s userdata; use %s", r.profile.Name, r.format, r.profile.DefaultFormat)
		formatOK = false
	}
	if s.IgnitionVersion != "" {
		if _, ok := ignition.SpecVersion(s.IgnitionVersion); !ok {
			add("ignitionVersion", "--ignition-version", "must be one of %s", strings.Join(ignition.Versions(), ", "))
		} else if r.format == osprofiles.CloudInit {
			add("ignitionVersion", "--ignition-version", "applies only to --format ignition or butane")
		}
	}
	if formatOK && profileOK && r.format == osprofiles.Butane {
		if _, ok := ignition.SpecVersion(s.IgnitionVersion); ok {
			if _, err := butane.Version(r.butaneVariant(), s.IgnitionVersion); err != nil {
				add("ignitionVersion", "--ignition-version", "%v", err)
			}
		}
	}
	if s.Arch != "" && s.Arch != "amd64" && s.Arch != "arm64" {
		add("arch", "--arch", "must be amd64 or arm64")
	}

	// Cluster.
	switch {
	case s.KubeletVersion == "":
		add("kubeletVersion", "--kubelet-version", "is required, of the form vMAJOR.MINOR.PATCH (e.g. v1.31.4)")
	case !nodeconfig.ValidVersion(s.KubeletVersion):
		add("kubeletVersion", "--kubelet-version", "must be of the form vMAJOR.MINOR.PATCH (e.g. v1.31.4), got %q", printable(s.KubeletVersion))
	}
	if s.APIServerURL == "" {
		add("apiServerURL", "--apiserver-url", "is required, an https:// URL such as https://10.0.0.10:6443")
	} else if msg := checkURL(s.APIServerURL, false, "the API server is only reached over TLS; --allow-http-source applies to --provision-source only"); msg != "" {
		add("apiServerURL", "--apiserver-url", "%s", msg)
	}

	// Token: a secret, never quoted.
	switch {
	case s.Token != "" && s.TokenFile != "":
		add("token", "--token-file", "give the token or the token file, not both")
	case s.TokenFile != "":
		b, msg := readFile(s.TokenFile)
		if msg != "" {
			add("tokenFile", "--token-file", "%s", msg)
		} else {
			r.token = strings.TrimSpace(string(b))
		}
	default:
		r.token = s.Token
	}
	if r.token == "" && s.TokenFile == "" {
		add("token", "--token-file", "is required (a bootstrap token of the form [a-z0-9]{6}.[a-z0-9]{16})")
	} else if r.token != "" && !tokenRE.MatchString(r.token) {
		add("token", "--token-file", "must be of the form [a-z0-9]{6}.[a-z0-9]{16}")
	}

	// CA certificate.
	switch {
	case s.CACert != "" && s.CACertFile != "":
		add("caCert", "--ca-cert", "give the CA inline or as a file, not both")
	case s.CACertFile != "":
		b, msg := readFile(s.CACertFile)
		if msg != "" {
			add("caCertFile", "--ca-cert", "%s", msg)
		} else {
			r.caCert = b
		}
	default:
		r.caCert = []byte(s.CACert)
	}
	if len(r.caCert) == 0 && s.CACertFile == "" {
		add("caCert", "--ca-cert", "is required (the cluster CA, a PEM CERTIFICATE)")
	} else if len(r.caCert) > 0 {
		if msg := checkCA(r.caCert); msg != "" {
			add("caCert", "--ca-cert", "%s", msg)
		}
	}

	// Cloud provider.
	if s.CloudProvider != "" && !providerRE.MatchString(s.CloudProvider) {
		add("cloudProvider", "--cloud-provider", "must be a provider name such as external or openstack (lower-case letters, digits, '-')")
	}
	switch {
	case s.CloudConfig != "" && s.CloudConfigFile != "":
		add("cloudConfig", "--cloud-config", "give the cloud config inline or as a file, not both")
	case s.CloudConfigFile != "":
		b, msg := readFile(s.CloudConfigFile)
		if msg != "" {
			add("cloudConfigFile", "--cloud-config", "%s", msg)
		} else if len(b) == 0 {
			add("cloudConfigFile", "--cloud-config", "is empty")
		} else {
			r.cloudConfig = b
		}
	default:
		r.cloudConfig = []byte(s.CloudConfig)
	}
	if len(r.cloudConfig) > MaxFileSize {
		add("cloudConfig", "--cloud-config", "is larger than %d bytes", MaxFileSize)
	}
	if (len(r.cloudConfig) > 0 || s.CloudConfigFile != "") && s.CloudProvider == "" {
		add("cloudProvider", "--cloud-provider", "is required when a cloud config is given")
	}

	// Machine.
	if s.Hostname != "" {
		if msg := checkHostname(s.Hostname); msg != "" {
			add("hostname", "--hostname", "%s", msg)
		}
	}
	for i, k := range s.SSHAuthorizedKeys {
		if msg := checkSSHKey(k); msg != "" {
			add(fmt.Sprintf("sshAuthorizedKeys[%d]", i), "--ssh-authorized-key", "%s", msg)
		}
	}

	// The provision binary.
	if s.ProvisionSource == "" {
		add("provisionSource", "--provision-source", "is required, the https:// URL of the provision binary")
	} else if msg := checkURL(s.ProvisionSource, s.AllowHTTPSource, "plain http only with --allow-http-source / allowHTTPSource; the pinned sha256 still protects it"); msg != "" {
		add("provisionSource", "--provision-source", "%s", msg)
	} else if !setup.SafeValue(s.ProvisionSource) {
		add("provisionSource", "--provision-source", "must be printable ASCII without spaces, quotes, backslashes, '$', '`' or ';' (percent-encode them)")
	}
	switch {
	case s.ProvisionSHA256 == "":
		add("provisionSHA256", "--provision-sha256", "is required, 64 lower-case hex digits (sha256sum of the binary)")
	case !nodeconfig.ValidSHA256(s.ProvisionSHA256):
		add("provisionSHA256", "--provision-sha256", "must be 64 lower-case hex digits")
	}

	// The node's settings: nodeconfig's own validator, its field paths mapped to ours.
	if r.Arch == "" {
		r.Arch = "amd64"
	}
	if len(errs) == 0 || profileOK {
		if es, ok := nodeconfig.AsErrors(r.nodeConfig().Validate()); ok {
			for _, e := range es {
				field, flag := nodeConfigField(e.Field)
				if field != "" {
					add(field, flag, "%s", e.Message)
				}
			}
		}
	}

	if len(errs) > 0 {
		return resolved{}, errs
	}
	return r, nil
}

// nodeConfigField maps a NodeConfig field path to the GenerateConfig field and flag that
// set it; "" for fields generate already checked under its own names (version, arch, ...).
func nodeConfigField(f string) (field, flag string) {
	switch {
	case f == "kubernetes.nodeIP":
		return "nodeIP", "--node-ip"
	case strings.HasPrefix(f, "artifacts."), strings.HasPrefix(f, "packages."), strings.HasPrefix(f, "containerd."):
		return f, ""
	}
	return "", ""
}

func (r resolved) butaneVariant() string {
	if r.profile.ButaneVariant != "" {
		return r.profile.ButaneVariant
	}
	return "fcos"
}

func knownFormat(f osprofiles.Format) bool {
	for _, k := range osprofiles.Formats() {
		if f == k {
			return true
		}
	}
	return false
}

func formatNames() string {
	var n []string
	for _, f := range osprofiles.Formats() {
		n = append(n, string(f))
	}
	return strings.Join(n, ", ")
}

// printable shortens and sanitises a user value for an error message (never used for secrets).
func printable(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

func readFile(path string) ([]byte, string) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Sprintf("cannot read %s: %v", path, errorsCause(err))
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Sprintf("%s is not a regular file", path)
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Sprintf("%s is larger than %d bytes", path, MaxFileSize)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Sprintf("cannot read %s: %v", path, errorsCause(err))
	}
	return b, ""
}

// errorsCause drops the path os errors repeat.
func errorsCause(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// checkURL returns what is wrong with raw, or "". httpHint says why a plain
// http:// URL is refused (and whether anything allows it).
func checkURL(raw string, allowHTTP bool, httpHint string) string {
	want := "an https:// URL"
	if allowHTTP {
		want = "an https:// or http:// URL"
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r >= 0x80 }) {
		return "must be " + want + " without spaces, control or non-ASCII characters (percent-encode them)"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "must be " + want + " with a host"
	}
	if u.User != nil {
		return "must not carry credentials (user:password@)"
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	case u.Scheme == "http":
		return "must be an https:// URL (" + httpHint + ")"
	default:
		return "must be " + want
	}
	return ""
}

func checkCA(b []byte) string {
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
			return fmt.Sprintf("PEM block %d is %q, must be CERTIFICATE", n, printable(blk.Type))
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

func checkHostname(h string) string {
	const msg = "must be a DNS name (RFC 1123): lower-case letters, digits and '-', labels of 1-63 characters separated by '.', at most 253 characters"
	if len(h) > 253 {
		return msg
	}
	for _, l := range strings.Split(h, ".") {
		if !labelRE.MatchString(l) {
			return msg
		}
	}
	return ""
}

func checkSSHKey(k string) string {
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
	if !cloudinit.Plain([]byte(k)) {
		return "must not contain control characters"
	}
	return ""
}
