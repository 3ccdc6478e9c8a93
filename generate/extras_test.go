package generate

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/generate/plan"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/internal/unitverify"
	"github.com/provision-dev/provision/osprofiles"
)

const (
	extraSecret = "token=s3cr3t-extra-value\n"
	extraSource = "https://downloads.example.com/node-exporter/v1.8.2/node_exporter"
)

var extraUnits = []v1alpha1.Unit{
	{Name: "node-exporter.service", Enabled: true, Content: "[Unit]\nDescription=Prometheus node exporter\nAfter=network-online.target\nWants=network-online.target\n\n" +
		"[Service]\nEnvironmentFile=/etc/default/node-exporter\nExecStart=/usr/local/bin/node_exporter --web.listen-address=:9100\nRestart=always\n\n" +
		"[Install]\nWantedBy=multi-user.target\n"},
	{Name: "cleanup.timer", Content: "[Unit]\nDescription=Weekly cleanup\n\n[Timer]\nOnCalendar=weekly\nUnit=cleanup.service\n"},
	{Name: "cleanup.service", Content: "[Unit]\nDescription=Cleanup\n\n[Service]\nType=oneshot\nExecStart=/usr/bin/true\n"},
}

// extrasSpec is the README example with extra files and units (CABPK's files);
// withSource adds a remote file (Ignition and Butane only).
func extrasSpec(t testing.TB, os string, withSource bool) v1alpha1.GenerateConfig {
	s := readmeSpec(t, os)
	s.Files = []v1alpha1.File{
		{Path: "/etc/motd", Content: "Managed by provision.\n"},
		{Path: "/etc/default/node-exporter", Mode: 0o600, Content: extraSecret},
		{Path: "/etc/sysctl.d/90-pool.conf", Mode: 0o640, Content: "vm.max_map_count = 262144\n"},
		{Path: "/etc/pool/blob.bin", Content: "\x00\x01binary\xff"},
	}
	if withSource {
		s.Files = append(s.Files, v1alpha1.File{Path: "/usr/local/bin/node_exporter", Mode: 0o755, Source: extraSource, SHA256: strings.Repeat("cd", 32)})
	}
	s.Units = append([]v1alpha1.Unit(nil), extraUnits...)
	return s
}

func extrasCases() []struct {
	os     string
	format osprofiles.Format
	source bool
} {
	return []struct {
		os     string
		format osprofiles.Format
		source bool
	}{
		{"ubuntu-22.04", osprofiles.CloudInit, false},
		{"flatcar", osprofiles.Ignition, true},
		{"flatcar", osprofiles.Butane, true},
		{"fedora-coreos", osprofiles.Butane, true},
	}
}

// TestExtrasGolden: extra files and units, natively in every format (-update rewrites).
func TestExtrasGolden(t *testing.T) {
	for _, c := range extrasCases() {
		t.Run(c.os+"/"+string(c.format), func(t *testing.T) {
			out, err := Render(extrasSpec(t, c.os, c.source), c.format)
			if err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, filepath.Join("testdata", "golden", "extras", filepath.Base(goldenName(c.os, c.format))), out)
		})
	}
}

// TestExtrasRealValidators: cloud-init's schema, Ignition's parser and Butane's
// translator (to exactly the rendered Ignition) accept the outputs, plain and
// gzipped, and every format decodes back to the plan (inline files).
func TestExtrasRealValidators(t *testing.T) {
	for _, c := range extrasCases() {
		for _, gz := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%s/gzip=%v", c.os, c.format, gz), func(t *testing.T) {
				s := extrasSpec(t, c.os, c.source)
				s.Gzip = gz
				out, err := Render(s, c.format)
				if err != nil {
					t.Fatal(err)
				}
				realValidators(t, s, c.format, out)
				// Round trip without the remote file (decoders read data URLs only).
				s.Files = s.Files[:4]
				p, err := BuildPlan(s)
				if err != nil {
					t.Fatal(err)
				}
				out, err = Render(s, c.format)
				if err != nil {
					t.Fatal(err)
				}
				prof, _ := osprofiles.Get(c.os)
				compareMachines(t, decodeAny(t, out, c.format, prof, "", gz), expected(p))
			})
		}
	}
}

