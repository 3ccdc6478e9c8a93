package generate

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	bconfig "github.com/coreos/butane/config"
	bcommon "github.com/coreos/butane/config/common"
	ign35 "github.com/coreos/ignition/v2/config/v3_5"
	"github.com/vincent-petithory/dataurl"
	"sigs.k8s.io/yaml"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/generate/cloudinit"
	"github.com/provision-dev/provision/generate/ignition"
	"github.com/provision-dev/provision/generate/plan"
	"github.com/provision-dev/provision/osprofiles"
)

// machine is what a document does on a machine, decoded back from any format.
type machine struct {
	Hostname string
	Files    map[string]decodedFile
	Users    map[string][]string
	Units    map[string]decodedUnit
}

type decodedFile struct {
	Mode     int
	Contents []byte
}

type decodedUnit struct {
	Contents string
	Enabled  bool
}

// expected is what the plan says the machine must get; every format must decode to it.
func expected(p plan.Plan) machine {
	m := machine{Hostname: p.Hostname, Files: map[string]decodedFile{}, Users: map[string][]string{}, Units: map[string]decodedUnit{}}
	for _, f := range p.Files {
		m.Files[f.Path] = decodedFile{Mode: f.Mode, Contents: f.Contents}
	}
	for _, u := range p.Users {
		m.Users[u.Name] = u.SSHAuthorizedKeys
	}
	for _, u := range p.Units {
		m.Units[u.Name] = decodedUnit{Contents: u.Contents, Enabled: u.Enabled}
	}
	return m
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

// decodeCloudInit parses a cloud-config (gzipped or not) back, with Go's YAML parser.
func decodeCloudInit(t testing.TB, doc []byte, defaultUser string) machine {
	t.Helper()
	if bytes.HasPrefix(doc, []byte{0x1f, 0x8b}) {
		doc = gunzip(t, doc)
	}
	if !bytes.HasPrefix(doc, []byte(cloudinit.Header)) {
		t.Fatalf("cloud-config does not start with %q", cloudinit.Header)
	}
	var c cloudinit.Config
	if err := yaml.UnmarshalStrict(doc, &c); err != nil {
		t.Fatalf("parse cloud-config: %v", err)
	}
	m := machine{Hostname: c.Hostname, Files: map[string]decodedFile{}, Users: map[string][]string{}, Units: map[string]decodedUnit{}}
	if len(c.SSHAuthorizedKeys) > 0 {
		m.Users[defaultUser] = c.SSHAuthorizedKeys
	}
	for _, f := range c.WriteFiles {
		var mode int
		if _, err := fmt.Sscanf(f.Permissions, "0%o", &mode); err != nil {
			t.Fatalf("%s: permissions %q", f.Path, f.Permissions)
		}
		b := []byte(f.Content)
		switch f.Encoding {
		case "":
		case "b64", cloudinit.GzipEncoding:
			var err error
			if b, err = base64.StdEncoding.DecodeString(f.Content); err != nil {
				t.Fatalf("%s: %s: %v", f.Path, f.Encoding, err)
			}
			if f.Encoding == cloudinit.GzipEncoding {
				b = gunzip(t, b)
			}
		default:
			t.Fatalf("%s: unexpected encoding %q", f.Path, f.Encoding)
		}
		if dir, name := path.Split(f.Path); dir == plan.UnitDir+"/" {
			m.Units[name] = decodedUnit{Contents: string(b)}
			continue
		}
		m.Files[f.Path] = decodedFile{Mode: mode, Contents: b}
	}
	for _, cmd := range c.RunCmd {
		if len(cmd) >= 4 && strings.Join(cmd[:4], " ") == "systemctl enable --now --no-block" {
			for _, u := range cmd[4:] {
				d := m.Units[u]
				d.Enabled = true
				m.Units[u] = d
			}
		}
	}
	return m
}

// decodeIgnition parses an Ignition config (3.3-3.5) back with Ignition's own
// parser, decoding every data URL and gzip.
func decodeIgnition(t testing.TB, doc []byte) machine {
	t.Helper()
	cfg, rpt, err := ign35.ParseCompatibleVersion(doc)
	if err != nil {
		t.Fatalf("ignition parse: %v: %s", err, rpt)
	}
	m := machine{Files: map[string]decodedFile{}, Users: map[string][]string{}, Units: map[string]decodedUnit{}}
	for _, f := range cfg.Storage.Files {
		if f.Contents.Source == nil || f.Mode == nil {
			t.Fatalf("%s: no contents or mode", f.Path)
		}
		u, err := dataurl.DecodeString(*f.Contents.Source)
		if err != nil {
			t.Fatalf("%s: data URL: %v", f.Path, err)
		}
		b := u.Data
		if f.Contents.Compression != nil && *f.Contents.Compression == "gzip" {
			b = gunzip(t, b)
		}
		if f.Path == plan.HostnameFile {
			m.Hostname = strings.TrimSuffix(string(b), "\n")
			continue
		}
		m.Files[f.Path] = decodedFile{Mode: *f.Mode, Contents: b}
	}
	for _, u := range cfg.Passwd.Users {
		var keys []string
		for _, k := range u.SSHAuthorizedKeys {
			keys = append(keys, string(k))
		}
		m.Users[u.Name] = keys
	}
	for _, u := range cfg.Systemd.Units {
		d := decodedUnit{Enabled: u.Enabled != nil && *u.Enabled}
		if u.Contents != nil {
			d.Contents = *u.Contents
		}
		m.Units[u.Name] = d
	}
	return m
}

// realValidators checks out, s rendered as format, with the real validators:
// cloud-init's schema, Ignition's parser (no report entries), and Butane's
// translator, whose Ignition must be exactly s rendered as Ignition.
func realValidators(t testing.TB, s v1alpha1.GenerateConfig, format osprofiles.Format, out []byte) {
	t.Helper()
	switch format {
	case osprofiles.CloudInit:
		cloudInitSchema(t, out)
	case osprofiles.Ignition:
		if rpt, err := ignition.Parse(ignition.DefaultVersion, out); err != nil || len(rpt.Entries) > 0 {
			t.Fatalf("ignition: %v %s", err, rpt)
		}
	case osprofiles.Butane:
		ign, err := Render(s, osprofiles.Ignition)
		if err != nil {
			t.Fatal(err)
		}
		if got := translateButane(t, out); !bytes.Equal(got, ign) {
			t.Errorf("Butane's translation differs from the rendered Ignition\nbutane: %s\nignition: %s", got, ign)
		}
	}
}

// translateButane runs Butane's own translator with its default options
// (resource auto-compression on), strictly: any report entry fails.
func translateButane(t testing.TB, doc []byte) []byte {
	t.Helper()
	out, rpt, err := bconfig.TranslateBytes(doc, bcommon.TranslateBytesOptions{})
	if err != nil {
		t.Fatalf("butane translate: %v: %s", err, rpt)
	}
	if len(rpt.Entries) > 0 {
		t.Fatalf("butane strict: report not empty: %s", rpt)
	}
	return out
}

func compareMachines(t testing.TB, got, want machine) {
	t.Helper()
	if got.Hostname != want.Hostname {
		t.Errorf("hostname = %q, want %q", got.Hostname, want.Hostname)
	}
	if len(got.Files) != len(want.Files) {
		t.Errorf("files: got %d, want %d", len(got.Files), len(want.Files))
	}
	for p, w := range want.Files {
		g, ok := got.Files[p]
		switch {
		case !ok:
			t.Errorf("file %s missing", p)
		case g.Mode != w.Mode:
			t.Errorf("file %s: mode %o, want %o", p, g.Mode, w.Mode)
		case !bytes.Equal(g.Contents, w.Contents):
			t.Errorf("file %s: contents differ (%d vs %d bytes)", p, len(g.Contents), len(w.Contents))
		}
	}
	gu, _ := json.Marshal(got.Users)
	wu, _ := json.Marshal(want.Users)
	if !bytes.Equal(gu, wu) {
		t.Errorf("users = %s, want %s", gu, wu)
	}
	gn, _ := json.Marshal(got.Units)
	wn, _ := json.Marshal(want.Units)
	if !bytes.Equal(gn, wn) {
		t.Errorf("units = %s, want %s", gn, wn)
	}
}

// decodeAny decodes a document of any format into what the machine gets.
func decodeAny(t testing.TB, doc []byte, f osprofiles.Format, prof osprofiles.Profile, ignVersion string, gz bool) machine {
	t.Helper()
	switch f {
	case osprofiles.CloudInit:
		return decodeCloudInit(t, doc, prof.DefaultUser)
	case osprofiles.Ignition:
		return decodeIgnition(t, doc)
	default:
		return decodeIgnition(t, translateButane(t, doc))
	}
}

// need fails the test (never skips) when a tool is missing.
func need(t testing.TB, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s not found: install it (apt-get install -y %s)", tool, pkg)
	}
	return p
}

