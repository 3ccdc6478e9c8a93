package artifacts

import (
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/provision-dev/provision/internal/download"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/osprofiles"
)

// rows is one test row per table row: what the artifact is on a /usr/local/bin
// profile with the kubelet v1.37.2 on amd64. A table row without a test row fails.
var rows = map[string]struct {
	url      string
	nodePath string
	mode     fs.FileMode
	tarball  bool // needed only where containerd comes from the tarball
}{
	Kubelet:    {"https://dl.k8s.io/release/v1.37.2/bin/linux/amd64/kubelet", "/usr/local/bin/kubelet", 0o755, false},
	CNIPlugins: {"https://github.com/containernetworking/plugins/releases/download/v1.10.0/cni-plugins-linux-amd64-v1.10.0.tgz", "/var/cache/provision/cni-plugins.tgz", 0o644, false},
	Crictl:     {"https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.37.0/crictl-v1.37.0-linux-amd64.tar.gz", "/var/cache/provision/crictl.tgz", 0o644, false},
	Containerd: {"https://github.com/containerd/containerd/releases/download/v2.3.7/containerd-2.3.7-linux-amd64.tar.gz", "/var/cache/provision/containerd.tgz", 0o644, true},
	Runc:       {"https://github.com/opencontainers/runc/releases/download/v1.3.7/runc.amd64", "/usr/local/bin/runc", 0o755, true},
	Provision:  {"", "/usr/local/bin/provision", 0o755, false},
}

