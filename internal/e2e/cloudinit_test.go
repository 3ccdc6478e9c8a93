//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/internal/testenv"
	"github.com/provision-dev/provision/osprofiles"
)

// TestCloudInitJoin is scenario 1: `provision generate --format cloud-init` →
// a NoCloud seed in a fresh Debian 12 root with cloud-init → booted with
// systemd-nspawn → real cloud-init writes the files and starts setup.sh →
// setup.sh fetches provision (sha256 pinned) → `provision node` (base from the
// local apt repository and artifact server, then join) → kubelet TLS-bootstraps
// → the Node is Ready and a pod runs on it. Once per version of the matrix
// (newest and oldest supported): the version-dependent parts of the kubelet's
// flags and KubeletConfiguration, proven against a real kubelet and API server
// of each.
func TestCloudInitJoin(t *testing.T) {
	forEachVersion(t, func(t *testing.T, version string) { cloudInitJoin(t, version, "e2e-cloudinit") })
}

func cloudInitJoin(t *testing.T, version, hostname string, extra ...string) (*joinEnv, *testenv.Machine) {
	e := newJoinEnvVersion(t, version)
	return e, e.cloudInitJoin(t, hostname, extra...)
}

// cloudInitJoin boots a fresh cloud-init root with generated userdata (extra:
// more generate flags) and checks the join.
func (e *joinEnv) cloudInitJoin(t *testing.T, hostname string, extra ...string) *testenv.Machine {
	version := e.kubeletVersion
	token := e.cluster.CreateToken(t, 15*time.Minute)
	u := e.generateUserdata(t, osprofiles.CloudInit, hostname, token, e.provSHA, extra...)
	root := testenv.NewRoot(t, testenv.BookwormCloudInit)
	testenv.InstallNodeShims(t, root, e.pauseTar)
	e.installMirrorKey(t, root)
	seedNoCloud(t, root, u, hostname+"-1")
	m, _ := e.bootAndJoin(t, root, u, "cloud-init "+version, 6*time.Minute)

	out, _ := m.Exec(t.Context(), "cloud-init", "status", "--long")
	if !strings.Contains(out.Stdout, "status: done") {
		t.Errorf("cloud-init status:\n%s", out.Stdout)
	}
	t.Logf("requests: provision server %v, artifact server %v", e.provReqs.reset(), e.artReqs.reset())
	return m
}
