package kubeversions

import (
	"strings"
	"testing"

	"github.com/provision-dev/provision/internal/testutil"
)

// TestMarkdown keeps docs/kubernetes-versions.md equal to the table.
func TestMarkdown(t *testing.T) {
	testutil.Golden(t, "../../docs/kubernetes-versions.md", []byte(Markdown()))
}

func TestTableIsOrderedAndComplete(t *testing.T) {
	for i, r := range table {
		if i > 0 && r.Minor != table[i-1].Minor+1 {
			t.Errorf("row %d: minor 1.%d follows 1.%d: the table must have no gaps", i, r.Minor, table[i-1].Minor)
		}
		if r.PauseImage == "" || r.Crictl == "" || r.CNIPlugins == "" || r.MinContainerd == "" || r.EOL == "" {
			t.Errorf("1.%d: every column is required: %+v", r.Minor, r)
		}
		if !strings.HasPrefix(r.Crictl, "v1."+itoa(r.Minor)+".") {
			t.Errorf("1.%d: crictl %s does not follow the kubelet minor", r.Minor, r.Crictl)
		}
	}
	if got := SupportedMinors(); strings.Join(got, ",") != "1.35,1.36,1.37" {
		t.Errorf("supported minors = %v, want 1.35, 1.36, 1.37", got)
	}
}

func itoa(i int) string { return Release{Minor: i}.String()[2:] }

func TestFor(t *testing.T) {
	tests := []struct {
		version   string
		minor     int
		supported bool
		err       string
	}{
		{"v1.37.2", 37, true, ""},
		{"v1.35.4", 35, true, ""},
		{"v1.31.4", 31, false, ""},
		{"v1.21.0", 21, false, ""},
		{"v1.38.0", 0, false, "newer than provision knows (newest 1.37"},
		{"v1.20.15", 0, false, "older than provision renders (oldest 1.21"},
		{"1.37.2", 0, false, "not of the form v1.MINOR.PATCH"},
		{"v2.0.0", 0, false, "not of the form v1.MINOR.PATCH"},
		{"v1.37", 0, false, "not of the form"},
		{"v1.037.1", 0, false, "not of the form"},
	}
	for _, tt := range tests {
		r, err := For(tt.version)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("For(%q) error = %v, want %q", tt.version, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("For(%q): %v", tt.version, err)
		}
		if r.Minor != tt.minor || r.IsSupported() != tt.supported {
			t.Errorf("For(%q) = 1.%d supported=%v, want 1.%d %v", tt.version, r.Minor, r.IsSupported(), tt.minor, tt.supported)
		}
		if (r.Warning() == "") != tt.supported {
			t.Errorf("For(%q).Warning() = %q", tt.version, r.Warning())
		}
	}
}

func TestPolicyColumns(t *testing.T) {
	tests := []struct {
		minor                          int
		inTree, cloudConfig, cgroupV1  bool
		endpointInConfig, dockershim   bool
		failCgroupV1Field, sysctlField bool
		pause                          string
	}{
		{23, true, true, true, false, true, false, false, "registry.k8s.io/pause:3.6"},
		{28, true, true, true, true, false, false, false, "registry.k8s.io/pause:3.9"},
		{29, false, true, true, true, false, false, false, "registry.k8s.io/pause:3.9"},
		{31, false, true, true, true, false, true, false, "registry.k8s.io/pause:3.10"},
		{34, false, false, true, true, false, true, false, "registry.k8s.io/pause:3.10.1"},
		{35, false, false, false, true, false, true, false, "registry.k8s.io/pause:3.10.1"},
		{37, false, false, false, true, false, true, true, "registry.k8s.io/pause:3.10.2"},
	}
	for _, tt := range tests {
		r, err := ForMinor(tt.minor, "")
		if err != nil {
			t.Fatal(err)
		}
		got := []bool{r.InTreeCloudProviders(), r.HasFlag("--cloud-config"), !r.FailCgroupV1, r.RuntimeEndpointInConfig(), r.Dockershim(), r.HasConfigField("failCgroupV1"), r.HasConfigField("defaultPodSysctls")}
		want := []bool{tt.inTree, tt.cloudConfig, tt.cgroupV1, tt.endpointInConfig, tt.dockershim, tt.failCgroupV1Field, tt.sysctlField}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("1.%d column %d = %v, want %v", tt.minor, i, got[i], want[i])
			}
		}
		if r.PauseImage != tt.pause {
			t.Errorf("1.%d pause = %s, want %s", tt.minor, r.PauseImage, tt.pause)
		}
		if !r.HasFlag("--node-ip") || !r.HasConfigField("maxPods") {
			t.Errorf("1.%d: unlisted flags and fields exist in every minor", tt.minor)
		}
	}
}

func TestCheckSkew(t *testing.T) {
	tests := []struct{ kubelet, server, err string }{
		{"v1.37.2", "v1.37.2", ""},
		{"v1.34.0", "v1.37.2", ""},
		{"v1.37.1", "v1.37.2+k3s1", ""},
		{"v1.33.9", "v1.37.2", "4 minors older than the API server v1.37.2: at most 3"},
		{"v1.37.2", "v1.36.3", "kubelet v1.37.2 is newer than the API server v1.36.3"},
		{"v1.37.3", "v1.37.2-eks-1", "newer than the API server"},
		{"v1.37.2", "garbage", "API server: version \"garbage\""},
	}
	for _, tt := range tests {
		err := CheckSkew(tt.kubelet, tt.server)
		if tt.err == "" {
			if err != nil {
				t.Errorf("CheckSkew(%s, %s): %v", tt.kubelet, tt.server, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("CheckSkew(%s, %s) = %v, want %q", tt.kubelet, tt.server, err, tt.err)
		}
	}
}

func TestPauseImages(t *testing.T) {
	got := PauseImages()
	seen := map[string]bool{}
	for _, p := range got {
		if seen[p] {
			t.Errorf("%s listed twice", p)
		}
		seen[p] = true
	}
	for _, r := range table {
		if !seen[r.PauseImage] {
			t.Errorf("1.%d: %s not listed", r.Minor, r.PauseImage)
		}
	}
}

func TestFailsOnCgroupV1(t *testing.T) {
	f, tr := false, true
	tests := []struct {
		minor int
		set   *bool
		want  bool
	}{
		{30, nil, false},
		{30, &tr, false}, // no failCgroupV1 field before 1.31: the setting is not rendered
		{31, nil, false},
		{31, &tr, true},
		{34, &f, false},
		{35, nil, true},
		{35, &f, false},
		{37, nil, true},
		{37, &tr, true},
	}
	for _, tt := range tests {
		r, err := ForMinor(tt.minor, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := r.FailsOnCgroupV1(tt.set); got != tt.want {
			t.Errorf("1.%d FailsOnCgroupV1(%v) = %v, want %v", tt.minor, tt.set, got, tt.want)
		}
	}
	if got := NewestOnCgroupV1(); got.Minor != 34 {
		t.Errorf("NewestOnCgroupV1 = %s, want 1.34", got)
	}
}
