package node

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/node/bundle"
	"github.com/provision-dev/provision/node/nodeconfig"
	"github.com/provision-dev/provision/node/tasks"
	"github.com/provision-dev/provision/osprofiles"
)

// makeBundle builds a bundle of cfg's artifacts (served by srv) and a provision binary.
func makeBundle(t *testing.T, cfg v1alpha1.NodeConfig, prof string) (string, bundle.Manifest) {
	t.Helper()
	p, err := osprofiles.Get(prof)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "provision-linux-amd64")
	os.WriteFile(bin, []byte("\x7fELF fake provision"), 0o755)
	os.WriteFile(bin+".sha256", []byte(testutil.SHA256([]byte("\x7fELF fake provision"))+"  provision-linux-amd64\n"), 0o644)
	out := filepath.Join(dir, "bundle.tar")
	m, err := bundle.Create(context.Background(), bundle.Spec{
		KubeletVersion: cfg.Kubernetes.Version, Profile: p, Arch: cfg.Arch, Artifacts: cfg.Artifacts, ProvisionBinary: bin,
	}, out, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out, m
}

// TestBaseFromBundleOffline: a bundle made from a loopback server installs with
// the server stopped; every artifact lands with its hash; a re-run, with or
// without --bundle, changes nothing and needs no network.
func TestBaseFromBundleOffline(t *testing.T) {
	for _, prof := range []string{"debian-12", "rocky-9"} {
		t.Run(prof, func(t *testing.T) {
			srv := newArtifactServer(t)
			cfg := testConfig(srv, prof)
			file, m := makeBundle(t, cfg, prof)
			srv.Close() // no network from here on
			root := testRoot(t, prof, &cfg)
			host := newFakeHost("")
			opts := testOptions(root, host, false, nil)
			opts.Bundle = file
			if err := prepare(t, opts).Run(context.Background(), Base); err != nil {
				t.Fatal(err)
			}
			p, _ := osprofiles.Get(prof)
			want := map[string]string{p.BinDir + "/provision": artifacts.Provision} // node path -> artifact
			for _, a := range artifacts.Required(p) {
				want[a.NodePath(p.BinDir)] = a.Name
			}
			if p.Runtime == osprofiles.RuntimeTarball && (want[CacheDir+"/containerd.tgz"] != artifacts.Containerd || want[p.BinDir+"/runc"] != artifacts.Runc) {
				t.Errorf("%s installs containerd from the tarball but would not get containerd.tgz and runc: %v", prof, want)
			}
			for path, name := range want {
				e, _ := m.Get(name)
				data, err := os.ReadFile(filepath.Join(root, path))
				if err != nil || testutil.SHA256(data) != e.SHA256 {
					t.Errorf("%s (%s): %v, sha256 %s, want %s", path, name, err, testutil.SHA256(data), e.SHA256)
				}
				if bd, err := os.ReadFile(filepath.Join(root, BundleDir, e.File)); err != nil || testutil.SHA256(bd) != e.SHA256 {
					t.Errorf("%s in %s: %v", e.File, BundleDir, err)
				}
			}
			for _, f := range []string{"/opt/cni/bin/bridge", p.BinDir + "/crictl"} {
				if _, err := os.Stat(filepath.Join(root, f)); err != nil {
					t.Errorf("missing %s", f)
				}
			}
			var bd BaseDone
			data, _ := os.ReadFile(filepath.Join(root, BaseDoneMarker))
			if err := json.Unmarshal(data, &bd); err != nil || bd.KubeletVersion != "v1.37.2" || bd.OSProfile != prof || bd.Arch != "amd64" || bd.Bundle != "bundle.tar" {
				t.Errorf("base-done marker: %s (%v)", data, err)
			}
			// Re-runs: with the bundle (verified again, nothing written) and without it
			// (the installed bundle is used): no change, and the server is gone.
			for _, b := range []string{file, ""} {
				opts.Bundle = b
				if err := prepare(t, opts).Run(context.Background(), Base); err != nil {
					t.Fatalf("re-run (bundle %q): %v", b, err)
				}
				if c := changedNames(readStatus(t, root).Phases[Base].Tasks); len(c) != 0 {
					t.Errorf("re-run (bundle %q) changed %v", b, c)
				}
			}
		})
	}
}

