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
