package generate

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/osprofiles"
)

const (
	registryPassword = "r3gistryPa55-MARKER"
	registryToken    = "r3gistryT0ken-MARKER"
	registryHost     = "10.0.0.5:5000"
)

// registrySpec is the README example with a private registry as the e2e
// gives it: an upstream mirrored to 10.0.0.5:5000, which serves TLS with its
// own CA and wants a username and password; plus a development registry
// (skipVerify) and one with an identity token.
func registrySpec(t testing.TB, os string) v1alpha1.GenerateConfig {
	t.Helper()
	s := readmeSpec(t, os)
	ca, err := readTestdata("ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	s.Containerd.RegistryMirrors = map[string][]string{"registry.example.com": {"https://" + registryHost}}
	s.Containerd.Registries = map[string]v1alpha1.Registry{
		registryHost:        {CACert: string(ca), Username: "puller", Password: registryPassword},
		"dev.internal:5000": {SkipVerify: true},
		"ghcr.internal":     {IdentityToken: registryToken},
	}
	return s
}

func readTestdata(name string) ([]byte, error) { return os.ReadFile(filepath.Join("testdata", name)) }

func registryCases() []struct {
	os     string
	format osprofiles.Format
} {
	return []struct {
		os     string
		format osprofiles.Format
	}{{"ubuntu-22.04", osprofiles.CloudInit}, {"flatcar", osprofiles.Ignition}, {"flatcar", osprofiles.Butane}}
}

// TestRegistryPlan: the CA goes to certs.d/HOST/ca.crt (0644), the
// credentials to RegistryCredentialsPath (0600, JSON the node parses back);
// node.yaml keeps caPath, skipVerify and the file's path, never a credential;
// no other file holds one.
func TestRegistryPlan(t *testing.T) {
	p, err := BuildPlan(registrySpec(t, "ubuntu-24.04"))
	if err != nil {
		t.Fatal(err)
	}
	var creds, node, ca []byte
	for _, f := range p.Files {
		switch f.Path {
		case v1alpha1.RegistryCredentialsPath:
			creds = f.Contents
			if f.Mode != 0o600 {
				t.Errorf("%s mode %o, want 0600", f.Path, f.Mode)
			}
			continue
		case v1alpha1.NodeConfigPath:
			node = f.Contents
		case v1alpha1.RegistryCAPath(registryHost):
			ca = f.Contents
			if f.Mode != 0o644 {
				t.Errorf("%s mode %o, want 0644", f.Path, f.Mode)
			}
		}
		if bytes.Contains(f.Contents, []byte(registryPassword)) || bytes.Contains(f.Contents, []byte(registryToken)) {
			t.Errorf("%s holds a registry credential", f.Path)
		}
	}
	rc, err := v1alpha1.ParseRegistryCredentials(creds)
	if err != nil {
		t.Fatalf("credentials file: %v", err)
	}
	want := v1alpha1.RegistryCredentials{registryHost: {Username: "puller", Password: registryPassword}, "ghcr.internal": {IdentityToken: registryToken}}
	if fmt.Sprint(rc) != fmt.Sprint(want) {
		t.Errorf("credentials %v, want %v", rc, want)
	}
	if ref, _ := readTestdata("ca.crt"); !bytes.Equal(ca, ref) {
		t.Errorf("registry CA not written byte for byte")
	}
	var nc v1alpha1.NodeConfig
	if err := yaml.UnmarshalStrict(node, &nc); err != nil {
		t.Fatal(err)
	}
	wantRegs := map[string]v1alpha1.Registry{registryHost: {CAPath: "/etc/containerd/certs.d/10.0.0.5:5000/ca.crt"}, "dev.internal:5000": {SkipVerify: true}}
	if fmt.Sprint(nc.Containerd.Registries) != fmt.Sprint(wantRegs) || nc.Containerd.CredentialsFile != v1alpha1.RegistryCredentialsPath {
		t.Errorf("node.yaml registries %v, credentialsFile %q; want %v and %s", nc.Containerd.Registries, nc.Containerd.CredentialsFile, wantRegs, v1alpha1.RegistryCredentialsPath)
	}
}

// TestRegistryCAFile: caCertFile is read as the top-level caCertFile is; no
// credentials means no credentials file and no credentialsFile.
func TestRegistryCAFile(t *testing.T) {
	s := readmeSpec(t, "ubuntu-24.04")
	s.Containerd.Registries = map[string]v1alpha1.Registry{"r.internal": {CACertFile: s.CACertFile}}
	p, err := BuildPlan(s)
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{}
	for _, f := range p.Files {
		paths[f.Path] = true
		if f.Path == v1alpha1.NodeConfigPath && bytes.Contains(f.Contents, []byte("credentialsFile")) {
			t.Errorf("node.yaml names a credentials file without credentials:\n%s", f.Contents)
		}
	}
	if !paths[v1alpha1.RegistryCAPath("r.internal")] || paths[v1alpha1.RegistryCredentialsPath] {
		t.Errorf("files %v: want the CA and no credentials file", paths)
	}
}

// TestRegistryGolden: a registry with CA, credentials and a mirror in every
// format (-update rewrites).
func TestRegistryGolden(t *testing.T) {
	for _, c := range registryCases() {
		t.Run(c.os+"/"+string(c.format), func(t *testing.T) {
			out, err := Render(registrySpec(t, c.os), c.format)
			if err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, filepath.Join("testdata", "golden", "registries", filepath.Base(goldenName(c.os, c.format))), out)
		})
	}
}