// TestBaseRefusesTamperedBundle: one byte changed in one artifact, or the
// manifest edited, refuses the whole bundle: base fails naming the artifact,
// the expected and the actual hash, and nothing is extracted or installed.
func TestBaseRefusesTamperedBundle(t *testing.T) {
	srv := newArtifactServer(t)
	cfg := testConfig(srv, "debian-12")
	good, m := makeBundle(t, cfg, "debian-12")
	srv.Close()
	data, _ := os.ReadFile(good)
	crictl, _ := m.Get(artifacts.Crictl)
	other := nodeconfig.New("v1.36.3", "amd64").Kubernetes.Version
	for name, c := range map[string]struct {
		edit     func([]byte) []byte
		want     []string
		unpinned bool // the node config pins no sha256: only the manifest speaks
	}{
		"artifact byte": {
			edit: func(b []byte) []byte {
				i := bytes.Index(b, srv.Files["/"+artifacts.MustGet(artifacts.Crictl).File])
				b[i+10] ^= 0xff
				return b
			},
			want: []string{"artifact crictl (artifacts/crictl.tgz): sha256 expected " + crictl.SHA256 + ", actual "},
		},
		"manifest hash, pinned in the config": {
			edit: func(b []byte) []byte {
				return bytes.Replace(b, []byte(crictl.SHA256), []byte(strings.Repeat("0", 64)), 1)
			},
			want: []string{"artifacts.crictl.sha256: bundle has " + strings.Repeat("0", 64) + ", the node config pins " + crictl.SHA256},
		},
		"manifest hash, nothing pinned": {
			edit: func(b []byte) []byte {
				return bytes.Replace(b, []byte(crictl.SHA256), []byte(strings.Repeat("0", 64)), 1)
			},
			want:     []string{"artifact crictl (artifacts/crictl.tgz): sha256 expected " + strings.Repeat("0", 64) + ", actual " + crictl.SHA256},
			unpinned: true,
		},
		"manifest version": {
			edit: func(b []byte) []byte { return bytes.Replace(b, []byte(`"v1.37.2"`), []byte(`"`+other+`"`), 1) },
			want: []string{"kubeletVersion: bundle is for v1.36.3, the node config asks for v1.37.2"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bundle.tar")
			os.WriteFile(bad, c.edit(append([]byte(nil), data...)), 0o644)
			nc := cfg
			if c.unpinned {
				nc.Artifacts = nodeconfig.DefaultArtifacts("v1.37.2", "amd64")
			}
			root := testRoot(t, "debian-12", &nc)
			opts := testOptions(root, newFakeHost(""), false, nil)
			opts.Bundle = bad
			n, err := Prepare(context.Background(), opts)
			if err == nil {
				err = n.Run(context.Background(), Base)
			}
			if err == nil {
				t.Fatal("a tampered bundle was accepted")
			}
			for _, w := range append(c.want, "refused as a whole") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			for _, p := range []string{BundleDir, "/usr/local/bin/kubelet", CacheDir, BaseDoneMarker} {
				if _, err := os.Stat(filepath.Join(root, p)); err == nil {
					t.Errorf("%s exists after a refused bundle", p)
				}
			}
			entries, _ := os.ReadDir(filepath.Join(root, StateDir))
			for _, e := range entries {
				if strings.Contains(e.Name(), "stage") || e.Name() == "bundle" {
					t.Errorf("left %s in %s", e.Name(), StateDir)
				}
			}
			st := readStatus(t, root).Phases[Base]
			if st.Result != "failed" {
				t.Errorf("status: %+v", st)
			}
		})
	}
}

// TestPrebakedJoin is the offline image flow: base --bundle in an image root,
// then, on the machine, join only. Join refuses an image prebaked for another
// kubelet version.
func TestPrebakedJoin(t *testing.T) {
	srv := newArtifactServer(t)
	cfg := testConfig(srv, "debian-12")
	file, _ := makeBundle(t, cfg, "debian-12")
	srv.Close()
	root := testRoot(t, "debian-12", &cfg)
	opts := testOptions(root, newFakeHost(""), false, nil)
	opts.Bundle = file
	if err := prepare(t, opts).Run(context.Background(), Base); err != nil {
		t.Fatal(err)
	}

	ca := filepath.Join(t.TempDir(), "ca.crt")
	os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o644)
	healthz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer healthz.Close()
	join := testOptions(root, newFakeHost(""), true, nil)
	join.HealthzURL = healthz.URL
	join.Flags.Token = testToken
	join.Flags.CACert = ca

	// The machine's userdata asks for another kubelet: join refuses.
	other := cfg
	other.Kubernetes.Version = "v1.36.3"
	y, _ := other.Marshal()
	os.WriteFile(filepath.Join(root, v1alpha1.NodeConfigPath), y, 0o644)
	err := prepare(t, join).Run(context.Background(), Join)
	if err == nil || !strings.Contains(err.Error(), "base was done for another node (kubelet v1.37.2, the node config asks for v1.36.3)") {
		t.Fatalf("join on an image prebaked for another version: %v", err)
	}
	// A preview of join alone is refused the same way; of base and join it is not
	// refused: base would rewrite the marker first.
	if _, err := prepare(t, join).Preview(context.Background(), Join); err == nil || !strings.Contains(err.Error(), "base was done for another node") {
		t.Errorf("preview join on an image prebaked for another version: %v", err)
	}
	// A preview of base and join is not refused: base would rewrite the marker first.
	if _, err := prepare(t, join).Preview(context.Background(), Base, Join); err != nil && strings.Contains(err.Error(), "base was done") {
		t.Errorf("preview base+join: %v", err)
	}

	y, _ = cfg.Marshal()
	os.WriteFile(filepath.Join(root, v1alpha1.NodeConfigPath), y, 0o644)
	if err := prepare(t, join).Run(context.Background(), Join); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, DoneMarker)); err != nil {
		t.Errorf("no done marker after join: %v", err)
	}
	for _, s := range readStatus(t, root).Phases[Join].Tasks {
		if s.Result == tasks.Failed {
			t.Errorf("join task %s failed", s.Name)
		}
	}
}

// TestBundleForAnotherNodeRefusedBeforeAnyTask: the manifest is checked when
// base's tasks are built, so nothing runs.
func TestBundleForAnotherNodeRefusedBeforeAnyTask(t *testing.T) {
	srv := newArtifactServer(t)
	cfg := testConfig(srv, "debian-12")
	file, _ := makeBundle(t, cfg, "debian-12")
	rocky := testConfig(srv, "rocky-9")
	root := testRoot(t, "rocky-9", &rocky)
	opts := testOptions(root, newFakeHost(""), false, nil)
	opts.Bundle = file
	err := prepare(t, opts).Run(context.Background(), Base)
	for _, w := range []string{"osProfile: bundle is for debian-12, this node is rocky-9", "has no containerd", "has no runc"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	if st := readStatus(t, root).Phases[Base]; len(st.Tasks) != 0 {
		t.Errorf("tasks ran: %+v", st.Tasks)
	}
}
