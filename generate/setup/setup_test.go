package setup

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/internal/unitverify"
	"github.com/provision-dev/provision/node"
)

func need(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Fatalf("%s not found: install it (apt-get install -y %s)", tool, pkg)
	}
}

func TestShellcheck(t *testing.T) {
	need(t, "shellcheck", "shellcheck")
	if out, err := exec.Command("shellcheck", "-s", "sh", "setup.sh").CombinedOutput(); err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}

func TestScriptHasNoDangerousConstructs(t *testing.T) {
	s := string(Script())
	for _, bad := range []string{"set -x", "curl -k", "--insecure", "curl -v", "--verbose", "TOKEN", "token"} {
		if strings.Contains(s, bad) {
			t.Errorf("setup.sh contains %q", bad)
		}
	}
	if len(s) > 1300 { // every byte is paid in every userdata (8 KiB target)
		t.Errorf("setup.sh is %d bytes: keep it short, node does the rest", len(s))
	}
}

var testInputs = Inputs{Source: "https://example.com/p%20q/provision?x=1&y=2#f", SHA256: strings.Repeat("ab", 32), Bin: "/opt/bin/provision"}

// TestSystemdAnalyzeVerify verifies the unit offline: a root holding the
// distribution's unit files, the unit, and stand-ins for the commands it runs.
func TestSystemdAnalyzeVerify(t *testing.T) {
	if err := unitverify.Available(); err != nil {
		t.Fatal(err)
	}
	for _, in := range []Inputs{testInputs, {Source: "http://mirror:8080/p", SHA256: testInputs.SHA256, Bin: "/usr/local/bin/provision", AllowHTTP: true}} {
		u, err := Unit(in)
		if err != nil {
			t.Fatal(err)
		}
		root := t.TempDir()
		if err := unitverify.InstallTargets(root); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(root, "etc/systemd/system", UnitName), u, 0o644)
		mustWrite(t, filepath.Join(root, ScriptPath), string(Script()), 0o755)
		mustWrite(t, filepath.Join(root, "bin/touch"), "#!/bin/sh\n", 0o755)
		if out, err := unitverify.Verify(root, UnitName); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
}

func mustWrite(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func TestUnitParsesBack(t *testing.T) {
	u, err := Unit(testInputs)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := unit.DeserializeOptions(strings.NewReader(u))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range opts {
		got[o.Section+"."+o.Name] = o.Value
	}
	want := map[string]string{
		"Unit.After":               "network-online.target",
		"Unit.Wants":               "network-online.target",
		"Unit.ConditionPathExists": "!" + DoneMarker,
		"Service.Type":             "oneshot",
		"Service.RemainAfterExit":  "yes",
		"Service.ExecStart":        ScriptPath + " https://example.com/p%%20q/provision?x=1&y=2#f " + testInputs.SHA256 + " /opt/bin/provision",
		"Install.WantedBy":         "multi-user.target",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, err := Unit(Inputs{Source: "https://x/a b", SHA256: "x", Bin: "/b"}); err == nil {
		t.Fatal("unsafe argument accepted")
	}
	for _, bad := range []string{"", "a b", "a'b", `a"b`, `a\b`, "a$b", "a`b", "a;b", "a\nb", "ä"} {
		if SafeValue(bad) {
			t.Errorf("SafeValue(%q) = true", bad)
		}
	}
}

// runSetup runs setup.sh against a local HTTP server serving body, with state
// and the binary under a temp dir. It returns stderr, the dir and the exit error.
func runSetup(t *testing.T, body []byte, want string, status int) (string, string, error) {
	t.Helper()
	need(t, "curl", "curl")
	need(t, "sha256sum", "coreutils")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		w.Write(body)
	}))
	defer srv.Close()
	dir := t.TempDir()
	script := filepath.Join(dir, "setup.sh")
	mustWrite(t, script, string(Script()), 0o755)
	bin := filepath.Join(dir, "bin", "provision")
	cmd := exec.Command(script, srv.URL+"/provision", want, bin, "allow-http")
	cmd.Env = append(os.Environ(), "PROVISION_STATE_DIR="+filepath.Join(dir, "state"), "PROVISION_ATTEMPTS=2", "PROVISION_NODE_CONFIG=/etc/provision/node.yaml")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	err := cmd.Run()
	return stderr.String(), dir, err
}

func TestSetupInstallsVerifiedBinaryAndExecsNode(t *testing.T) {
	// The "binary" records how it was run.
	body := []byte("#!/bin/sh\necho \"ran: $*\"\n")
	out, dir, err := runSetup(t, body, testutil.SHA256(body), 200)
	if err != nil {
		t.Fatalf("setup.sh: %v\n%s", err, out)
	}
	if !strings.Contains(out, "ran: node --config /etc/provision/node.yaml") {
		t.Fatalf("binary not exec'd as provision node: %q", out)
	}
	st, err := os.Stat(filepath.Join(dir, "bin", "provision"))
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("binary: %v %v", st, err)
	}
	assertNoTemp(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "state", "setup-failed")); !os.IsNotExist(err) {
		t.Fatal("failure marker left behind")
	}
}

