package v1alpha1

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/validation"
)

const registrySecretMarker = "r3gS3cretPa55"

func testCA(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "generate", "testdata", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRegistriesValidate: every field of containerd.registries, in a
// GenerateConfig (node false) and a NodeConfig (node true): the error's path
// and message, and no message quoting a secret.
func TestRegistriesValidate(t *testing.T) {
	ca := testCA(t)
	const pw = registrySecretMarker
	for _, tc := range []struct {
		name  string
		node  bool
		c     Containerd
		field string // "" = valid
		msg   string
	}{
		{name: "generate CA and credentials", c: Containerd{Registries: map[string]Registry{"10.0.0.5:5000": {CACert: ca, Username: "ops", Password: pw}}}},
		{name: "generate CA file and token", c: Containerd{Registries: map[string]Registry{"registry.internal": {CACertFile: "ca.pem", IdentityToken: pw}}}},
		{name: "generate skipVerify", c: Containerd{Registries: map[string]Registry{"dev.internal:5000": {SkipVerify: true}}}},
		{name: "node caPath", node: true, c: Containerd{CredentialsFile: RegistryCredentialsPath, Registries: map[string]Registry{"10.0.0.5:5000": {CAPath: RegistryCAPath("10.0.0.5:5000")}}}},
		{name: "bad host", c: Containerd{Registries: map[string]Registry{"reg/../x": {SkipVerify: true}}}, field: "containerd.registries", msg: `registry "reg/../x" must be a host[:port]`},
		{name: "_default", c: Containerd{Registries: map[string]Registry{"_default": {SkipVerify: true}}}, field: "containerd.registries", msg: "must be a host[:port]"},
		{name: "empty", c: Containerd{Registries: map[string]Registry{"r.internal": {}}}, field: "containerd.registries[r.internal]", msg: "sets nothing"},
		{name: "node empty", node: true, c: Containerd{Registries: map[string]Registry{"r.internal": {}}}, field: "containerd.registries[r.internal]", msg: "sets nothing: give caPath or skipVerify"},
		{name: "caCert not PEM", c: Containerd{Registries: map[string]Registry{"r.internal": {CACert: "hello"}}}, field: "containerd.registries[r.internal].caCert", msg: "must be a PEM CERTIFICATE"},
		{name: "caCert private key", c: Containerd{Registries: map[string]Registry{"r.internal": {CACert: "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"}}}, field: "containerd.registries[r.internal].caCert", msg: `"PRIVATE KEY", must be CERTIFICATE`},
		{name: "caCert and file", c: Containerd{Registries: map[string]Registry{"r.internal": {CACert: ca, CACertFile: "ca.pem"}}}, field: "containerd.registries[r.internal].caCert", msg: "not both"},
		{name: "generate caPath", c: Containerd{Registries: map[string]Registry{"r.internal": {CAPath: "/x/ca.crt"}}}, field: "containerd.registries[r.internal].caPath", msg: "is set by generate"},
		{name: "skipVerify with CA", c: Containerd{Registries: map[string]Registry{"r.internal": {CACert: ca, SkipVerify: true}}}, field: "containerd.registries[r.internal].skipVerify", msg: "cannot be combined with a CA"},
		{name: "skipVerify with CA file", c: Containerd{Registries: map[string]Registry{"r.internal": {CACertFile: "ca.pem", SkipVerify: true}}}, field: "containerd.registries[r.internal].skipVerify", msg: "pick one"},
		{name: "username without password", c: Containerd{Registries: map[string]Registry{"r.internal": {Username: "ops"}}}, field: "containerd.registries[r.internal].password", msg: "is required with username"},
		{name: "password without username", c: Containerd{Registries: map[string]Registry{"r.internal": {Password: pw}}}, field: "containerd.registries[r.internal].username", msg: "is required with password"},
		{name: "token and username", c: Containerd{Registries: map[string]Registry{"r.internal": {IdentityToken: pw, Username: "ops", Password: pw}}}, field: "containerd.registries[r.internal].identityToken", msg: "excludes username and password"},
		{name: "password control char", c: Containerd{Registries: map[string]Registry{"r.internal": {Username: "ops", Password: pw + "\n"}}}, field: "containerd.registries[r.internal].password", msg: "printable ASCII"},
		{name: "password non-ASCII", c: Containerd{Registries: map[string]Registry{"r.internal": {Username: "ops", Password: pw + "é"}}}, field: "containerd.registries[r.internal].password", msg: "printable ASCII"},
		{name: "token too long", c: Containerd{Registries: map[string]Registry{"r.internal": {IdentityToken: strings.Repeat(pw, 1000)}}}, field: "containerd.registries[r.internal].identityToken", msg: "longer than 8192 bytes"},
		{name: "username colon", c: Containerd{Registries: map[string]Registry{"r.internal": {Username: "ops:" + pw, Password: pw}}}, field: "containerd.registries[r.internal].username", msg: "must not contain ':'"},
		{name: "username tab", c: Containerd{Registries: map[string]Registry{"r.internal": {Username: "o\tps", Password: pw}}}, field: "containerd.registries[r.internal].username", msg: "printable ASCII"},
		{name: "generate credentialsFile", c: Containerd{CredentialsFile: "/x.json"}, field: "containerd.credentialsFile", msg: "is set by generate"},
		{name: "node credentialsFile relative", node: true, c: Containerd{CredentialsFile: "creds.json"}, field: "containerd.credentialsFile", msg: "absolute"},
		{name: "node caCert", node: true, c: Containerd{Registries: map[string]Registry{"r.internal": {CACert: ca}}}, field: "containerd.registries[r.internal].caCert", msg: "give its path as caPath"},
		{name: "node caCertFile", node: true, c: Containerd{Registries: map[string]Registry{"r.internal": {CACertFile: "ca.pem"}}}, field: "containerd.registries[r.internal].caCertFile", msg: "give caPath"},
		{name: "node caPath relative", node: true, c: Containerd{Registries: map[string]Registry{"r.internal": {CAPath: "ca.crt"}}}, field: "containerd.registries[r.internal].caPath", msg: "absolute"},
		{name: "node skipVerify with caPath", node: true, c: Containerd{Registries: map[string]Registry{"r.internal": {CAPath: "/ca.crt", SkipVerify: true}}}, field: "containerd.registries[r.internal].skipVerify", msg: "cannot be combined with caPath"},
		{name: "node username", node: true, c: Containerd{Registries: map[string]Registry{"r.internal": {SkipVerify: true, Username: "ops"}}}, field: "containerd.registries[r.internal].username", msg: "containerd.credentialsFile"},
		{name: "node password", node: true, c: Containerd{Registries: map[string]Registry{"r.internal": {SkipVerify: true, Password: pw}}}, field: "containerd.registries[r.internal].password", msg: "node.yaml is world-readable"},
		{name: "node identityToken", node: true, c: Containerd{Registries: map[string]Registry{"r.internal": {SkipVerify: true, IdentityToken: pw}}}, field: "containerd.registries[r.internal].identityToken", msg: RegistryCredentialsPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := tc.c.validateRegistries(validation.Path("containerd"), tc.node)
			if tc.field == "" {
				if len(es) != 0 {
					t.Fatalf("valid registries refused: %v", es)
				}
				return
			}
			if len(es) != 1 || es[0].Field != tc.field || !strings.Contains(es[0].Message, tc.msg) {
				t.Fatalf("errors %v, want one at %s containing %q", es, tc.field, tc.msg)
			}
			if strings.Contains(es.Error(), pw) {
				t.Errorf("the error quotes a secret: %v", es)
			}
		})
	}
}

