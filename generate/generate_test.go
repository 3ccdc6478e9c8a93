package generate

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/generate/butane"
	"github.com/provision-dev/provision/generate/cloudinit"
	"github.com/provision-dev/provision/generate/ignition"
	"github.com/provision-dev/provision/generate/plan"
	"github.com/provision-dev/provision/generate/setup"
	"github.com/provision-dev/provision/internal/kubeconfig"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/node/nodeconfig"
	"github.com/provision-dev/provision/osprofiles"
)

func goldenName(profile string, f osprofiles.Format) string {
	ext := map[osprofiles.Format]string{osprofiles.CloudInit: "yaml", osprofiles.Ignition: "ign", osprofiles.Butane: "bu"}[f]
	return filepath.Join("testdata", "golden", profile+"."+string(f)+"."+ext)
}

// TestGolden: every profile × supported format, byte for byte (-update rewrites).
func TestGolden(t *testing.T) {
	for _, c := range combos() {
		t.Run(c.Profile.Name+"/"+string(c.Format), func(t *testing.T) {
			out, err := Render(readmeSpec(t, c.Profile.Name), c.Format)
			if err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, goldenName(c.Profile.Name, c.Format), out)
		})
	}
}

// TestRealValidators runs the real validators on every profile × format, plain and gzipped.
func TestRealValidators(t *testing.T) {
	for _, c := range combos() {
		for _, gz := range []bool{false, true} {
			c, gz := c, gz
			t.Run(fmt.Sprintf("%s/%s/gzip=%v", c.Profile.Name, c.Format, gz), func(t *testing.T) {
				t.Parallel()
				s := readmeSpec(t, c.Profile.Name)
				s.Gzip = gz
				out, err := Render(s, c.Format)
				if err != nil {
					t.Fatal(err)
				}
				switch c.Format {
				case osprofiles.CloudInit:
					cloudInitSchema(t, out)
				case osprofiles.Ignition:
					rpt, err := ignition.Parse(ignition.DefaultVersion, out)
					if err != nil || len(rpt.Entries) > 0 {
						t.Fatalf("ignition: %v %s", err, rpt)
					}
				case osprofiles.Butane:
					translateButane(t, out)
				}
			})
		}
	}
}

// TestIgnitionValidateBinary runs Debian's ignition-validate (specs up to 3.3) on 3.3 output.
func TestIgnitionValidateBinary(t *testing.T) {
	need(t, "ignition-validate", "ignition")
	for _, p := range []string{"flatcar", "fedora-coreos"} {
		s := readmeSpec(t, p)
		s.IgnitionVersion = "3.3"
		out, err := Render(s, osprofiles.Ignition)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "config.ign")
		if err := os.WriteFile(f, out, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("ignition-validate", f).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Fatalf("ignition-validate %s: %v\n%s", p, err, out)
		}
	}
}

