//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/internal/testenv"
	"github.com/provision-dev/provision/osprofiles"
)

// TestNegative is scenario 4: what a node does when its userdata cannot work.
func TestNegative(t *testing.T) {
	e := newJoinEnv(t)

	// A wrong pinned checksum: setup stops before running anything, leaves no
	// binary, writes its failure marker and says why in the journal.
	t.Run("wrong-provision-sha256", func(t *testing.T) {
		token := e.cluster.CreateToken(t, 15*time.Minute)
		wrong := strings.Repeat("0", 64)
		u := e.generateUserdata(t, osprofiles.CloudInit, "e2e-badsum", token, wrong)
		root := testenv.NewRoot(t, testenv.BookwormCloudInit)
		testenv.InstallNodeShims(t, root, e.pauseTar)
		e.installMirrorKey(t, root)
		seedNoCloud(t, root, u, "e2e-badsum-1")
		nt := e.cluster.WatchNode(t, u.hostname)
		argv := watchArgv(t, token)
		m := testenv.BootStarted(t, root, e.ns)
		dumpOnFailure(t, m, e.cluster)
		failedAfter := waitSetupFailed(t, m, 2*time.Minute)
		t.Logf("boot → provision-setup failed: %v", failedAfter.Round(time.Millisecond))
		argv.check(t)

		if _, err := os.Lstat(root.Path("/usr/local/bin/provision")); err == nil {
			t.Errorf("/usr/local/bin/provision exists after a checksum mismatch")
		}
		if left, _ := filepath.Glob(root.Path("/usr/local/bin/provision.*")); len(left) > 0 {
			t.Errorf("temporary downloads left behind: %v", left)
		}
		marker, err := os.ReadFile(root.Path("/var/lib/provision/setup-failed"))
		if err != nil || !strings.Contains(string(marker), "sha256 mismatch") {
			t.Errorf("setup-failed marker: %q (%v), want the sha256 mismatch", marker, err)
		}
		if _, err := os.Stat(root.Path("/var/lib/provision/done")); err == nil {
			t.Errorf("the done marker exists after a failed setup")
		}
		_, raw := journal(t, m)
		if !strings.Contains(string(raw), "provision-setup: sha256 mismatch for "+e.prov.URL+"/provision: expected "+wrong) {
			t.Errorf("the journal has no clear sha256 mismatch line from provision-setup")
		}
		checkNoToken(t, root, raw, token)
		if nt.Seen() {
			t.Errorf("a Node registered although provision never ran")
		}
		if n := e.provReqs.reset(); n["provision"] == 0 {
			t.Errorf("setup did not download provision: %v", n)
		}
	})

	// A bootstrap token the API server rejects: the kubelet never registers and
	// `provision node` fails the join, naming the reason, instead of hanging.
	for _, c := range []struct {
		name  string
		token func(t *testing.T) string
	}{
		{"expired-token", func(t *testing.T) string { return e.cluster.CreateToken(t, -time.Hour) }},
		{"unknown-token", func(t *testing.T) string { return testenv.NewTokenValue(t) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			token := c.token(t)
			u := e.generateUserdata(t, osprofiles.Ignition, "e2e-"+c.name, token, e.provSHA)
			root := testenv.NewRoot(t, testenv.Bookworm)
			runIgnition(t, root, u)
			testenv.InstallNodeShims(t, root, e.pauseTar)
			e.installMirrorKey(t, root)
			nt := e.cluster.WatchNode(t, u.hostname)
			argv := watchArgv(t, token)
			m := testenv.BootStarted(t, root, e.ns)
			dumpOnFailure(t, m, e.cluster)
			waitSetupFailed(t, m, 4*time.Minute)
			argv.check(t)
			es, raw := journal(t, m)
			tm := milestones(m, es, nil)
			failed := find(es, func(en entry) bool {
				return en.unit == "provision-setup.service" && strings.Contains(en.msg, "phase done") && strings.Contains(en.msg, "failed=true")
			})
			t.Logf("join started → join failed: %s", since(tm.joinStarted, failed))

			var st struct {
				Phases map[string]struct {
					Result string `json:"result"`
					Error  string `json:"error"`
				} `json:"phases"`
			}
			data, err := os.ReadFile(root.Path("/var/lib/provision/status.json"))
			if err != nil {
				t.Fatalf("status.json: %v", err)
			}
			if err := json.Unmarshal(data, &st); err != nil {
				t.Fatalf("status.json: %v", err)
			}
			j := st.Phases["join"]
			t.Logf("status.json join: %s: %s", j.Result, j.Error)
			if j.Result != "failed" || !strings.Contains(j.Error, "kubelet/tls-bootstrap") || !strings.Contains(j.Error, "Unauthorized") {
				t.Errorf("status.json: join %q, error %q; want failed at kubelet/tls-bootstrap with the kubelet's Unauthorized", j.Result, j.Error)
			}
			marker, err := os.ReadFile(root.Path("/var/lib/provision/failed"))
			if err != nil || !strings.Contains(string(marker), "task: kubelet/tls-bootstrap") {
				t.Errorf("failed marker: %q (%v)", marker, err)
			}
			if !strings.Contains(string(raw), "refuses the kubelet's bootstrap credentials") {
				t.Errorf("the journal has no clear join failure line from provision")
			}
			checkNoToken(t, root, raw, token)
			if nt.Seen() {
				t.Errorf("a Node registered with a rejected token")
			}
			id, _, _ := strings.Cut(token, ".")
			csrs, _ := e.cluster.NodeClientCSRs(context.Background())
			for _, csr := range csrs {
				if csr.Spec.Username == "system:bootstrap:"+id {
					t.Errorf("CSR %s was created with a rejected token", csr.Name)
				}
			}
		})
	}
}

// waitSetupFailed waits for provision-setup.service to fail and returns how long
// after the machine's start it did.
func waitSetupFailed(t *testing.T, m *testenv.Machine, timeout time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r, _ := m.Exec(context.Background(), "systemctl", "show", "-p", "ActiveState,Result", "provision-setup.service")
		out := strings.Join(strings.Fields(r.Stdout), " ")
		if strings.Contains(out, "ActiveState=failed") {
			return time.Since(m.Started)
		}
		if strings.Contains(out, "ActiveState=active") {
			t.Fatalf("provision-setup.service succeeded; want a failure")
		}
		if time.Now().After(deadline) {
			t.Fatalf("provision-setup.service did not fail within %v (it hangs): %s", timeout, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
