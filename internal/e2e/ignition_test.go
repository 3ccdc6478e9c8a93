//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/generate/setup"
	"github.com/provision-dev/provision/internal/testenv"
	"github.com/provision-dev/provision/osprofiles"
)

// ignitionBinary is the real Ignition of Debian's ignition package (a dracut module).
const ignitionBinary = "/usr/lib/dracut/modules.d/30ignition/ignition"

// TestIgnitionJoin is scenario 2: `provision generate --format ignition
// --ignition-version 3.3` → the real Ignition binary runs its fetch-offline and
// files stages against a fresh Debian 12 root → boot → setup.sh fetches
// provision → `provision node` → the Node is Ready and a pod runs on it.
func TestIgnitionJoin(t *testing.T) {
	if _, err := os.Stat(ignitionBinary); err != nil {
		t.Fatalf("Ignition is missing (%v): install Debian's ignition package (hack/e2e-prereqs.sh)", err)
	}
	forEachVersion(t, ignitionJoin)
}

func ignitionJoin(t *testing.T, version string) {
	e := newJoinEnvVersion(t, version)
	token := e.cluster.CreateToken(t, 15*time.Minute)
	u := e.generateUserdata(t, osprofiles.Ignition, "e2e-ignition", token, e.provSHA)
	root := testenv.NewRoot(t, testenv.Bookworm)
	runIgnition(t, root, u)
	testenv.InstallNodeShims(t, root, e.pauseTar)
	e.installMirrorKey(t, root)
	e.bootAndJoin(t, root, u, "ignition "+version, 6*time.Minute)
	t.Logf("requests: provision server %v, artifact server %v", e.provReqs.reset(), e.artReqs.reset())
}

// runIgnition applies the userdata to the root with Ignition's fetch-offline and
// files stages (as in the initramfs, against a directory instead of /sysroot),
// then applies the enable preset Ignition wrote, which systemd applies only on
// a first boot of an uninitialised root.
func runIgnition(t *testing.T, root *testenv.Root, u userdata) {
	t.Helper()
	done := testenv.Phase(t, "ignition files stage")
	defer done()
	work := t.TempDir()
	// Ignition relabels what it wrote: it needs an SELinux config naming a
	// policy and a setfiles to run. Neither matters on Debian: a no-op stands in.
	bin := filepath.Join(work, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "setfiles"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	hadSELinux := true
	if _, err := os.Stat(root.Path("/etc/selinux/config")); err != nil {
		hadSELinux = false
		root.WriteFile(t, "/etc/selinux/config", []byte("SELINUX=disabled\nSELINUXTYPE=targeted\n"), 0o644)
	}
	var out bytes.Buffer
	for _, stage := range []string{"fetch-offline", "files"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, ignitionBinary, "-platform", "file", "-stage", stage, "-root", root.Dir,
			"-config-cache", filepath.Join(work, "config.json"), "-state-file", filepath.Join(work, "state"),
			"-neednet", filepath.Join(work, "neednet"), "-log-to-stdout")
		cmd.Env = append(os.Environ(), "IGNITION_CONFIG_FILE="+u.path, "PATH="+bin+":"+os.Getenv("PATH"))
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		cancel()
		if err != nil {
			t.Fatalf("ignition -stage %s: %v\n%s", stage, err, tail(out.String(), 40))
		}
	}
	if !hadSELinux {
		os.RemoveAll(root.Path("/etc/selinux"))
	}
	_, secret, _ := strings.Cut(u.token, ".")
	if strings.Contains(out.String(), secret) {
		t.Errorf("Ignition's log holds the bootstrap token's secret")
	}
	t.Logf("ignition: %d log lines; last: %s", strings.Count(out.String(), "\n"), lastNonEmpty(out.String()))
	runHost(t, time.Minute, "systemctl", "--root="+root.Dir, "preset", setup.UnitName)
	if _, err := os.Lstat(root.Path("/etc/systemd/system/multi-user.target.wants/" + setup.UnitName)); err != nil {
		t.Fatalf("%s not enabled after Ignition's preset: %v", setup.UnitName, err)
	}
}

func lastNonEmpty(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