// TestRegistriesInConfigs: GenerateConfig.Validate and NodeConfig.Validate
// both check containerd.registries, each by its own rules.
func TestRegistriesInConfigs(t *testing.T) {
	gen := GenerateConfig{Containerd: Containerd{Registries: map[string]Registry{"r.internal": {CAPath: "/x"}}}}
	if !hasField(gen.Validate(""), "containerd.registries[r.internal].caPath") {
		t.Errorf("GenerateConfig.Validate accepts caPath: %v", gen.Validate(""))
	}
	node := NodeConfig{Containerd: Containerd{Registries: map[string]Registry{"r.internal": {Username: "u", Password: registrySecretMarker}}}}
	es := node.Validate("")
	if !hasField(es, "containerd.registries[r.internal].password") || strings.Contains(es.Error(), registrySecretMarker) {
		t.Errorf("NodeConfig.Validate: %v", es)
	}
}

func hasField(es validation.Errors, f string) bool {
	for _, e := range es {
		if e.Field == f {
			return true
		}
	}
	return false
}

// TestParseRegistryCredentials: the credentials file round-trips, and a
// malformed one is refused naming the host and field, never a value.
func TestParseRegistryCredentials(t *testing.T) {
	rc := RegistryCredentials{"10.0.0.5:5000": {Username: "ops", Password: registrySecretMarker}, "r.internal": {IdentityToken: registrySecretMarker}}
	data, err := rc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseRegistryCredentials(data)
	if err != nil || len(got) != 2 || got["10.0.0.5:5000"].Password != registrySecretMarker || got["r.internal"].IdentityToken != registrySecretMarker {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for _, tc := range []struct{ name, data, msg string }{
		{"not JSON", "password=" + registrySecretMarker, "syntax error at byte"},
		{"array", `["` + registrySecretMarker + `"]`, "wrong type"},
		{"unknown field", `{"r.internal": {"user": "ops", "password": "` + registrySecretMarker + `"}}`, `unknown field "user"`},
		{"wrong type", `{"r.internal": {"username": 1}}`, "wrong type"},
		{"trailing data", `{} {}`, "data after"},
		{"bad host", `{"r/x": {"identityToken": "` + registrySecretMarker + `"}}`, "must be a registry host"},
		{"no password", `{"r.internal": {"username": "ops"}}`, "[r.internal].password: is required with username"},
		{"empty entry", `{"r.internal": {}}`, "[r.internal]: has no credentials"},
		{"token and password", `{"r.internal": {"username": "u", "password": "` + registrySecretMarker + `", "identityToken": "` + registrySecretMarker + `"}}`, "[r.internal].identityToken: excludes"},
		{"control char", `{"r.internal": {"username": "u", "password": "` + registrySecretMarker + `\u0007"}}`, "[r.internal].password: must be printable ASCII"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRegistryCredentials([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v, want %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), registrySecretMarker) {
				t.Errorf("the error quotes a secret: %v", err)
			}
		})
	}
}
