//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/internal/testenv"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/node/bundle"
)

// TestNodeBaseFromBundle runs `provision node base --bundle` in a booted Debian
// 12 root whose only server is the apt repository: the artifact URLs of its
// node config lead nowhere (the server answers 404 there and counts requests),
// so every artifact must come from the bundle, verified as a whole. A second
// run changes nothing; a tampered bundle is refused in a fresh root with
// nothing extracted.
func TestNodeBaseFromBundle(t *testing.T) {
	testenv.Require(t)
	repo := localRepo(t)
	a := buildNodeArtifacts(t, repo)

	// The bundle, made on the host from the artifact files (file:// sources).
	file := filepath.Join(t.TempDir(), "bundle.tar")
	src := func(name, sum string) v1alpha1.Artifact {
		return v1alpha1.Artifact{URL: "file://" + filepath.Join(a.dir, name), SHA256: sum}
	}
	start := time.Now()
	m, err := bundle.Create(context.Background(), bundle.Spec{
		KubeletVersion: kubeletVersion, Profile: debian12(t), Arch: "amd64",
		Artifacts: v1alpha1.Artifacts{artifacts.Kubelet: src(a.kubelet, a.kubeletSHA), artifacts.CNIPlugins: src(a.cni, a.cniSHA), artifacts.Crictl: src(a.crictl, a.crictlSHA)},
	}, file, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bundle: %d artifacts, %d bytes, created in %v", len(m.Artifacts), m.TotalSize(), time.Since(start).Round(time.Millisecond))

	// Only the apt repository is served; /artifacts/ answers 404 and is counted.
	ns := testenv.NewNetNS(t)
	mux := http.NewServeMux()
	mux.Handle("/apt/", http.StripPrefix("/apt/", http.FileServer(http.Dir(repo.Dir))))
	requests := &requestLog{counts: map[string]int{}}
	srv := ns.Serve(t, requests.wrap(mux))

	boot := func(t *testing.T, bundleFile string) (*testenv.Machine, *testenv.Root) {
		root := testenv.NewRoot(t, testenv.Bookworm)
		root.CopyFile(t, a.provision, "/usr/local/bin/provision", 0o755)
		root.CopyFile(t, repo.KeyFile, testenv.KeyringPath, 0o644)
		root.CopyFile(t, bundleFile, "/var/tmp/bundle.tar", 0o644)
		root.WriteFile(t, v1alpha1.NodeConfigPath, nodeConfig(t, srv.URL, a), 0o644)
		return testenv.Boot(t, root, ns), root
	}
	base := func(t *testing.T, mach *testenv.Machine) testenv.Result {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		r, err := mach.Exec(ctx, "/usr/local/bin/provision", "node", "base", "--bundle", "/var/tmp/bundle.tar")
		if err != nil {
			t.Fatalf("provision node base --bundle: %v", err)
		}
		return r
	}

	t.Run("install", func(t *testing.T) {
		mach, root := boot(t, file)
		r := base(t, mach)
		if r.ExitCode != 0 {
			t.Fatalf("provision node base --bundle exited %d:\n%s\njournal:\n%s", r.ExitCode, tail(r.Stderr, 60), tail(mach.Journal(), 40))
		}
		t.Logf("base --bundle on a fresh root: %v", r.Duration.Round(time.Millisecond))
		if n := requests.reset()["artifacts"]; n != 0 {
			t.Errorf("%d artifact requests reached the server; the bundle must serve them all", n)
		}
		checkNodeFiles(t, mach, root, a)
		for _, e := range m.Artifacts {
			if got := testutil.SHA256File(t, root.Path("/var/lib/provision/bundle/"+e.File)); got != e.SHA256 {
				t.Errorf("%s in the bundle dir: sha256 %s, want %s", e.File, got, e.SHA256)
			}
		}
		if data := string(root.ReadFile(t, "/var/lib/provision/base-done")); !strings.Contains(data, kubeletVersion) {
			t.Errorf("base-done marker: %q", data)
		}
		again := base(t, mach)
		if again.ExitCode != 0 || !strings.Contains(again.Stderr, "already holds it") {
			t.Errorf("re-run: exit %d, want the bundle verified and left in place:\n%s", again.ExitCode, tail(again.Stderr, 30))
		}
		t.Logf("base --bundle re-run: %v", again.Duration.Round(time.Millisecond))
		mach.Stop()
	})

	t.Run("tampered", func(t *testing.T) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		kubelet, _ := m.Get(artifacts.Kubelet)
		kb, err := os.ReadFile(filepath.Join(a.dir, a.kubelet))
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(data, kb[:min(len(kb), 4096)])
		if i < 0 {
			t.Fatal("kubelet not found in the bundle")
		}
		data[i+len(kb)/2] ^= 0xff // one byte in the middle of the kubelet
		bad := filepath.Join(t.TempDir(), "bundle.tar")
		if err := os.WriteFile(bad, data, 0o644); err != nil {
			t.Fatal(err)
		}
		mach, root := boot(t, bad)
		r := base(t, mach)
		if r.ExitCode == 0 {
			t.Fatal("a tampered bundle was installed")
		}
		for _, want := range []string{"refused as a whole", "artifact kubelet (artifacts/kubelet): sha256 expected " + kubelet.SHA256 + ", actual "} {
			if !strings.Contains(r.Stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, tail(r.Stderr, 30))
			}
		}
		for _, p := range []string{"/var/lib/provision/bundle", "/usr/local/bin/kubelet", "/var/lib/provision/base-done"} {
			if _, err := os.Stat(root.Path(p)); err == nil {
				t.Errorf("%s exists after a refused bundle", p)
			}
		}
		mach.Stop()
	})
}