// TestExtrasIgnitionSource: a remote file is Ignition's source with its sha256 verification.
func TestExtrasIgnitionSource(t *testing.T) {
	out, err := Render(extrasSpec(t, "flatcar", true), osprofiles.Ignition)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`"contents":{"source":%q,"verification":{"hash":"sha256-%s"}},"mode":493`, extraSource, strings.Repeat("cd", 32))
	if !bytes.Contains(out, []byte(want)) {
		t.Fatalf("no %s in\n%s", want, out)
	}
}

// TestExtrasOrder: provision's files and setup unit first, then the extras in
// the config's order; the cloud-config enables units after write_files has
// written every file (runcmd runs in the final stage).
func TestExtrasOrder(t *testing.T) {
	p, err := BuildPlan(extrasSpec(t, "ubuntu-22.04", false))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range p.Units {
		names = append(names, u.Name)
	}
	if got := strings.Join(names, " "); got != "provision-setup.service node-exporter.service cleanup.timer cleanup.service" {
		t.Fatalf("units %s", got)
	}
	if f := p.Files[len(p.Files)-4]; f.Path != "/etc/motd" || f.Mode != 0o644 || !f.Overwrite {
		t.Fatalf("first extra file %+v", f)
	}
	if f := p.Files[len(p.Files)-3]; f.Mode != 0o600 {
		t.Fatalf("secret file mode %o", f.Mode)
	}
	out, err := Render(extrasSpec(t, "ubuntu-22.04", false), osprofiles.CloudInit)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("- - systemctl\n  - enable\n  - --now\n  - --no-block\n  - provision-setup.service\n  - node-exporter.service\n")) {
		t.Fatalf("runcmd does not enable the extra unit:\n%s", out)
	}
}

