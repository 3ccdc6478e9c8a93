package generate

import (
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
)

// TestLegacyProfilesOnCgroupV1: the legacy profiles boot cgroup v1, so a
// kubelet that refuses cgroup v1 (1.35+ by default, or failCgroupV1: true) is
// refused for them, naming --os, the kubelet version and the way out; with
// failCgroupV1: false it is accepted and the setting reaches node.yaml.
func TestLegacyProfilesOnCgroupV1(t *testing.T) {
	f, tr := false, true
	tests := []struct {
		os, version  string
		failCgroupV1 *bool
		err          []string // substrings of the --os error; none: accepted
	}{
		{"ubuntu-18.04", "v1.35.4", nil, []string{"ubuntu-18.04 is a legacy profile", "cgroup v1", "kubelet v1.35.4", "defaults to true in 1.35", "use kubelet 1.34 or older", "set failCgroupV1: false"}},
		{"centos-7", "v1.37.2", nil, []string{"centos-7 is a legacy profile", "kubelet v1.37.2", "set failCgroupV1: false"}},
		{"centos-7", "v1.33.0", &tr, []string{"kubelet v1.33.0 would not start with failCgroupV1: true"}},
		{"centos-7", "v1.37.2", &f, nil},
		{"ubuntu-18.04", "v1.35.4", &f, nil},
		{"ubuntu-18.04", "v1.34.0", nil, nil},
		{"ubuntu-18.04", "v1.23.17", nil, nil},
		{"ubuntu-18.04", "v1.30.0", &tr, nil}, // a 1.30 kubelet has no failCgroupV1: not rendered, not refused
		{"ubuntu-22.04", "v1.37.2", nil, nil},
		{"ubuntu-26.04", "v1.37.2", &tr, nil},
		{"debian-13", "v1.35.4", nil, nil},
		{"rocky-10", "v1.36.3", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.os+"/"+tt.version, func(t *testing.T) {
			s := readmeSpec(t, tt.os)
			s.KubeletVersion, s.CloudProvider, s.FailCgroupV1 = tt.version, "external", tt.failCgroupV1
			p, err := BuildPlan(s)
			if len(tt.err) > 0 {
				es, ok := err.(validation.Errors)
				if !ok || len(es) != 1 || es[0].Field != "os" || es[0].Flag != "--os" {
					t.Fatalf("want one --os / os error, got %v", err)
				}
				for _, w := range tt.err {
					if !strings.Contains(es[0].Error(), w) {
						t.Errorf("error %q does not say %q", es[0].Error(), w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var nodeYAML string
			for _, f := range p.Files {
				if f.Path == v1alpha1.NodeConfigPath {
					nodeYAML = string(f.Contents)
				}
			}
			want := ""
			if tt.failCgroupV1 != nil {
				want = map[bool]string{true: "failCgroupV1: true", false: "failCgroupV1: false"}[*tt.failCgroupV1]
			}
			if got := strings.Contains(nodeYAML, "failCgroupV1"); got != (want != "") || !strings.Contains(nodeYAML, want) {
				t.Errorf("node.yaml: want %q (none when unset):\n%s", want, nodeYAML)
			}
		})
	}
}