// TestRegistryRealValidators: cloud-init's schema, Ignition's parser and
// Butane's translator (to exactly the rendered Ignition) accept the outputs,
// and every format decodes back to the plan (the CA at its path, the
// credentials file 0600).
func TestRegistryRealValidators(t *testing.T) {
	for _, c := range registryCases() {
		for _, gz := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%s/gzip=%v", c.os, c.format, gz), func(t *testing.T) {
				s := registrySpec(t, c.os)
				s.Gzip = gz
				out, err := Render(s, c.format)
				if err != nil {
					t.Fatal(err)
				}
				realValidators(t, s, c.format, out)
				p, err := BuildPlan(s)
				if err != nil {
					t.Fatal(err)
				}
				prof, _ := osprofiles.Get(c.os)
				compareMachines(t, decodeAny(t, out, c.format, prof, "", gz), expected(p))
			})
		}
	}
}

// TestRegistrySizes reports the userdata of the README example with one
// registry (CA, credentials, mirror) in every format, against issue 11's 8 KiB.
func TestRegistrySizes(t *testing.T) {
	for _, c := range registryCases() {
		s := registrySpec(t, c.os)
		base, err := Render(readmeSpec(t, c.os), c.format)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Render(s, c.format)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s/%s: %d bytes (README example %d, +%d)", c.os, c.format, len(out), len(base), len(out)-len(base))
		if strings.Count(string(out), "BEGIN CERTIFICATE") > strings.Count(string(base), "BEGIN CERTIFICATE")+1 {
			t.Errorf("%s/%s: the registry CA is embedded more than once", c.os, c.format)
		}
	}
}

// TestRegistryParseConfig: a config file's registries decode strictly, a
// relative caCertFile is taken against the file's directory (as caCertFile),
// and the document renders.
func TestRegistryParseConfig(t *testing.T) {
	base, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	doc := "apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nos: ubuntu-24.04\nkubeletVersion: v1.37.2\n" +
		"apiServerURL: https://10.0.0.10:6443\ntokenFile: token\ncaCertFile: ca.crt\nprovisionSource: https://example.com/p\n" +
		"provisionSHA256: " + strings.Repeat("ab", 32) + "\ncontainerd:\n  registryMirrors: {registry.example.com: [\"https://10.0.0.5:5000\"]}\n" +
		"  registries:\n    10.0.0.5:5000: {caCertFile: ca.crt, username: puller, password: " + registryPassword + "}\n"
	s, err := ParseConfig([]byte(doc), base)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Containerd.Registries[registryHost].CACertFile; got != filepath.Join(base, "ca.crt") {
		t.Errorf("caCertFile = %q, want it under %s", got, base)
	}
	if _, err := Render(s, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConfig([]byte(strings.Replace(doc, "username:", "user:", 1)), base); err == nil || strings.Contains(err.Error(), registryPassword) {
		t.Errorf("unknown field: %v", err)
	}
}
