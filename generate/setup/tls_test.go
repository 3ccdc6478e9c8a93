package setup

import (
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/internal/testutil"
)

// TestSetupVerifiesTLS: setup.sh downloads over https with certificate
// verification on. Against a server whose certificate is not trusted it
// refuses (curl exit 60), leaves no binary and no temp file, and runs nothing;
// the same server trusted through CURL_CA_BUNDLE works, so the refusal is the
// certificate check and nothing else. Its argv holds the URL, the pinned
// sha256 and the binary path: never a token.
func TestSetupVerifiesTLS(t *testing.T) {
	need(t, "curl", "curl")
	need(t, "sha256sum", "coreutils")
	body := []byte("#!/bin/sh\necho \"ran: $*\"\n")
	var hits int
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++; w.Write(body) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	script := filepath.Join(dir, "setup.sh")
	mustWrite(t, script, string(Script()), 0o755)
	caFile := filepath.Join(dir, "server-ca.pem")
	mustWrite(t, caFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})), 0o644)
	bin := filepath.Join(dir, "bin", "provision")
	run := func(extraEnv ...string) (string, error) {
		cmd := exec.Command(script, srv.URL+"/provision", testutil.SHA256(body), bin)
		cmd.Env = append(os.Environ(), append([]string{"PROVISION_STATE_DIR=" + filepath.Join(dir, "state"), "PROVISION_ATTEMPTS=1", "CURL_CA_BUNDLE=", "SSL_CERT_FILE=", "SSL_CERT_DIR=/nonexistent"}, extraEnv...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run()
	if err == nil || strings.Contains(out, "ran: ") {
		t.Fatalf("untrusted certificate accepted: %v\n%s", err, out)
	}
	if !strings.Contains(out, "download of "+srv.URL+"/provision failed") {
		t.Errorf("message: %s", out)
	}
	if _, err := os.Stat(bin); !os.IsNotExist(err) {
		t.Fatal("a binary was left behind")
	}
	assertNoTemp(t, dir)
	if hits != 0 {
		t.Errorf("the server answered %d requests: the TLS handshake must fail first", hits)
	}
	out, err = run("CURL_CA_BUNDLE=" + caFile)
	if err != nil || !strings.Contains(out, "ran: node --config") {
		t.Fatalf("trusted server refused (the refusal above was not about the certificate?): %v\n%s", err, out)
	}
	u, err := Unit(Inputs{Source: srv.URL + "/provision", SHA256: testutil.SHA256(body), Bin: bin})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(u, "\n") {
		if strings.HasPrefix(l, "ExecStart=") && len(strings.Fields(l)) != 4 {
			t.Errorf("setup.sh gets more than URL, sha256 and path: %s", l)
		}
	}
}
