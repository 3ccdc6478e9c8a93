//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/internal/testenv"
	"github.com/provision-dev/provision/osprofiles"
)

// Targets of the prebaked join (issue 5), from `provision node join` starting.
const (
	prebakedKubeletTarget = time.Second
	prebakedReadyTarget   = 10 * time.Second
)

// TestPrebakeOfflineJoin is scenario 3: `provision node base` in a root, as an
// image build would run it; the root snapshotted; a fresh copy of the image
// booted with generated cloud-init userdata while the artifact server is
// stopped and no package mirror is reachable: the node joins and goes Ready,
// and nothing but the provision binary the userdata pins is fetched.
func TestPrebakeOfflineJoin(t *testing.T) { forEachVersion(t, prebakeOfflineJoin) }

func prebakeOfflineJoin(t *testing.T, version string) {
	e := newJoinEnvVersion(t, version)
	const hostname = "e2e-prebaked"
	image := filepath.Join(t.TempDir(), "prebaked.tar")

	// The image build.
	func() {
		done := testenv.Phase(t, "prebake image")
		defer done()
		root := testenv.NewRoot(t, testenv.BookwormCloudInit)
		root.CopyFile(t, e.a.provision, "/usr/local/bin/provision", 0o755)
		root.CopyFile(t, e.repo.KeyFile, testenv.KeyringPath, 0o644)
		root.WriteFile(t, e2eConfigPath, nodeConfigVersion(t, e.art.URL, e.a, version), 0o644)
		testenv.InstallNodeShims(t, root, e.pauseTar)
		m := testenv.Boot(t, root, e.ns)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		r, err := m.Exec(ctx, "/usr/local/bin/provision", "node", "base", "--config", e2eConfigPath)
		if err != nil || r.ExitCode != 0 {
			t.Fatalf("provision node base: exit %d %v\n%s\n%s", r.ExitCode, err, tail(r.Stderr, 40), tail(m.Journal(), 40))
		}
		t.Logf("prebake: provision node base in %v (requests %v)", r.Duration.Round(time.Millisecond), e.artReqs.reset())
		// What an image build does next: pre-load the sandbox image, forget
		// this boot's cloud-init instance.
		m.MustRun(t, time.Minute, "systemctl", "start", testenv.PauseImportUnit)
		m.MustRun(t, time.Minute, "cloud-init", "clean", "--logs")
		if _, err := os.Stat(root.Path("/usr/local/bin/kubelet")); err != nil {
			t.Fatalf("prebake: no kubelet: %v", err)
		}
		m.Stop()
		root.Snapshot(t, image)
	}()

	// Offline: the artifact and package server is gone. Only the provision
	// binary the userdata pins is served, from its own server.
	e.art.Close()
	e.artReqs.reset()
	token := e.cluster.CreateToken(t, 15*time.Minute)
	// --prebaked: setup keeps the image's provision binary (its sha256 is the
	// pinned one) and runs only `provision node join`.
	u := e.generateUserdata(t, osprofiles.CloudInit, hostname, token, e.provSHA, "--prebaked")
	root := testenv.RootFromTarball(t, image)
	seedNoCloud(t, root, u, "e2e-prebaked-join")

	_, tm := e.bootAndJoin(t, root, u, "prebaked offline join "+version, 3*time.Minute)
	if n := e.artReqs.reset(); len(n) != 0 {
		t.Errorf("the offline join reached the artifact server: %v", n)
	}
	if n := e.provReqs.reset(); len(n) != 0 {
		t.Errorf("the prebaked join downloaded provision although the image holds the pinned binary: %v", n)
	}
	if d := tm.kubeletStarted.Sub(tm.joinStarted); tm.joinStarted.IsZero() || tm.kubeletStarted.IsZero() || d > prebakedKubeletTarget {
		t.Errorf("prebaked join → kubelet started: %s, target < %v", since(tm.joinStarted, tm.kubeletStarted), prebakedKubeletTarget)
	}
	if d := tm.ready.Sub(tm.joinStarted); tm.joinStarted.IsZero() || d > prebakedReadyTarget {
		t.Errorf("prebaked join → Node Ready: %s, target < %v", since(tm.joinStarted, tm.ready), prebakedReadyTarget)
	}
}

// waitSetupDone waits for provision-setup.service to finish successfully.
func waitSetupDone(t *testing.T, m *testenv.Machine) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r, _ := m.Exec(context.Background(), "systemctl", "show", "-p", "ActiveState,Result", "provision-setup.service")
		out := r.Stdout
		if strings.Contains(out, "ActiveState=active") {
			return
		}
		if strings.Contains(out, "ActiveState=failed") {
			t.Fatalf("provision-setup.service failed: %s", strings.Join(strings.Fields(out), " "))
		}
		if time.Now().After(deadline) {
			t.Fatalf("provision-setup.service not done after 2 minutes: %s", strings.Join(strings.Fields(out), " "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
