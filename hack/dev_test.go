// Package hack holds the tests of the development scripts (the scripts themselves
// are bash; hack/serve and hack/publish are Go commands with their own tests).
package hack

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provision-dev/provision/generate/cloudinit"
)

func runDev(t *testing.T, out string, env ...string) string {
	t.Helper()
	cmd := exec.Command("bash", "dev.sh")
	cmd.Env = append(os.Environ(), append([]string{"OUT_DIR=" + out, "ADDR=127.0.0.1:0", "VERSION=dev-test"}, env...)...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hack/dev.sh: %v\n%s", err, b)
	}
	return string(b)
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

var (
	binaryRE = regexp.MustCompile(`binary:\s+(http://127\.0\.0\.1:\d+/provision-linux-amd64) \(sha256 ([0-9a-f]{64})\)`)
	pidRE    = regexp.MustCompile(`server:\s+PID (\d+)`)
)

// TestDevLoop runs hack/dev.sh end to end on loopback: build, serve, generate;
// the userdata points at the served binary with its sha256; the server keeps
// serving it until stopped by the PID it recorded, and a re-run replaces it.
func TestDevLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds provision")
	}
	for _, tool := range []string{"bash", "curl", "sha256sum", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not on PATH", tool)
		}
	}
	out := t.TempDir()
	log := runDev(t, out)
	m := binaryRE.FindStringSubmatch(log)
	p := pidRE.FindStringSubmatch(log)
	if m == nil || p == nil {
		t.Fatalf("hack/dev.sh output lacks the binary URL or the server PID:\n%s", log)
	}
	url, sum := m[1], m[2]
	pid, _ := strconv.Atoi(p[1])
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGTERM) })
	recorded, _ := os.ReadFile(filepath.Join(out, ".dev", "serve.pid"))
	if strings.TrimSpace(string(recorded)) != p[1] {
		t.Errorf("serve.pid holds %q, the script reported PID %d", recorded, pid)
	}

	built, err := os.ReadFile(filepath.Join(out, "provision-linux-amd64"))
	if err != nil {
		t.Fatal(err)
	}
	if h := sha256.Sum256(built); hex.EncodeToString(h[:]) != sum {
		t.Errorf("reported sha256 %s is not the build's", sum)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("the server is not serving after the script exited: %v", err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if h := sha256.Sum256(served); hex.EncodeToString(h[:]) != sum {
		t.Errorf("served binary differs from the build")
	}
	ud, err := os.ReadFile(filepath.Join(out, "user-data"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(ud), "#cloud-config") {
		t.Errorf("user-data is not a #cloud-config")
	}
	// Files are written in their shortest form (maybe gzip+base64): decode them.
	files, err := cloudinit.Files(ud)
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, c := range files {
		all.Write(c)
	}
	for _, want := range []string{url, sum} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("user-data's files lack %q", want)
		}
	}

	// A re-run stops the recorded server and starts a new one; DEV_STOP=1 stops it on exit.
	log = runDev(t, out, "DEV_STOP=1")
	if !strings.Contains(log, "stopping the previous server (PID "+p[1]+")") {
		t.Errorf("re-run did not stop the previous server:\n%s", log)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(pid) {
		t.Errorf("the first server (PID %d) still runs after the re-run", pid)
	}
	p2 := pidRE.FindStringSubmatch(log)
	if p2 == nil {
		t.Fatalf("no PID in the re-run's output:\n%s", log)
	}
	pid2, _ := strconv.Atoi(p2[1])
	for alive(pid2) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(pid2) {
		syscall.Kill(pid2, syscall.SIGTERM)
		t.Errorf("DEV_STOP=1 left the server (PID %d) running", pid2)
	}
	if _, err := os.Stat(filepath.Join(out, ".dev", "serve.pid")); err == nil {
		t.Errorf("DEV_STOP=1 left the PID file")
	}
}
