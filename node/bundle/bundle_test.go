package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/internal/download"
	"github.com/provision-dev/provision/internal/fsroot"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/osprofiles"
)

// testServer serves fake artifacts and, for each, URL.sha256.
func testServer(t testing.TB, files map[string][]byte) *httptest.Server {
	return testutil.NewArtifactServer(t, files).Server
}

// testFiles are the served artifacts, /FILE for every row of internal/artifacts.
func testFiles() map[string][]byte {
	files := map[string][]byte{}
	for _, a := range artifacts.Configurable() {
		files["/"+a.File] = []byte("fake " + a.Description + "\n")
	}
	return files
}

func profile(t testing.TB, name string) osprofiles.Profile {
	p, err := osprofiles.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testSpec pins kubelet's sha256 and leaves the others to URL.sha256.
func testSpec(t testing.TB, srv *httptest.Server, files map[string][]byte, prof string) Spec {
	return Spec{
		KubeletVersion: "v1.37.2", Profile: profile(t, prof), Arch: "amd64",
		Artifacts: testArtifacts(srv, files),
	}
}

// testArtifacts points every artifact at srv, kubelet's sha256 pinned.
func testArtifacts(srv *httptest.Server, files map[string][]byte) v1alpha1.Artifacts {
	out := v1alpha1.Artifacts{}
	for _, a := range artifacts.Configurable() {
		out[a.Name] = v1alpha1.Artifact{URL: srv.URL + "/" + a.File}
	}
	out[artifacts.Kubelet] = v1alpha1.Artifact{URL: srv.URL + "/kubelet", SHA256: testutil.SHA256(files["/kubelet"])}
	return out
}

var fastDL = &download.Downloader{Attempts: 1, StallTimeout: 2 * time.Second}

func create(t testing.TB, spec Spec) (string, Manifest) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bundle.tar")
	m, err := Create(context.Background(), spec, out, fastDL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out, m
}

func expect(t testing.TB, prof string) *Expect {
	return &Expect{KubeletVersion: "v1.37.2", OSProfile: profile(t, prof), Arch: "amd64"}
}

func TestCreateManifestAndDeterminism(t *testing.T) {
	files := testFiles()
	srv := testServer(t, files)
	out, m := create(t, testSpec(t, srv, files, "rocky-9"))
	want := map[string]string{} // artifact -> served path
	wantNames := []string{}
	for _, a := range artifacts.Required(profile(t, "rocky-9")) {
		want[a.Name] = "/" + a.File
		wantNames = append(wantNames, "artifacts/"+a.File)
	}
	sort.Strings(wantNames)
	wantNames = append([]string{"manifest.json"}, wantNames...)
	if len(m.Artifacts) != len(want) {
		t.Fatalf("manifest lists %d artifacts, want %d: %+v", len(m.Artifacts), len(want), m)
	}
	for name, p := range want {
		e, ok := m.Get(name)
		if !ok || e.SHA256 != testutil.SHA256(files[p]) || e.Size != int64(len(files[p])) || e.Source != srv.URL+p || e.File != FilePath(name) {
			t.Errorf("%s: %+v", name, e)
		}
	}
	if m.KubeletVersion != "v1.37.2" || m.OSProfile != "rocky-9" || m.Arch != "amd64" {
		t.Errorf("manifest header: %+v", m)
	}
	// The tar's members: manifest first, then artifacts sorted, fixed headers.
	data, _ := os.ReadFile(out)
	tr := tar.NewReader(bytes.NewReader(data))
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(time.Unix(0, 0)) || h.Mode != 0o644 {
			t.Errorf("%s: header not fixed: %+v", h.Name, h)
		}
	}
	if strings.Join(names, " ") != strings.Join(wantNames, " ") {
		t.Errorf("members %v, want %v", names, wantNames)
	}
	sidecar, _ := os.ReadFile(out + ".sha256")
	if string(sidecar) != testutil.SHA256(data)+"  bundle.tar\n" {
		t.Errorf("bundle.tar.sha256 = %q, want %q", sidecar, testutil.SHA256(data))
	}
	// Same inputs, same bytes.
	again, _ := create(t, testSpec(t, srv, files, "rocky-9"))
	data2, _ := os.ReadFile(again)
	if !bytes.Equal(data, data2) {
		t.Errorf("two bundles of the same artifacts differ")
	}
	// A package-runtime profile needs no containerd/runc.
	_, m = create(t, testSpec(t, srv, files, "debian-12"))
	if _, ok := m.Get(artifacts.Containerd); ok || len(m.Artifacts) != len(artifacts.Required(profile(t, "debian-12"))) {
		t.Errorf("debian-12 bundle: %+v", m.Artifacts)
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	files := testFiles()
	srv := testServer(t, files)
	for name, mutate := range map[string]func(*Spec){
		"404": func(s *Spec) {
			s.Artifacts[artifacts.Crictl] = v1alpha1.Artifact{URL: srv.URL + "/missing", SHA256: s.Artifacts[artifacts.Crictl].SHA256}
		},
		"pinned mismatch": func(s *Spec) {
			s.Artifacts[artifacts.Kubelet] = v1alpha1.Artifact{SHA256: strings.Repeat("0", 64), URL: s.Artifacts[artifacts.Kubelet].URL}
		},
		"no provision sum": func(s *Spec) {
			s.ProvisionBinary = filepath.Join(t.TempDir(), "provision")
			os.WriteFile(s.ProvisionBinary, []byte("bin"), 0o755)
		},
	} {
		t.Run(name, func(t *testing.T) {
			spec := testSpec(t, srv, files, "rocky-9")
			mutate(&spec)
			dir := t.TempDir()
			out := filepath.Join(dir, "bundle.tar")
			_, err := Create(context.Background(), spec, out, fastDL, nil)
			if err == nil {
				t.Fatal("Create succeeded")
			}
			t.Log(err)
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("left %v in the output directory", entries)
			}
		})
	}
}