// TestButaneTranslatesToTheSameIgnition: for every profile, spec version and
// compression, Butane's translation of the Butane output is byte for byte the
// Ignition output.
func TestButaneTranslatesToTheSameIgnition(t *testing.T) {
	for _, p := range osprofiles.All() {
		for _, v := range ignition.Versions() {
			for _, gz := range []bool{false, true} {
				s := readmeSpec(t, p.Name)
				s.IgnitionVersion, s.Gzip = v, gz
				bu, err := Render(s, osprofiles.Butane)
				if p.ButaneVariant == "flatcar" && v == "3.5" {
					if es, ok := err.(validation.Errors); !ok || es[0].Field != "ignitionVersion" {
						t.Fatalf("flatcar butane 3.5: want an ignitionVersion error, got %v", err)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				ign, err := Render(s, osprofiles.Ignition)
				if err != nil {
					t.Fatal(err)
				}
				if got := translateButane(t, bu); !bytes.Equal(got, ign) {
					t.Errorf("%s %s gzip=%v: Butane's translation differs from the rendered Ignition\nbutane: %.300s\nignition: %.300s", p.Name, v, gz, got, ign)
				}
			}
		}
	}
}

// adversarial returns specs whose values try to break the documents' structure.
func adversarial(t testing.TB) map[string]v1alpha1.GenerateConfig {
	t.Helper()
	weird := "key: value\n# not a comment\n\"quoted\" 'single' `back`\n- item\n---\n...\n|\n>\n{a: [b]}\n" +
		"unicode: Grüße, 日本語, emoji 🚀, RTL \u202e\n\ttab\n  leading spaces\ntrailing spaces   \n" +
		"%00 %s ${HOME} $(id) \\n \\\\ <>&\n\n\nno final newline"
	big := strings.Repeat("0123456789abcdef: \"#'\n", 64*1024/22+1)[:64*1024]
	specs := map[string]v1alpha1.GenerateConfig{}
	add := func(name string, mut func(*v1alpha1.GenerateConfig)) {
		for _, os := range []string{"ubuntu-22.04", "flatcar"} {
			s := readmeSpec(t, os)
			s.CloudConfigFile = ""
			s.CloudConfig = "x = 1\n"
			mut(&s)
			specs[name+"/"+os] = s
		}
	}
	add("weird cloud-config", func(s *v1alpha1.GenerateConfig) { s.CloudConfig = weird })
	add("crlf and control bytes", func(s *v1alpha1.GenerateConfig) { s.CloudConfig = "a = 1\r\nb = \x01\x7f\u0085\u2028\ufeff\r\n" })
	add("binary cloud-config", func(s *v1alpha1.GenerateConfig) { s.CloudConfig = "\xff\xfe\x00\x01binary\x80" })
	add("64 KiB cloud-config", func(s *v1alpha1.GenerateConfig) { s.CloudConfig = big })
	add("yaml-ish only", func(s *v1alpha1.GenerateConfig) { s.CloudConfig = "true" })
	add("ssh key comments", func(s *v1alpha1.GenerateConfig) {
		s.SSHAuthorizedKeys = []string{
			`ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3f5Q2Xq0yQmQ7cX9mJtq3VbqHq3oYkq7o0Jm3sR1z "quoted": #hash 'single' Grüße 🚀`,
			`ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 yes`,
			`ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY= - item: {x}`,
		}
	})
	add("no hostname, no keys, no cloud config", func(s *v1alpha1.GenerateConfig) {
		s.Hostname, s.SSHAuthorizedKeys, s.CloudConfig, s.CloudProvider = "", nil, "", ""
	})
	add("http source with percent", func(s *v1alpha1.GenerateConfig) {
		s.ProvisionSource = "http://mirror.internal:8080/p%20x/provision?a=1&b=%41#frag"
		s.AllowHTTPSource = true
		s.Hostname = "a.b-c.example"
	})
	return specs
}

// TestRoundTrip parses every output back and compares every file, mode, key,
// unit and the hostname with the plan, and the plan with the inputs.
func TestRoundTrip(t *testing.T) {
	for name, s := range adversarial(t) {
		for _, f := range osprofiles.Formats() {
			for _, gz := range []bool{false, true} {
				s, f, gz := s, f, gz
				prof, _ := osprofiles.Get(s.OS)
				if !prof.SupportsFormat(f) {
					continue
				}
				t.Run(fmt.Sprintf("%s/%s/gzip=%v", name, f, gz), func(t *testing.T) {
					s.Gzip = gz
					p, err := BuildPlan(s)
					if err != nil {
						t.Fatal(err)
					}
					checkPlanAgainstInputs(t, s, prof, p)
					out, err := Render(s, f)
					if err != nil {
						t.Fatal(err)
					}
					compareMachines(t, decodeAny(t, out, f, prof, "", gz), expected(p))
				})
			}
		}
	}
}

// TestCloudInitPyYAML: cloud-init's own YAML parser reads every write_files content back exactly.
func TestCloudInitPyYAML(t *testing.T) {
	for name, s := range adversarial(t) {
		if s.OS != "ubuntu-22.04" {
			continue
		}
		p, err := BuildPlan(s)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Render(s, osprofiles.CloudInit)
		if err != nil {
			t.Fatal(err)
		}
		got := pyYAMLWriteFiles(t, out)
		for _, f := range p.Files {
			c, ok := got[f.Path]
			if !ok {
				t.Fatalf("%s: %s missing", name, f.Path)
			}
			if !bytes.Equal(c, f.Contents) {
				t.Errorf("%s: %s: PyYAML reads different contents", name, f.Path)
			}
		}
		cloudInitSchema(t, out)
	}
}

// checkPlanAgainstInputs ties the plan to the user's inputs (not to itself).
func checkPlanAgainstInputs(t testing.TB, s v1alpha1.GenerateConfig, prof osprofiles.Profile, p plan.Plan) {
	t.Helper()
	files := map[string][]byte{}
	for _, f := range p.Files {
		files[f.Path] = f.Contents
	}
	ca, _ := os.ReadFile(s.CACertFile)
	if !bytes.Equal(files[v1alpha1.CACertPath], ca) {
		t.Error("ca.crt is not the input CA byte for byte")
	}
	if s.CloudConfig != "" && string(files[v1alpha1.CloudConfigPath]) != s.CloudConfig {
		t.Error("cloud-config is not the input byte for byte")
	}
	if s.CloudConfig == "" && files[v1alpha1.CloudConfigPath] != nil {
		t.Error("cloud-config written though none was given")
	}
	tok, err := kubeconfig.Token(files[v1alpha1.BootstrapKubeconfigPath])
	if err != nil || tok != testToken(t) {
		t.Errorf("bootstrap kubeconfig token wrong (err %v)", err)
	}
	nc, err := nodeconfig.Parse(files[v1alpha1.NodeConfigPath])
	if err != nil {
		t.Fatalf("node.yaml: %v", err)
	}
	if nc.OSProfile != s.OS || nc.Kubernetes.Version != s.KubeletVersion || nc.Kubernetes.CloudProvider != s.CloudProvider || nc.Arch != "amd64" {
		t.Errorf("node.yaml = %+v", nc)
	}
	if bytes.Contains(files[v1alpha1.NodeConfigPath], []byte(testToken(t))) {
		t.Error("node.yaml holds the token")
	}
	if !bytes.Equal(files[setup.ScriptPath], setup.Script()) {
		t.Error("setup.sh differs from the embedded script")
	}
	if p.Hostname != s.Hostname {
		t.Errorf("hostname %q", p.Hostname)
	}
	if len(s.SSHAuthorizedKeys) > 0 && (len(p.Users) != 1 || p.Users[0].Name != prof.DefaultUser || strings.Join(p.Users[0].SSHAuthorizedKeys, "\n") != strings.Join(s.SSHAuthorizedKeys, "\n")) {
		t.Errorf("users = %+v", p.Users)
	}
	if len(p.Units) != 1 || !strings.Contains(p.Units[0].Contents, strings.ReplaceAll(s.ProvisionSource, "%", "%%")) ||
		!strings.Contains(p.Units[0].Contents, ProvisionBinary(prof)) {
		t.Errorf("unit = %+v", p.Units)
	}
}

// TestSizeTarget: the README example fits 8 KiB raw in every format, with or
// without --gzip; the example plus a realistic pool (poolSpec) fits 8 KiB raw
// as cloud-init (TestPoolUserdataSize measures it in every format and
// Ignition version, with the example's 4096-bit CA and a kubeadm 2048-bit
// one); every output fits AWS's 16 KiB.
func TestSizeTarget(t *testing.T) {
	var table strings.Builder
	for _, spec := range []struct {
		name string
		make func(testing.TB, string) v1alpha1.GenerateConfig
		// in8K reports whether a format, gzipped or not, is held to 8 KiB.
		in8K func(f osprofiles.Format, gz bool) bool
	}{
		{"example", readmeSpec, func(osprofiles.Format, bool) bool { return true }},
		{"pool", poolSpec, func(f osprofiles.Format, _ bool) bool { return f == osprofiles.CloudInit }},
	} {
		for _, f := range osprofiles.Formats() {
			for _, gz := range []bool{false, true} {
				s := spec.make(t, "ubuntu-22.04")
				s.Gzip = gz
				out, err := Render(s, f)
				if err != nil {
					t.Fatal(err)
				}
				r := Sizes(out)
				fmt.Fprintf(&table, "%-7s %-10s gzip=%-5v raw %5d  gzip %5d  base64 %5d\n", spec.name, f, gz, r.Raw, r.Gzip, r.Base64)
				if r.Raw > 8192 && spec.in8K(f, gz) {
					t.Errorf("%s %s gzip=%v: %d bytes raw, over the 8 KiB target", spec.name, f, gz, r.Raw)
				}
				if !r.Fits(Limits[0]) {
					t.Errorf("%s: does not fit AWS's 16 KiB", f)
				}
			}
		}
		// Every profile's own default format fits too.
		for _, p := range osprofiles.All() {
			out, err := Render(spec.make(t, p.Name), "")
			if err != nil {
				t.Fatal(err)
			}
			if len(out) > 8192 && spec.in8K(p.DefaultFormat, false) {
				t.Errorf("%s %s default format %s: %d bytes", spec.name, p.Name, p.DefaultFormat, len(out))
			}
			fmt.Fprintf(&table, "%-7s %-14s default %-10s raw %5d\n", spec.name, p.Name, p.DefaultFormat, len(out))
		}
	}
	t.Logf("README example and pool sizes:\n%s", table.String())
}

func TestDeterministic(t *testing.T) {
	for _, c := range combos() {
		for _, gz := range []bool{false, true} {
			s := readmeSpec(t, c.Profile.Name)
			s.Gzip = gz
			a, err := Render(s, c.Format)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := Render(s, c.Format)
			if !bytes.Equal(a, b) {
				t.Fatalf("%s/%s gzip=%v: two renders differ", c.Profile.Name, c.Format, gz)
			}
		}
	}
}

func TestGzipCloudInitIsWholeDocument(t *testing.T) {
	s := readmeSpec(t, "ubuntu-22.04")
	plain, _ := Render(s, osprofiles.CloudInit)
	s.Gzip = true
	gz, err := Render(s, osprofiles.CloudInit)
	if err != nil {
		t.Fatal(err)
	}
	// The whole document is compressed, its files left plain (the outer gzip
	// compresses them better than per-file gz+b64 would); it writes the same
	// machine as the plain document, in fewer bytes.
	doc := gunzip(t, gz)
	if bytes.Contains(doc, []byte("encoding: "+cloudinit.GzipEncoding)) || len(gz) >= len(plain) {
		t.Fatalf("gzip output is not the gzipped plain-entry document (%d vs %d bytes)", len(gz), len(plain))
	}
	compareMachines(t, decodeCloudInit(t, doc, "ubuntu"), decodeCloudInit(t, plain, "ubuntu"))
	// Deterministic header: no name, mtime 0.
	if gz[4]|gz[5]|gz[6]|gz[7] != 0 || gz[3]&0x08 != 0 {
		t.Fatal("gzip header carries a name or mtime")
	}
}

func TestDefaultFormatAndButaneVariant(t *testing.T) {
	out, err := Render(readmeSpec(t, "flatcar"), "")
	if err != nil || !bytes.HasPrefix(out, []byte(`{"ignition":{"version":"3.4.0"}`)) {
		t.Fatalf("flatcar default: %v %.40s", err, out)
	}
	out, err = Render(readmeSpec(t, "ubuntu-22.04"), "")
	if err != nil || !bytes.HasPrefix(out, []byte("#cloud-config\n")) {
		t.Fatalf("ubuntu default: %v %.40s", err, out)
	}
	for os, variant := range map[string]string{"flatcar": "variant: flatcar\nversion: 1.1.0\n", "fedora-coreos": "variant: fcos\nversion: 1.5.0\n", "debian-12": "variant: fcos\n"} {
		out, err := Render(readmeSpec(t, os), osprofiles.Butane)
		if err != nil || !bytes.HasPrefix(out, []byte(variant)) {
			t.Fatalf("%s butane: %v %.40s", os, err, out)
		}
	}
	if v, err := butane.Version("flatcar", "3.3"); err != nil || v != "1.0.0" {
		t.Fatal(v, err)
	}
}
