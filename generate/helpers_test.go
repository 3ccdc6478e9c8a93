package generate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/osprofiles"
)

// readmeSpec is the README example: a 2 KiB CA and a 1 KiB OpenStack cloud-config
// installed for the external cloud-controller-manager, kubelet v1.37.2 (with
// failCgroupV1: false on the legacy profiles, whose hosts boot cgroup v1).
func readmeSpec(t testing.TB, os string) v1alpha1.GenerateConfig {
	t.Helper()
	abs := func(p string) string {
		a, err := filepath.Abs(filepath.Join("testdata", p))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	spec := v1alpha1.GenerateConfig{
		OS:                os,
		KubeletVersion:    "v1.37.2",
		APIServerURL:      "https://10.0.0.10:6443",
		TokenFile:         abs("token"),
		CACertFile:        abs("ca.crt"),
		CloudProvider:     "external",
		CloudConfigFile:   abs("cloud.conf"),
		ClusterDNS:        []string{"10.96.0.10"},
		Hostname:          "worker-1",
		SSHAuthorizedKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3f5Q2Xq0yQmQ7cX9mJtq3VbqHq3oYkq7o0Jm3sR1z ops@example"},
		ProvisionSource:   "https://example.com/provision/v0.1.0/provision-linux-amd64",
		ProvisionSHA256:   strings.Repeat("ab", 32),
	}
	if p, err := osprofiles.Get(os); err == nil && p.BootsCgroupV1() {
		// A legacy profile boots cgroup v1, which kubelet v1.37 refuses unless
		// the config opts out (TestLegacyProfilesOnCgroupV1 shows the refusal).
		optOut := false
		spec.FailCgroupV1 = &optOut
	}
	return spec
}

func testToken(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// combos is every supported profile × format.
func combos() []struct {
	Profile osprofiles.Profile
	Format  osprofiles.Format
} {
	var out []struct {
		Profile osprofiles.Profile
		Format  osprofiles.Format
	}
	for _, p := range osprofiles.All() {
		for _, f := range osprofiles.Formats() {
			if p.SupportsFormat(f) {
				out = append(out, struct {
					Profile osprofiles.Profile
					Format  osprofiles.Format
				}{p, f})
			}
		}
	}
	return out
}