func TestProvisionBinary(t *testing.T) {
	files := testFiles()
	srv := testServer(t, files)
	spec := testSpec(t, srv, files, "debian-12")
	spec.ProvisionBinary = filepath.Join(t.TempDir(), "provision-linux-amd64")
	bin := []byte("\x7fELF provision")
	os.WriteFile(spec.ProvisionBinary, bin, 0o755)
	os.WriteFile(spec.ProvisionBinary+".sha256", []byte(testutil.SHA256(bin)+"  provision-linux-amd64\n"), 0o644)
	out, m := create(t, spec)
	if e, ok := m.Get(artifacts.Provision); !ok || e.SHA256 != testutil.SHA256(bin) {
		t.Fatalf("provision entry: %+v", m.Artifacts)
	}
	x := expect(t, "debian-12")
	x.Provision = true
	if _, err := Verify(out, Options{Expect: x}); err != nil {
		t.Fatal(err)
	}
	// A wrong .sha256 beside the binary fails the bundle.
	os.WriteFile(spec.ProvisionBinary+".sha256", []byte(strings.Repeat("a", 64)+"\n"), 0o644)
	if _, err := Create(context.Background(), spec, filepath.Join(t.TempDir(), "b.tar"), fastDL, nil); err == nil {
		t.Error("a provision binary whose .sha256 does not match was bundled")
	}
}

// members reads a bundle into names and contents, in order.
func members(t *testing.T, file string) ([]string, map[string][]byte) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var names []string
	data := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		names = append(names, h.Name)
		data[h.Name] = b
	}
	return names, data
}

// rewrite writes a bundle with the given members, in order, with fixed headers.
func rewrite(t *testing.T, names []string, data map[string][]byte) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "tampered.tar")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		tw.WriteHeader(header(n, int64(len(data[n]))))
		tw.Write(data[n])
	}
	tw.Close()
	os.WriteFile(out, buf.Bytes(), 0o644)
	return out
}