func TestTableRows(t *testing.T) {
	if len(rows) != len(All()) {
		t.Fatalf("%d test rows for %d artifacts: every artifact needs its test row", len(rows), len(All()))
	}
	nameRE := regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)
	fileRE := regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	names, files := map[string]bool{}, map[string]bool{}
	for _, a := range All() {
		t.Run(a.Name, func(t *testing.T) {
			want, ok := rows[a.Name]
			if !ok {
				t.Fatalf("no test row for %q", a.Name)
			}
			if !nameRE.MatchString(a.Name) || names[a.Name] {
				t.Errorf("name %q: must be a unique lowerCamel config key", a.Name)
			}
			names[a.Name] = true
			if !fileRE.MatchString(a.File) || files[a.File] {
				t.Errorf("file %q: must be a unique plain file name (bundle member artifacts/FILE)", a.File)
			}
			files[a.File] = true
			if a.Description == "" {
				t.Error("no description")
			}
			if a.Install != Binary && a.Install != Archive {
				t.Errorf("install %q: Binary or Archive", a.Install)
			}
			if a.Need != Always && a.Need != TarballRuntime && a.Need != OnRequest {
				t.Errorf("need %q: Always, TarballRuntime or OnRequest", a.Need)
			}
			switch a.Checksum {
			case SHA256File, SHA256SumFile, SumsInDir:
				if !a.Configurable() {
					t.Errorf("checksum %q is for downloads from a URL, but %s has no default source", a.Checksum, a.Name)
				}
			case LocalSHA256File:
				if a.Configurable() {
					t.Errorf("checksum %q is for local files, but %s is downloaded", a.Checksum, a.Name)
				}
			default:
				t.Errorf("checksum %q: SHA256File, SHA256SumFile, SumsInDir or LocalSHA256File", a.Checksum)
			}
			if (a.Checksum == SumsInDir) != (a.SumsFile != "") || (a.SumsFile != "" && !fileRE.MatchString(a.SumsFile)) {
				t.Errorf("sums file %q: a plain file name for SumsInDir rows, empty for the others", a.SumsFile)
			}
			if a.Configurable() != (a.URL != "") {
				t.Errorf("url %q: a config artifact needs a default URL, an on-request one none", a.URL)
			}
			if a.Version != "" && !regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+$`).MatchString(a.Version) {
				t.Errorf("version %q: [v]MAJOR.MINOR.PATCH", a.Version)
			}
			if a.Version != "" && a.VersionFrom != "" {
				t.Errorf("version %q and versionFrom %q: one source only", a.Version, a.VersionFrom)
			}
			if got := a.DefaultURL("v1.37.2", "amd64"); got != want.url {
				t.Errorf("DefaultURL = %q, want %q", got, want.url)
			}
			if got := a.NodePath("/usr/local/bin"); got != want.nodePath {
				t.Errorf("NodePath = %q, want %q", got, want.nodePath)
			}
			if a.Mode() != want.mode {
				t.Errorf("Mode = %o, want %o", a.Mode(), want.mode)
			}
			if (a.Need == TarballRuntime) != want.tarball {
				t.Errorf("need %q, test row says tarball-only=%v", a.Need, want.tarball)
			}
			if got, ok := Get(a.Name); !ok || got != a {
				t.Errorf("Get(%q) = %+v, %v", a.Name, got, ok)
			}
		})
	}
}

// TestDefaultURLs: every default URL, for supported kubelet versions and both
// arches, is an https URL naming that arch and version with nothing left to fill.
func TestDefaultURLs(t *testing.T) {
	for _, a := range Configurable() {
		for _, v := range []string{"v1.23.17", "v1.31.4", "v1.35.4", "v1.36.3", "v1.37.2"} {
			for _, arch := range []string{"amd64", "arm64"} {
				raw := a.DefaultURL(v, arch)
				u, err := url.Parse(raw)
				if err != nil || u.Scheme != "https" || u.Host == "" || strings.ContainsAny(raw, "{} ") {
					t.Errorf("%s %s %s: %q is not a complete https URL", a.Name, v, arch, raw)
					continue
				}
				version := a.DefaultVersion(v)
				if !strings.Contains(u.Path, "/"+strings.TrimPrefix(version, "v")) && !strings.Contains(u.Path, version) {
					t.Errorf("%s: %q does not name version %s", a.Name, raw, version)
				}
				if !strings.Contains(path.Base(u.Path), arch) && !strings.Contains(u.Path, "/"+arch+"/") {
					t.Errorf("%s: %q does not name arch %s", a.Name, raw, arch)
				}
			}
		}
	}
}

// TestVersionsFollowTheKubelet: crictl and the CNI plugins default to the
// kubelet minor's row of kubeversions; the kubelet to its own version; a
// version outside the table has no default URL for them (validation refuses it).
func TestVersionsFollowTheKubelet(t *testing.T) {
	tests := []struct {
		kubelet, artifact, want string
	}{
		{"v1.37.2", Crictl, "v1.37.0"},
		{"v1.37.2", CNIPlugins, "v1.10.0"},
		{"v1.37.2", Kubelet, "v1.37.2"},
		{"v1.35.4", Crictl, "v1.35.0"},
		{"v1.35.4", CNIPlugins, "v1.9.1"},
		{"v1.36.3", Crictl, "v1.36.0"},
		{"v1.23.17", Crictl, "v1.23.0"},
		{"v1.23.17", CNIPlugins, "v1.5.1"},
		{"v1.38.0", Crictl, ""},
		{"v1.20.1", CNIPlugins, ""},
	}
	for _, tt := range tests {
		a := MustGet(tt.artifact)
		if got := a.DefaultVersion(tt.kubelet); got != tt.want {
			t.Errorf("%s for kubelet %s = %q, want %q", tt.artifact, tt.kubelet, got, tt.want)
		}
		if tt.want == "" && a.DefaultURL(tt.kubelet, "amd64") != "" {
			t.Errorf("%s for kubelet %s: a default URL without a version", tt.artifact, tt.kubelet)
		}
	}
}

// upstream is what each project publishes beside a release asset, for the
// loopback server of TestChecksumConvention: the checksum file's path relative
// to the asset's and its body for the asset file name and hash. A row whose
// convention has no entry here fails.
var upstream = map[Checksum]func(name, sum string) (rel, body string){
	// dl.k8s.io's kubelet.sha256 is the bare hash.
	SHA256File: func(name, sum string) (string, string) { return name + ".sha256", sum },
	// containerd's containerd-X-linux-ARCH.tar.gz.sha256sum is sha256sum's line.
	SHA256SumFile: func(name, sum string) (string, string) {
		return name + ".sha256sum", sum + "  " + name + "\n"
	},
	// runc's runc.sha256sum lists every asset of the release, the other arches first.
	SumsInDir: func(name, sum string) (string, string) {
		other := strings.Repeat("0f", 32)
		return "runc.sha256sum", other + "  libseccomp-2.5.6.tar.gz\n" + other + "  runc.arm64\n" + other + "  runc.armel\n" +
			sum + "  " + name + "\n" + other + "  runc.ppc64le\n" + other + "  runc.tar.xz\n"
	},
}

// TestChecksumConvention: for every downloaded artifact, a loopback server lays
// out the asset and its checksum file as upstream does, under a mirror's path;
// the downloader, given the row's ChecksumURL of the mirror URL, fetches and
// verifies it, and asks for nothing else (no URL+".sha256" where upstream has none).
// A checksum file with no entry for the asset is refused.
func TestChecksumConvention(t *testing.T) {
	for _, a := range Configurable() {
		t.Run(a.Name, func(t *testing.T) {
			layout, ok := upstream[a.Checksum]
			if !ok {
				t.Fatalf("checksum convention %q has no upstream layout in this test", a.Checksum)
			}
			name := path.Base(a.DefaultURL("v1.37.2", "amd64"))
			payload := []byte("release asset " + name)
			sum := testutil.SHA256(payload)
			rel, body := layout(name, sum)
			var mu sync.Mutex
			var got []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				got = append(got, r.URL.Path)
				mu.Unlock()
				switch r.URL.Path {
				case "/mirror/" + name:
					w.Write(payload)
				case "/mirror/" + rel:
					w.Write([]byte(body))
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			u := srv.URL + "/mirror/" + name
			if want := srv.URL + "/mirror/" + rel; a.ChecksumURL(u) != want {
				t.Fatalf("ChecksumURL(%q) = %q, want %q", u, a.ChecksumURL(u), want)
			}
			dl := &download.Downloader{Attempts: 1}
			dest := filepath.Join(t.TempDir(), a.File)
			res, err := dl.Fetch(context.Background(), download.Request{URL: u, ChecksumURL: a.ChecksumURL(u), Dest: dest})
			if err != nil || res.SHA256 != sum {
				t.Fatalf("Fetch = %+v, %v; want sha256 %s", res, err, sum)
			}
			if want := "/mirror/" + rel + ",/mirror/" + name; strings.Join(got, ",") != want {
				t.Errorf("requests %v, want %s", got, want)
			}
			if a.MirrorLayout() == "" {
				t.Error("no MirrorLayout")
			}

			// The same checksum file published for another asset name: refused
			// unless it is a single bare entry (which names no file).
			renamed := u + "-renamed"
			_, err = dl.Checksum(context.Background(), download.Request{URL: renamed, ChecksumURL: a.ChecksumURL(u)})
			if a.Checksum == SumsInDir && (err == nil || !strings.Contains(err.Error(), "none for")) {
				t.Errorf("a sums file without an entry for %s: err = %v, want a refusal", path.Base(renamed), err)
			}
		})
	}
}

// TestChecksumURLForms: the convention applies to the path; a query (a signed
// mirror URL) stays at the end.
func TestChecksumURLForms(t *testing.T) {
	c, _ := Get(Containerd)
	r, _ := Get(Runc)
	k, _ := Get(Kubelet)
	for _, tc := range []struct {
		a       Artifact
		in, out string
	}{
		{k, "https://m/k/kubelet", "https://m/k/kubelet.sha256"},
		{c, "https://m/c.tar.gz?sig=1", "https://m/c.tar.gz.sha256sum?sig=1"},
		{r, "https://m/r/v1/runc.amd64", "https://m/r/v1/runc.sha256sum"},
		{r, "file:///srv/runc.amd64", "file:///srv/runc.sha256sum"},
		{r, "https://m/runc.amd64#x", "https://m/runc.sha256sum#x"},
	} {
		if got := tc.a.ChecksumURL(tc.in); got != tc.out {
			t.Errorf("%s.ChecksumURL(%q) = %q, want %q", tc.a.Name, tc.in, got, tc.out)
		}
	}
	if got := c.URLFor("v2.2.9", "v1.37.2", "arm64"); got != "https://github.com/containerd/containerd/releases/download/v2.2.9/containerd-2.2.9-linux-arm64.tar.gz" {
		t.Errorf("containerd URLFor(v2.2.9) = %q", got)
	}
	if got := r.URLFor("1.3.6", "v1.37.2", "amd64"); got != "https://github.com/opencontainers/runc/releases/download/v1.3.6/runc.amd64" {
		t.Errorf("runc URLFor(1.3.6) = %q", got)
	}
}

// TestRequired: every profile needs the artifacts its test row says (all but
// the tarball-only ones; those too where containerd comes from the tarball),
// in table order, never the OnRequest ones.
func TestRequired(t *testing.T) {
	for _, name := range osprofiles.Names() {
		p, err := osprofiles.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		var got, want []string
		for _, a := range Required(p) {
			got = append(got, a.Name)
		}
		for _, a := range All() {
			if a.Configurable() && (!rows[a.Name].tarball || p.Runtime == osprofiles.RuntimeTarball) {
				want = append(want, a.Name)
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: Required = %v, want %v", name, got, want)
		}
		if p.Runtime == osprofiles.RuntimeTarball && !strings.Contains(strings.Join(got, ","), Containerd+","+Runc) {
			t.Errorf("%s installs containerd from the tarball but Required = %v", name, got)
		}
	}
}
