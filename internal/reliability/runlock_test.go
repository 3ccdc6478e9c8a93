package reliability

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOneRunAtATime starts two real `provision node base` processes on one
// root: the first is slowed down inside its package install (a stub apt-get
// that sleeps); the second either gives up naming the first one's PID (short
// --lock-timeout) or waits and then succeeds. The first run always succeeds
// and the root ends with no lock file and no staging or temp file.
func TestOneRunAtATime(t *testing.T) {
	art := newArtifacts(t)
	cfg := art.nodeConfig()
	dir := t.TempDir()
	for name, body := range stubs {
		if name == "apt-get" {
			body = strings.Replace(body, "inst=0\n", "inst=0\n[ -z \"${STUB_SLOW:-}\" ] || sleep \"$STUB_SLOW\"\n", 1)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := dir + string(os.PathListSeparator) + os.Getenv("PATH")
	for _, tc := range []struct {
		name    string
		timeout string
		wantErr string // "" : the second run waits and succeeds
	}{
		{"second gives up naming the holder", "300ms", "another provision node run (PID %d) holds "},
		{"second waits and succeeds", "60s", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			seedRoot(t, root, cfg)
			first := exec.Command(provisionBin, "node", "base", "--root", root)
			first.Env = []string{"PATH=" + path, "LANG=C", "STUB_SLOW=2"}
			var out1 bytes.Buffer
			first.Stderr = &out1
			if err := first.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { first.Process.Kill(); first.Wait() }()
			for deadline := time.Now().Add(10 * time.Second); !fileExists(filepath.Join(root, "run/provision/node.lock")); {
				if time.Now().After(deadline) {
					t.Fatalf("the first run never took the lock:\n%s", out1.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			second := exec.Command(provisionBin, "node", "base", "--root", root, "--lock-timeout", tc.timeout)
			second.Env = []string{"PATH=" + path, "LANG=C"}
			out2, err2 := second.CombinedOutput()
			err1 := first.Wait()
			if err1 != nil {
				t.Fatalf("the first run failed: %v\n%s", err1, out1.String())
			}
			if tc.wantErr == "" {
				if err2 != nil {
					t.Fatalf("the second run failed: %v\n%s", err2, out2)
				}
			} else if want := fmt.Sprintf(tc.wantErr, first.Process.Pid); err2 == nil || !strings.Contains(string(out2), want) {
				t.Fatalf("second run: %v, want an error containing %q:\n%s", err2, want, out2)
			}
			if fileExists(filepath.Join(root, "run/provision/node.lock")) {
				t.Errorf("the lock file is left behind")
			}
			for rel := range snapshot(t, root) {
				if tempRE.MatchString(rel) || strings.Contains(rel, ".stage-") {
					t.Errorf("left behind: %s", rel)
				}
			}
		})
	}
}

func fileExists(p string) bool { _, err := os.Lstat(p); return err == nil }