func TestInstallAndTamper(t *testing.T) {
	files := testFiles()
	srv := testServer(t, files)
	good, m := create(t, testSpec(t, srv, files, "rocky-9"))
	srv.Close()
	opts := Options{Expect: expect(t, "rocky-9")}

	dir := filepath.Join(t.TempDir(), "var/lib/provision/bundle")
	got, changed, err := Install(good, fsroot.Host, dir, opts)
	if err != nil || !changed || got.KubeletVersion != m.KubeletVersion {
		t.Fatalf("Install: changed %v, %v", changed, err)
	}
	for _, e := range m.Artifacts {
		b, err := os.ReadFile(filepath.Join(dir, e.File))
		if err != nil || testutil.SHA256(b) != e.SHA256 {
			t.Errorf("%s: %v, sha256 %s want %s", e.File, err, testutil.SHA256(b), e.SHA256)
		}
	}
	if _, changed, err := Install(good, fsroot.Host, dir, opts); err != nil || changed {
		t.Errorf("re-install: changed %v, %v", changed, err)
	}
	// A staging directory left by a killed run is removed by the next install.
	stale := filepath.Join(filepath.Dir(dir), ".bundle.stage-123", "artifacts")
	os.MkdirAll(stale, 0o755)
	os.RemoveAll(filepath.Join(dir, ManifestName))
	if _, changed, err := Install(good, fsroot.Host, dir, opts); err != nil || !changed {
		t.Errorf("install over a damaged dir: changed %v, %v", changed, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 1 {
		t.Errorf("after install: %v, want only bundle/", entries)
	}
	sidecar, _ := os.ReadFile(good + ".sha256")
	if _, _, err := Install(good, fsroot.Host, dir, Options{Expect: opts.Expect, SHA256: strings.Fields(string(sidecar))[0]}); err != nil {
		t.Errorf("pinned bundle sha256: %v", err)
	}

	names, data := members(t, good)
	flip := func(b []byte) []byte { c := append([]byte(nil), b...); c[len(c)/2] ^= 1; return c }
	kubelet, _ := m.Get(artifacts.Kubelet)
	cases := map[string]struct {
		mutate func(names []string, data map[string][]byte) []string
		opts   Options
		want   []string
		not    []string // must not appear (a problem found after the first refusal)
	}{
		"one byte of kubelet": {
			mutate: func(n []string, d map[string][]byte) []string {
				d["artifacts/kubelet"] = flip(d["artifacts/kubelet"])
				return n
			},
			want: []string{"artifact kubelet (artifacts/kubelet): sha256 expected " + kubelet.SHA256 + ", actual " + testutil.SHA256(flip(files["/kubelet"]))},
		},
		"manifest sha256 edited": {
			mutate: func(n []string, d map[string][]byte) []string {
				d[ManifestName] = bytes.Replace(d[ManifestName], []byte(kubelet.SHA256), []byte(strings.Repeat("f", 64)), 1)
				return n
			},
			want: []string{"artifact kubelet (artifacts/kubelet): sha256 expected " + strings.Repeat("f", 64) + ", actual " + kubelet.SHA256},
		},
		"manifest version edited": {
			mutate: func(n []string, d map[string][]byte) []string {
				d[ManifestName] = bytes.Replace(d[ManifestName], []byte("v1.37.2"), []byte("v1.36.3"), 1)
				return n
			},
			want: []string{"kubeletVersion: bundle is for v1.36.3, the node config asks for v1.37.2"},
		},
		"pinned by the node config": {
			mutate: func(n []string, d map[string][]byte) []string { return n },
			opts:   Options{Expect: &Expect{KubeletVersion: "v1.37.2", OSProfile: profile(t, "rocky-9"), Arch: "amd64", Pinned: map[string]string{artifacts.Runc: strings.Repeat("1", 64)}}},
			want:   []string{"artifacts.runc.sha256: bundle has"},
		},
		"whole bundle sha256": {
			mutate: func(n []string, d map[string][]byte) []string { return n },
			opts:   Options{Expect: expect(t, "rocky-9"), SHA256: strings.Repeat("2", 64)},
			want:   []string{"bundle file: sha256 expected " + strings.Repeat("2", 64)},
		},
		"missing and extra members": {
			mutate: func(n []string, d map[string][]byte) []string {
				d["artifacts/evil"] = []byte("x")
				return append(n[:len(n)-1], "artifacts/evil")
			},
			want: []string{`member "artifacts/evil" is not in the manifest`, "artifact runc (artifacts/runc) is missing"},
		},
		"two problems at once": {
			mutate: func(n []string, d map[string][]byte) []string {
				d["artifacts/crictl.tgz"] = flip(d["artifacts/crictl.tgz"])
				d["artifacts/runc"] = flip(d["artifacts/runc"])
				return n
			},
			want: []string{"artifact crictl (artifacts/crictl.tgz): sha256", "artifact runc (artifacts/runc): sha256"},
		},
		"member larger than the manifest says": {
			mutate: func(n []string, d map[string][]byte) []string {
				d["artifacts/kubelet"] = append(d["artifacts/kubelet"], make([]byte, 1<<20)...)
				return n
			},
			want: []string{fmt.Sprintf("artifact kubelet (artifacts/kubelet): size expected %d, actual %d: refused before writing", kubelet.Size, kubelet.Size+1<<20)},
		},
		"whole sha256 checked before any member": {
			mutate: func(n []string, d map[string][]byte) []string {
				d["artifacts/kubelet"] = flip(d["artifacts/kubelet"])
				return n
			},
			opts: Options{Expect: expect(t, "rocky-9"), SHA256: strings.Repeat("2", 64)},
			want: []string{"bundle file: sha256 expected " + strings.Repeat("2", 64), "(checked before reading any member)"},
			not:  []string{"artifact kubelet"},
		},
		"not a bundle": {
			mutate: func(n []string, d map[string][]byte) []string { return n[1:] },
			want:   []string{"not a bundle: the first member must be a regular file manifest.json"},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			d := map[string][]byte{}
			for k, v := range data {
				d[k] = v
			}
			file := rewrite(t, c.mutate(append([]string(nil), names...), d), d)
			o := c.opts
			if o.Expect == nil {
				o.Expect = opts.Expect
			}
			fresh := filepath.Join(t.TempDir(), "state", "bundle")
			_, _, err := Install(file, fsroot.Host, fresh, o)
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("Install = %v, want a RefusedError", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			for _, w := range c.not {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error has %q: the bundle was read further:\n%v", w, err)
				}
			}
			if entries, _ := os.ReadDir(filepath.Dir(fresh)); len(entries) != 0 {
				t.Errorf("a refused bundle left %v", entries)
			}
			// An installed good bundle is not replaced by a refused one.
			if _, _, err := Install(file, fsroot.Host, dir, o); err == nil {
				t.Fatal("refused bundle installed over a good one")
			}
			for _, e := range m.Artifacts {
				if b, _ := os.ReadFile(filepath.Join(dir, e.File)); testutil.SHA256(b) != e.SHA256 {
					t.Errorf("%s changed after a refused install", e.File)
				}
			}
		})
	}
}

func TestManifestValidate(t *testing.T) {
	_, err := ParseManifest([]byte(`{"apiVersion":"x","kind":"Bundle","kubeletVersion":"1.31","osProfile":"nope","arch":"s390x",
		"artifacts":[{"name":"kubelet","file":"../etc/passwd","sha256":"XYZ","size":-1},{"name":"kubelet","file":"artifacts/kubelet","sha256":"` + strings.Repeat("a", 64) + `","size":1}]}`))
	for _, want := range []string{"apiVersion", "kubeletVersion", "osProfile", "arch", "artifacts[0].file", "artifacts[0].sha256", "artifacts[0].size", "artifacts[1].name: kubelet is listed twice"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if _, err := ParseManifest([]byte(`{"unknown":1}`)); err == nil {
		t.Error("unknown field accepted")
	}
}

// TestSparseMembersRefused: a bundle whose artifact is a sparse file (GNU tar
// -S, old GNU and PAX formats) is refused before the member is written, and
// nothing is left.
func TestSparseMembersRefused(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Fatal("GNU tar is missing: it writes the sparse bundles of this test")
	}
	files := testFiles()
	srv := testServer(t, files)
	good, m := create(t, testSpec(t, srv, files, "rocky-9"))
	srv.Close()
	names, data := members(t, good)
	kubelet, _ := m.Get(artifacts.Kubelet)
	for _, format := range []string{"gnu", "posix"} {
		t.Run(format, func(t *testing.T) {
			src := t.TempDir()
			for _, n := range names {
				os.MkdirAll(filepath.Join(src, filepath.Dir(n)), 0o755)
				os.WriteFile(filepath.Join(src, n), data[n], 0o644)
			}
			// kubelet becomes a 4 MiB hole with one byte of data (a sparse
			// member is refused whatever the size it claims).
			k := filepath.Join(src, kubelet.File)
			os.Remove(k)
			f, _ := os.Create(k)
			f.WriteAt([]byte{1}, 4<<20-1)
			f.Close()
			file := filepath.Join(t.TempDir(), "sparse.tar")
			args := append([]string{"-cSf", file, "--format=" + format, "-C", src}, names...)
			if out, err := exec.Command("tar", args...).CombinedOutput(); err != nil {
				t.Fatalf("tar: %v\n%s", err, out)
			}
			dir := filepath.Join(t.TempDir(), "state", "bundle")
			_, _, err := Install(file, fsroot.Host, dir, Options{Expect: expect(t, "rocky-9")})
			if err == nil || !strings.Contains(err.Error(), `member "artifacts/kubelet" is a sparse file: refused before writing`) {
				t.Fatalf("Install = %v, want the sparse member refused", err)
			}
			if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 0 {
				t.Errorf("a refused bundle left %v", entries)
			}
		})
	}
}
