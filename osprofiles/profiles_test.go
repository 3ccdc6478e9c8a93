package osprofiles

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDetectFixtures(t *testing.T) {
	for _, p := range All() {
		t.Run(p.Name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "os-release", p.Name))
			if err != nil {
				t.Fatalf("every profile needs an os-release fixture: %v", err)
			}
			got, err := Detect(data)
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if got.Name != p.Name {
				t.Fatalf("Detect = %q, want %q", got.Name, p.Name)
			}
		})
	}
}

// TestDetectVersions: a host's VERSION_ID picks the profile of its major
// release only, across neighbouring releases of the same ID.
func TestDetectVersions(t *testing.T) {
	tests := []struct{ osRelease, want string }{
		{"ID=rocky\nVERSION_ID=\"10.0\"\n", "rocky-10"},
		{"ID=\"rocky\"\nVERSION_ID=\"10.1\"\n", "rocky-10"},
		{"ID=rocky\nVERSION_ID=\"9.6\"\n", "rocky-9"},
		{"ID=debian\nVERSION_ID=\"13\"\nVERSION_CODENAME=trixie\n", "debian-13"},
		{"ID=debian\nVERSION_ID=\"12\"\n", "debian-12"},
		{"ID=ubuntu\nVERSION_ID=\"26.04\"\n", "ubuntu-26.04"},
		{"ID=ubuntu\nVERSION_ID=\"24.04\"\n", "ubuntu-24.04"},
		{"ID=ubuntu\nVERSION_ID=\"26.10\"\n", ""},
		{"ID=rocky\nVERSION_ID=\"1\"\n", ""},
		{"ID=debian\nVERSION_ID=\"1\"\n", ""},
		{"ID=debian\nVERSION_ID=\"130\"\n", ""},
	}
	for _, tt := range tests {
		got, err := Detect([]byte(tt.osRelease))
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("Detect(%q) = %s, want unsupported", tt.osRelease, got.Name)
		case tt.want != "" && (err != nil || got.Name != tt.want):
			t.Errorf("Detect(%q) = %q, %v; want %s", tt.osRelease, got.Name, err, tt.want)
		}
	}
}

func TestDetectErrors(t *testing.T) {
	tests := []struct {
		name, osRelease, wantErr string
	}{
		{"unknown distro", "ID=arch\n", `unsupported OS "arch"`},
		{"unknown version", "ID=ubuntu\nVERSION_ID=\"16.04\"\n", `unsupported OS "ubuntu 16.04"`},
		{"fedora without coreos variant", "ID=fedora\nVERSION_ID=40\n", `unsupported OS "fedora 40"`},
		{"no ID", "NAME=x\n", "no ID= line"},
		{"garbage line", "ID=debian\nthis is not key value\n", "line 2: expected KEY=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Detect([]byte(tt.osRelease))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
			}
			if strings.HasPrefix(tt.wantErr, "unsupported") && !strings.Contains(err.Error(), "ubuntu-22.04") {
				t.Fatalf("error should list supported profiles: %v", err)
			}
		})
	}
}

func TestGet(t *testing.T) {
	if _, err := Get("windows"); err == nil || !strings.Contains(err.Error(), "flatcar") {
		t.Fatalf("Get(windows) = %v, want error listing profiles", err)
	}
	for _, name := range []string{"ubuntu-18.04", "centos-7", "flatcar"} {
		p, err := Get(name)
		if err != nil || !p.Seed {
			t.Fatalf("%s must be a seed profile: %+v %v", name, p, err)
		}
	}
}

// TestLegacyProfiles: exactly the EOL seed OSes are legacy, and legacy is
// what boots cgroup v1; every profile says which cgroups it boots.
func TestLegacyProfiles(t *testing.T) {
	var legacy []string
	for _, p := range All() {
		if p.Legacy {
			legacy = append(legacy, p.Name)
		}
		if p.Legacy != p.BootsCgroupV1() {
			t.Errorf("%s: legacy %v but cgroups %q", p.Name, p.Legacy, p.Cgroups)
		}
		switch p.Cgroups {
		case CgroupV1, CgroupV2, CgroupV2Only:
		default:
			t.Errorf("%s: cgroups %q: want v1, v2 or v2-only", p.Name, p.Cgroups)
		}
	}
	if got := strings.Join(legacy, ","); got != "centos-7,ubuntu-18.04" {
		t.Errorf("legacy profiles = %s, want centos-7, ubuntu-18.04", got)
	}
	if p, _ := Get("ubuntu-26.04"); p.Cgroups != CgroupV2Only {
		t.Errorf("ubuntu-26.04 boots cgroups %q, want v2-only (systemd 258 removed v1)", p.Cgroups)
	}
}

func TestCapabilities(t *testing.T) {
	for _, p := range All() {
		if p.ImmutableUsr && p.PackageManager != NoPackages {
			t.Errorf("%s: immutable /usr with package manager %s", p.Name, p.PackageManager)
		}
		if p.ImmutableUsr && strings.HasPrefix(p.BinDir, "/usr/") && p.Name != "fedora-coreos" {
			t.Errorf("%s: binary dir %s is on read-only /usr", p.Name, p.BinDir)
		}
		if p.Runtime == RuntimePackage && p.ContainerdPackage == "" {
			t.Errorf("%s: package runtime without a package name", p.Name)
		}
		if !p.SupportsFormat(p.DefaultFormat) {
			t.Errorf("%s: default format %s unsupported", p.Name, p.DefaultFormat)
		}
		if p.DefaultUser == "" {
			t.Errorf("%s: no default user", p.Name)
		}
	}
}

func FuzzParseOSRelease(f *testing.F) {
	entries, _ := os.ReadDir(filepath.Join("testdata", "os-release"))
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join("testdata", "os-release", e.Name()))
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseOSRelease(data)
		if err == nil && r.ID == "" {
			t.Fatal("accepted os-release without ID")
		}
		if _, err := Detect(data); err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}