func TestSetupRejectsChecksumMismatch(t *testing.T) {
	body := []byte("#!/bin/sh\necho tampered\n")
	want := strings.Repeat("0", 64)
	out, dir, err := runSetup(t, body, want, 200)
	if err == nil {
		t.Fatalf("mismatch accepted:\n%s", out)
	}
	if strings.Contains(out, "tampered") {
		t.Fatal("the unverified binary ran")
	}
	for _, s := range []string{"sha256 mismatch", "/provision", "expected " + want, "got " + testutil.SHA256(body)} {
		if !strings.Contains(out, s) {
			t.Errorf("message lacks %q: %s", s, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bin", "provision")); !os.IsNotExist(err) {
		t.Fatal("a binary was left behind")
	}
	assertNoTemp(t, dir)
	marker, err := os.ReadFile(filepath.Join(dir, "state", "setup-failed"))
	if err != nil || !strings.Contains(string(marker), "sha256 mismatch") {
		t.Fatalf("failure marker: %q %v", marker, err)
	}
}

func TestSetupDownloadFailure(t *testing.T) {
	out, dir, err := runSetup(t, []byte("nope"), strings.Repeat("0", 64), 404)
	if err == nil || !strings.Contains(out, "failed 2 times") {
		t.Fatalf("want a download failure after 2 attempts: %v\n%s", err, out)
	}
	assertNoTemp(t, dir)
	if b, _ := os.ReadFile(filepath.Join(dir, "state", "setup-failed")); !strings.Contains(string(b), "download of") {
		t.Fatalf("marker: %q", b)
	}
}

func TestSetupRefusesHTTPWithoutAllow(t *testing.T) {
	need(t, "curl", "curl")
	dir := t.TempDir()
	script := filepath.Join(dir, "setup.sh")
	mustWrite(t, script, string(Script()), 0o755)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("x")) }))
	defer srv.Close()
	cmd := exec.Command(script, srv.URL+"/p", strings.Repeat("0", 64), filepath.Join(dir, "bin", "p"))
	cmd.Env = append(os.Environ(), "PROVISION_STATE_DIR="+filepath.Join(dir, "state"), "PROVISION_ATTEMPTS=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Protocol") {
		t.Fatalf("plain http accepted without allow-http: %v %s", err, out)
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "bin", "provision.*"))
	if len(m) > 0 {
		t.Fatalf("temp files left: %v", m)
	}
}

// A prebaked image already holds the pinned binary: setup makes no request and runs
// only `provision node join` when the unit says PROVISION_PHASE=join.
func TestSetupPrebakedDownloadsNothingAndJoins(t *testing.T) {
	need(t, "sha256sum", "coreutils")
	var requests int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		w.WriteHeader(500)
	}))
	defer srv.Close()
	dir := t.TempDir()
	script := filepath.Join(dir, "setup.sh")
	mustWrite(t, script, string(Script()), 0o755)
	body := []byte("#!/bin/sh\necho \"ran: $*\"\n")
	bin := filepath.Join(dir, "bin", "provision")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, bin, string(body), 0o755)
	cmd := exec.Command(script, srv.URL+"/provision", testutil.SHA256(body), bin, "allow-http")
	cmd.Env = append(os.Environ(), "PROVISION_STATE_DIR="+filepath.Join(dir, "state"), "PROVISION_PHASE=join")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("setup.sh: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "ran: node join --config /etc/provision/node.yaml") {
		t.Fatalf("want `node join`, got %q", out)
	}
	if requests != 0 {
		t.Fatalf("prebaked binary was downloaded again (%d requests)", requests)
	}
}

func TestUnitJoinOnly(t *testing.T) {
	in := Inputs{Source: "https://example.com/provision", SHA256: strings.Repeat("a", 64), Bin: "/opt/bin/provision"}
	plain, _ := Unit(in)
	in.JoinOnly = true
	join, _ := Unit(in)
	if strings.Contains(plain, "PROVISION_PHASE") || !strings.Contains(join, "Environment=PROVISION_PHASE=join\n") {
		t.Fatalf("JoinOnly must add exactly Environment=PROVISION_PHASE=join:\n%s\n---\n%s", plain, join)
	}
}

// The unit's run-once condition is the marker node writes after a successful join.
func TestDoneMarkerIsNodes(t *testing.T) {
	if DoneMarker != node.DoneMarker {
		t.Fatalf("setup waits for %s but node writes %s", DoneMarker, node.DoneMarker)
	}
}
