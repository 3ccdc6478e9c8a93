package v1alpha1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/provision-dev/provision/api/validation"
)

// RegistryCredentialsPath is where generate writes the registry credentials
// (0600 from creation), a JSON object host -> RegistryAuth; the node config
// names it (containerd.credentialsFile), never the credentials themselves.
const RegistryCredentialsPath = "/etc/provision/registry-credentials.json"

// RegistryCAPath is where generate writes a registry host's CA on the node
// (containerd's own layout: certs.d/HOST/ca.crt beside its hosts.toml).
func RegistryCAPath(host string) string {
	return path.Join("/etc/containerd/certs.d", host, "ca.crt")
}

// maxSecretLen bounds a username, password or identity token.
const maxSecretLen = 8192

// Registry is one registry host's TLS settings and credentials
// (containerd.registries[HOST]). A GenerateConfig gives the CA (caCert or
// caCertFile) and the credentials; generate writes the CA to caPath and the
// credentials to RegistryCredentialsPath, and the node config keeps only
// caPath and skipVerify.
type Registry struct {
	// CACert is a PEM bundle of the CA certificates the registry's TLS
	// certificate is checked against (GenerateConfig only, inline).
	CACert string `json:"caCert,omitempty"`
	// CACertFile is a file generate reads the PEM bundle from (GenerateConfig only).
	CACertFile string `json:"caCertFile,omitempty"`
	// CAPath is the CA bundle's path on the node (NodeConfig only; generate
	// sets it to RegistryCAPath(HOST)): hosts.toml's ca.
	CAPath string `json:"caPath,omitempty"`
	// SkipVerify turns TLS verification off for this host (hosts.toml's
	// skip_verify): for development registries only. Excludes a CA.
	SkipVerify bool `json:"skipVerify,omitempty"`
	// Username is the registry's basic-auth user (GenerateConfig only), with Password.
	Username string `json:"username,omitempty"`
	// Password is Username's password (GenerateConfig only; a secret: never in
	// node.yaml, argv, logs or errors).
	Password string `json:"password,omitempty"`
	// IdentityToken is an OAuth refresh token for the registry, instead of a
	// username and password (GenerateConfig only; a secret).
	IdentityToken string `json:"identityToken,omitempty"`
}

// HasCredentials reports whether r carries credentials.
func (r Registry) HasCredentials() bool {
	return r.Username != "" || r.Password != "" || r.IdentityToken != ""
}

// Auth is r's credentials as the credentials file holds them.
func (r Registry) Auth() RegistryAuth {
	return RegistryAuth{Username: r.Username, Password: r.Password, IdentityToken: r.IdentityToken}
}

// RegistryAuth is one host's entry of the credentials file: username and
// password, or an identity token.
type RegistryAuth struct {
	// Username is the basic-auth user, with Password.
	Username string `json:"username,omitempty"`
	// Password is Username's password.
	Password string `json:"password,omitempty"`
	// IdentityToken is an OAuth refresh token, instead of Username and Password.
	IdentityToken string `json:"identityToken,omitempty"`
}

// RegistryCredentials is the credentials file: host[:port] -> credentials.
type RegistryCredentials map[string]RegistryAuth

// Marshal renders the credentials file (compact JSON, keys sorted, final
// newline: it travels in the userdata). It holds secrets: write it 0600.
func (rc RegistryCredentials) Marshal() ([]byte, error) {
	out, err := json.Marshal(rc)
	if err != nil {
		return nil, fmt.Errorf("marshal registry credentials: %w", err) // json's errors never quote a string value
	}
	return append(out, '\n'), nil
}

// ParseRegistryCredentials reads a credentials file strictly (unknown fields
// refused) and checks every entry. Errors name the host and field, never a value.
func ParseRegistryCredentials(data []byte) (RegistryCredentials, error) {
	var rc RegistryCredentials
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rc); err != nil {
		return nil, fmt.Errorf("not a JSON object host -> {username, password} or {identityToken}: %s", jsonErrorKind(err))
	}
	if dec.More() {
		return nil, fmt.Errorf("data after the JSON object")
	}
	var es validation.Errors
	for _, h := range slices.Sorted(maps.Keys(rc)) {
		a := rc[h]
		if msg := validation.HostPort(h); msg != "" {
			es.Add(validation.Path("").Key(h), "%s", msg)
			continue
		}
		es.Append(a.validate(validation.Path("").Key(h)))
		if a == (RegistryAuth{}) {
			es.Add(validation.Path("").Key(h), "has no credentials: give username and password, or identityToken")
		}
	}
	if err := es.Err(); err != nil {
		return nil, err
	}
	return rc, nil
}

// jsonErrorKind describes a decode error without the input it may quote.
func jsonErrorKind(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("syntax error at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("%s at %s has the wrong type (want %s)", e.Value, e.Field, e.Type)
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return "unknown field " + strings.TrimPrefix(msg, "json: unknown field ")
	}
	return "malformed"
}

// validate checks one host's credentials: a username with a password, or an
// identity token alone; printable ASCII. Messages never quote a value.
func (a RegistryAuth) validate(p validation.Path) validation.Errors {
	var es validation.Errors
	es.Check(p.Child("username"), optional(a.Username, registryUsername))
	es.Check(p.Child("password"), optional(a.Password, registrySecret))
	es.Check(p.Child("identityToken"), optional(a.IdentityToken, registrySecret))
	es.Check(p.Child("password"), requiredWith(a.Password, a.Username, "username"))
	es.Check(p.Child("username"), requiredWith(a.Username, a.Password, "password"))
	if a.IdentityToken != "" && (a.Username != "" || a.Password != "") {
		es.Add(p.Child("identityToken"), "excludes username and password: give one or the other")
	}
	return es
}