// TestExtrasUnitsVerify runs systemd-analyze verify on the extra units as written.
func TestExtrasUnitsVerify(t *testing.T) {
	if err := unitverify.Available(); err != nil {
		t.Skip(err)
	}
	p, err := BuildPlan(extrasSpec(t, "ubuntu-22.04", false))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := unitverify.InstallTargets(root); err != nil {
		t.Fatal(err)
	}
	for _, f := range p.Files {
		write(t, filepath.Join(root, f.Path), f.Contents, os.FileMode(f.Mode))
	}
	// The unit's ExecStart binary (a remote file in Ignition) must exist for verify.
	for _, bin := range []string{"usr/local/bin/node_exporter", "usr/bin/true"} {
		write(t, filepath.Join(root, bin), []byte("#!/bin/sh\n"), 0o755)
	}
	var names []string
	for _, u := range p.Units[1:] {
		write(t, filepath.Join(root, plan.UnitDir, u.Name), []byte(u.Contents), 0o644)
		names = append(names, u.Name)
	}
	if out, err := unitverify.Verify(root, names...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

func write(t testing.TB, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
}

// TestExtrasValidateErrors: every refusal names the field path and the allowed
// form, and never quotes a file's or unit's contents.
func TestExtrasValidateErrors(t *testing.T) {
	file := func(f v1alpha1.File) func(*v1alpha1.GenerateConfig) {
		return func(s *v1alpha1.GenerateConfig) { s.Files = append(s.Files, f) }
	}
	unit := func(u v1alpha1.Unit) func(*v1alpha1.GenerateConfig) {
		return func(s *v1alpha1.GenerateConfig) { s.Units = append(s.Units, u) }
	}
	svc := "[Service]\nExecStart=/usr/bin/true\n"
	tests := []struct {
		name   string
		mutate func(*v1alpha1.GenerateConfig)
		format osprofiles.Format
		field  string
		msg    string
	}{
		{"relative path", file(v1alpha1.File{Path: "etc/motd", Content: extraSecret}), "", "files[0].path", "must be an absolute path"},
		{"unclean path", file(v1alpha1.File{Path: "/etc/../etc/motd", Content: extraSecret}), "", "files[0].path", "clean absolute path"},
		{"missing path", file(v1alpha1.File{Content: extraSecret}), "", "files[0].path", "is required"},
		{"root", file(v1alpha1.File{Path: "/", Content: extraSecret}), "", "files[0].path", "must name a file"},
		{"node.yaml", file(v1alpha1.File{Path: v1alpha1.NodeConfigPath, Content: extraSecret}), "", "files[0].path", "/etc/provision/node.yaml is under /etc/provision, which provision owns"},
		{"setup.sh", file(v1alpha1.File{Path: "/etc/provision/setup.sh", Content: extraSecret}), "", "files[0].path", "/etc/provision/setup.sh is under /etc/provision"},
		{"bootstrap kubeconfig", file(v1alpha1.File{Path: v1alpha1.BootstrapKubeconfigPath, Content: extraSecret}), "", "files[0].path", "/etc/kubernetes/bootstrap-kubelet.conf is written by provision itself"},
		{"ca", file(v1alpha1.File{Path: v1alpha1.CACertPath, Content: extraSecret}), "", "files[0].path", "/etc/kubernetes/pki/ca.crt is written by provision itself"},
		{"hostname file", file(v1alpha1.File{Path: "/etc/hostname", Content: extraSecret}), "", "files[0].path", "/etc/hostname is written by provision itself"},
		{"setup unit file", file(v1alpha1.File{Path: "/etc/systemd/system/provision-setup.service", Content: extraSecret}), "", "files[0].path", "written by provision itself"},
		{"unit as file", func(s *v1alpha1.GenerateConfig) {
			s.Units = []v1alpha1.Unit{{Name: "a.service", Content: svc}}
			s.Files = []v1alpha1.File{{Path: "/etc/systemd/system/a.service", Content: svc}}
		}, "", "files[0].path", "is the file of units[0]"},
		{"duplicate path", func(s *v1alpha1.GenerateConfig) {
			s.Files = []v1alpha1.File{{Path: "/etc/a", Content: "x"}, {Path: "/etc/a", Content: extraSecret}}
		}, "", "files[1].path", "is also the path of files[0]"},
		{"setuid", file(v1alpha1.File{Path: "/usr/local/bin/x", Mode: 0o4755, Content: extraSecret}), "", "files[0].mode", "must not set setuid, setgid or sticky bits (04755)"},
		{"setgid", file(v1alpha1.File{Path: "/usr/local/bin/x", Mode: 0o2755, Content: extraSecret}), "", "files[0].mode", "setgid"},
		{"world-writable", file(v1alpha1.File{Path: "/etc/a", Mode: 0o666, Content: extraSecret}), "", "files[0].mode", "must not be world-writable (0666)"},
		{"mode too big", file(v1alpha1.File{Path: "/etc/a", Mode: 0o10000, Content: extraSecret}), "", "files[0].mode", "0000 to 0777"},
		{"negative mode", file(v1alpha1.File{Path: "/etc/a", Mode: -1, Content: extraSecret}), "", "files[0].mode", "0000 to 0777"},
		{"content and source", file(v1alpha1.File{Path: "/etc/a", Content: extraSecret, Source: extraSource, SHA256: strings.Repeat("a", 64)}), osprofiles.Ignition, "files[0].content", "content or source, not both"},
		{"source without sha256", file(v1alpha1.File{Path: "/etc/a", Source: extraSource}), osprofiles.Ignition, "files[0].sha256", "is required with source"},
		{"source bad sha256", file(v1alpha1.File{Path: "/etc/a", Source: extraSource, SHA256: "ABC"}), osprofiles.Ignition, "files[0].sha256", "64 lower-case hex"},
		{"http source", file(v1alpha1.File{Path: "/etc/a", Source: "http://example.com/a", SHA256: strings.Repeat("a", 64)}), osprofiles.Ignition, "files[0].source", "must be an https:// URL"},
		{"source with credentials", file(v1alpha1.File{Path: "/etc/a", Source: "https://u:p@example.com/a", SHA256: strings.Repeat("a", 64)}), osprofiles.Ignition, "files[0].source", "credentials"},
		{"sha256 without source", file(v1alpha1.File{Path: "/etc/a", Content: extraSecret, SHA256: strings.Repeat("a", 64)}), "", "files[0].sha256", "only for a file with a source"},
		{"source in cloud-init", file(v1alpha1.File{Path: "/etc/a", Source: extraSource, SHA256: strings.Repeat("a", 64)}), osprofiles.CloudInit, "files[0].source", "not supported by the cloud-init format"},
		{"content too big", file(v1alpha1.File{Path: "/etc/a", Content: strings.Repeat("x", MaxFileSize+1)}), "", "files[0].content", "larger than"},
		{"unit name missing", unit(v1alpha1.Unit{Content: svc}), "", "units[0].name", "is required, a systemd unit name"},
		{"unit name no suffix", unit(v1alpha1.Unit{Name: "exporter", Content: svc}), "", "units[0].name", "a type suffix .service"},
		{"unit name slash", unit(v1alpha1.Unit{Name: "../x.service", Content: svc}), "", "units[0].name", "systemd unit name"},
		{"unit name space", unit(v1alpha1.Unit{Name: "a b.service", Content: svc}), "", "units[0].name", "systemd unit name"},
		{"setup unit", unit(v1alpha1.Unit{Name: "provision-setup.service", Content: svc}), "", "units[0].name", "provision's own setup unit"},
		{"duplicate unit", func(s *v1alpha1.GenerateConfig) {
			s.Units = []v1alpha1.Unit{{Name: "a.service", Content: svc}, {Name: "a.service", Content: svc}}
		}, "", "units[1].name", "is also the name of units[0]"},
		{"enabled template", unit(v1alpha1.Unit{Name: "getty@.service", Enabled: true, Content: svc + "[Install]\nWantedBy=multi-user.target\n"}), "", "units[0].enabled", "getty@1.service"},
		{"unit content empty", unit(v1alpha1.Unit{Name: "a.service"}), "", "units[0].content", "is required, the unit file's text"},
		{"unit content garbage", unit(v1alpha1.Unit{Name: "a.service", Content: "[Service\n" + extraSecret}), "", "units[0].content", "must be a systemd unit file"},
		{"unit without section", unit(v1alpha1.Unit{Name: "a.service", Content: "# " + extraSecret}), "", "units[0].content", "at least one section"},
		{"enabled without install", unit(v1alpha1.Unit{Name: "a.service", Enabled: true, Content: svc}), "", "units[0].content", "needs an [Install] section with WantedBy="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := readmeSpec(t, "flatcar")
			if tt.format == osprofiles.CloudInit {
				s.OS = "ubuntu-22.04"
			}
			tt.mutate(&s)
			_, err := Render(s, tt.format)
			es, ok := validation.AsErrors(err)
			if !ok {
				t.Fatalf("want validation errors, got %v", err)
			}
			found := false
			for _, e := range es {
				if e.Field == tt.field && strings.Contains(e.Message, tt.msg) {
					found = true
				}
			}
			if !found {
				t.Fatalf("want %s: ...%s..., got %v", tt.field, tt.msg, es)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("the error quotes a file's contents: %v", err)
			}
		})
	}
}

// TestExtrasGood: valid extras are accepted, defaults applied.
func TestExtrasGood(t *testing.T) {
	for _, c := range extrasCases() {
		if _, err := Render(extrasSpec(t, c.os, c.source), c.format); err != nil {
			t.Fatalf("%s %s: %v", c.os, c.format, err)
		}
	}
	if (v1alpha1.File{}).FileMode() != 0o644 || (v1alpha1.File{Mode: 0o600}).FileMode() != 0o600 {
		t.Fatal("FileMode")
	}
}

// extrasYAML is a GenerateConfig document with extra files and units; the
// caller appends more files entries.
func extrasYAML(os, format string) string {
	return "apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nos: " + os + "\nformat: " + format + "\nkubeletVersion: v1.37.2\n" +
		"apiServerURL: https://10.0.0.10:6443\ntokenFile: token\ncaCertFile: ca.crt\nprovisionSource: https://example.com/p\n" +
		"provisionSHA256: " + strings.Repeat("ab", 32) + "\n" +
		"units:\n- name: a.service\n  enabled: true\n  content: |\n    [Service]\n    ExecStart=/bin/true\n    [Install]\n    WantedBy=multi-user.target\n" +
		"files:\n- path: /etc/default/a\n  mode: 0600\n  content: |\n    A=1\n"
}

// TestExtrasParseOctalMode: a YAML mode such as 0600 is octal, as in CABPK's permissions.
func TestExtrasParseOctalMode(t *testing.T) {
	base, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseConfig([]byte(extrasYAML("ubuntu-24.04", "cloud-init")+"- path: /etc/b\n  mode: 0640\n  content: b\n- path: /etc/c\n  content: c\n"), base)
	if err != nil {
		t.Fatal(err)
	}
	if got := []int{s.Files[0].FileMode(), s.Files[1].FileMode(), s.Files[2].FileMode()}; got[0] != 0o600 || got[1] != 0o640 || got[2] != 0o644 {
		t.Fatalf("modes %o", got)
	}
	if len(s.Units) != 1 || !s.Units[0].Enabled {
		t.Fatalf("units %+v", s.Units)
	}
	if _, err := Render(s, ""); err != nil {
		t.Fatal(err)
	}
}
