//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/internal/testenv"
)

// TestHarness proves the harness: a fresh root boots in its own network
// namespace and installs a package with apt from the local repository served
// inside that namespace; then it stops.
func TestHarness(t *testing.T) {
	testenv.Require(t)
	repo := localRepo(t)
	ns := testenv.NewNetNS(t)
	srv := ns.ServeDir(t, repo.Dir)
	root := testenv.NewRoot(t, testenv.Bookworm)
	repo.InstallSources(t, root, srv.URL)
	m := testenv.Boot(t, root, ns)

	if state := strings.TrimSpace(m.MustRun(t, 10*time.Second, "systemctl", "is-system-running")); state != "running" && state != "degraded" {
		t.Fatalf("is-system-running = %q", state)
	}
	if ips := m.MustRun(t, 10*time.Second, "hostname", "-I"); !strings.Contains(" "+ips, " "+testenv.NodeAddr+" ") {
		t.Errorf("the machine has no address %s: %q", testenv.NodeAddr, ips)
	}
	done := testenv.Phase(t, "apt-get update + install socat")
	m.MustRun(t, time.Minute, "apt-get", "-q", "update")
	m.MustRun(t, 2*time.Minute, "apt-get", "-q", "-y", "install", "socat")
	done()
	if out := m.MustRun(t, 10*time.Second, "socat", "-V"); !strings.Contains(out, "socat version") {
		t.Errorf("socat -V: %s", out)
	}
	m.Stop()
}