// requiredWith: v is required when other (named otherName) is given.
func requiredWith(v, other, otherName string) string {
	if v == "" && other != "" {
		return "is required with " + otherName
	}
	return ""
}

// registrySecret checks a password or token by form, never quoting it.
func registrySecret(s string) string {
	if len(s) > maxSecretLen {
		return fmt.Sprintf("is longer than %d bytes (value not shown)", maxSecretLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return "must be printable ASCII, without control or non-ASCII characters (value not shown)"
		}
	}
	return ""
}

// registryUsername checks a username: a secret's form, and no ':' (basic
// authentication joins user:password).
func registryUsername(s string) string {
	if msg := registrySecret(s); msg != "" {
		return msg
	}
	if strings.Contains(s, ":") {
		return "must not contain ':' (basic authentication joins user:password) (value not shown)"
	}
	return ""
}

// absent refuses a field given where it does not belong, saying where it does.
func absent(given bool, msg string) string {
	if given {
		return msg
	}
	return ""
}

const credentialsElsewhere = "does not belong in the node config (node.yaml is world-readable): credentials go to the 0600 file containerd.credentialsFile names (generate writes %s)"

// validateRegistries checks containerd.registries and containerd.credentialsFile
// of a GenerateConfig (inNode false: the CA and credentials are given here) or
// a NodeConfig (inNode true: only caPath and skipVerify; credentials in
// credentialsFile).
func (c Containerd) validateRegistries(p validation.Path, inNode bool) validation.Errors {
	var es validation.Errors
	if inNode {
		es.Check(p.Child("credentialsFile"), optional(c.CredentialsFile, validation.AbsPath))
	} else {
		es.Check(p.Child("credentialsFile"), absent(c.CredentialsFile != "", "is set by generate ("+RegistryCredentialsPath+", 0600) from registries' credentials: give username/password or identityToken under containerd.registries"))
	}
	rp := p.Child("registries")
	for _, h := range slices.Sorted(maps.Keys(c.Registries)) {
		if validation.HostPort(h) != "" {
			es.Add(rp, "registry %s must be a host[:port] such as registry.internal or 10.0.0.5:5000 (the host containerd contacts: an upstream or a mirror's)", validation.Quote(h))
			continue
		}
		if inNode {
			es.Append(c.Registries[h].validateNode(rp.Key(h)))
		} else {
			es.Append(c.Registries[h].validateGenerate(rp.Key(h)))
		}
	}
	return es
}

// validateGenerate checks one registry of a GenerateConfig.
func (r Registry) validateGenerate(p validation.Path) validation.Errors {
	var es validation.Errors
	es.Check(p.Child("caCert"), optional(r.CACert, func(s string) string { return validation.CACert([]byte(s)) }))
	es.Check(p.Child("caCert"), absent(r.CACert != "" && r.CACertFile != "", "give the CA inline or as a file (caCertFile), not both"))
	es.Check(p.Child("caPath"), absent(r.CAPath != "", "is set by generate (/etc/containerd/certs.d/HOST/ca.crt): give the CA as caCert or caCertFile"))
	es.Check(p.Child("skipVerify"), absent(r.SkipVerify && (r.CACert != "" || r.CACertFile != ""), "cannot be combined with a CA (caCert/caCertFile): pick one (skipVerify is for development registries)"))
	es.Append(r.Auth().validate(p))
	if r == (Registry{}) {
		es.Add(p, "sets nothing: give caCert or caCertFile, skipVerify, or credentials (username and password, or identityToken)")
	}
	return es
}

// validateNode checks one registry of a NodeConfig: no CA contents and no
// credentials (node.yaml is world-readable).
func (r Registry) validateNode(p validation.Path) validation.Errors {
	var es validation.Errors
	es.Check(p.Child("caCert"), absent(r.CACert != "", "does not belong in the node config (node.yaml holds no file contents): write the CA to the node and give its path as caPath"))
	es.Check(p.Child("caCertFile"), absent(r.CACertFile != "", "is read by generate: in the node config give caPath, the CA's path on the node"))
	es.Check(p.Child("caPath"), optional(r.CAPath, validation.AbsPath))
	es.Check(p.Child("skipVerify"), absent(r.SkipVerify && r.CAPath != "", "cannot be combined with caPath: pick one (skipVerify is for development registries)"))
	es.Check(p.Child("username"), absent(r.Username != "", fmt.Sprintf(credentialsElsewhere, RegistryCredentialsPath)))
	es.Check(p.Child("password"), absent(r.Password != "", fmt.Sprintf(credentialsElsewhere, RegistryCredentialsPath)))
	es.Check(p.Child("identityToken"), absent(r.IdentityToken != "", fmt.Sprintf(credentialsElsewhere, RegistryCredentialsPath)))
	if r == (Registry{}) {
		es.Add(p, "sets nothing: give caPath or skipVerify (credentials go to containerd.credentialsFile)")
	}
	return es
}

// NodeRegistry is what the node config keeps of r: the CA's path and skipVerify.
func (r Registry) NodeRegistry(caPath string) Registry {
	return Registry{CAPath: caPath, SkipVerify: r.SkipVerify}
}