// cloudInitSchema runs Debian's `cloud-init schema --config-file` on doc.
func cloudInitSchema(t testing.TB, doc []byte) {
	t.Helper()
	need(t, "cloud-init", "cloud-init")
	if bytes.HasPrefix(doc, []byte{0x1f, 0x8b}) {
		doc = gunzip(t, doc)
	}
	f := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(f, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("cloud-init", "schema", "--config-file", f).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Valid cloud-config") {
		t.Fatalf("cloud-init schema: %v\n%s", err, out)
	}
}

// pyYAMLWriteFiles loads the cloud-config with PyYAML (the parser cloud-init
// uses) and returns write_files' contents decoded as cloud-init's
// cc_write_files decodes them (b64, gz+b64), so the Go parser is not the only judge.
func pyYAMLWriteFiles(t testing.TB, doc []byte) map[string][]byte {
	t.Helper()
	need(t, "python3", "python3-yaml")
	f := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(f, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	const script = `import base64, gzip, json, sys, yaml
d = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
def decode(w):
    enc, c = w.get("encoding", ""), w["content"]
    if enc == "":
        return c.encode("utf-8")
    b = base64.b64decode(c)
    return gzip.decompress(b) if enc == "gz+b64" else b
json.dump({w["path"]: base64.b64encode(decode(w)).decode() for w in d["write_files"]}, sys.stdout)`
	out, err := exec.Command("python3", "-c", script, f).Output()
	if err != nil {
		t.Fatalf("PyYAML: %v", err)
	}
	var m map[string][]byte // JSON base64 strings decode into []byte
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

var _ = ignition.DefaultVersion
