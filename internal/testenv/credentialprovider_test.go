package testenv

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	credentialproviderv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"
	sigsjson "sigs.k8s.io/json"
)

// TestCredentialProviderPlugin: the built plugin answers a
// CredentialProviderRequest on stdin with a response that decodes strictly
// into the kubelet's own CredentialProviderResponse, for the image's registry,
// with the credentials of its environment, flags or password file; a bad
// request or missing credentials fail with a message on stderr.
func TestCredentialProviderPlugin(t *testing.T) {
	bin := CredentialProviderPlugin(t, t.TempDir())
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 || filepath.Base(bin) != CredentialProviderName {
		t.Fatalf("plugin %s: %v %v", bin, fi, err)
	}
	passFile := filepath.Join(t.TempDir(), "password")
	os.WriteFile(passFile, []byte("from-file\n"), 0o600)
	call := func(req string, env []string, args ...string) (string, string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append([]string{}, env...) // never the test process's environment
		cmd.Stdin = strings.NewReader(req)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	request := func(version, image string) string {
		return `{"apiVersion":"credentialprovider.kubelet.k8s.io/` + version + `","kind":"CredentialProviderRequest","image":"` + image + `"}`
	}
	envCreds := []string{CredentialProviderUserEnv + "=alice", CredentialProviderPasswordEnv + "=s3cret"}
	for _, tc := range []struct {
		name, req    string
		env, args    []string
		registry     string
		user, passwd string
	}{
		{name: "env", req: request("v1", "10.0.0.5:5000/team/app:v1"), env: envCreds, registry: "10.0.0.5:5000", user: "alice", passwd: "s3cret"},
		{name: "args", req: request("v1", "registry.example.com/app@sha256:"+strings.Repeat("a", 64)), args: []string{"-username=bob", "-password=pw"}, registry: "registry.example.com", user: "bob", passwd: "pw"},
		{name: "password file", req: request("v1", "localhost/app"), env: envCreds, args: []string{"-password-file=" + passFile}, registry: "localhost", user: "alice", passwd: "from-file"},
		{name: "docker hub", req: request("v1", "library/busybox"), env: envCreds, registry: "docker.io", user: "alice", passwd: "s3cret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, err := call(tc.req, tc.env, tc.args...)
			if err != nil {
				t.Fatalf("%v: %s", err, stderr)
			}
			var resp credentialproviderv1.CredentialProviderResponse
			strict, err := sigsjson.UnmarshalStrict([]byte(out), &resp)
			if err != nil || len(strict) > 0 {
				t.Fatalf("decode %s: %v %v", out, err, strict)
			}
			if resp.APIVersion != "credentialprovider.kubelet.k8s.io/v1" || resp.Kind != "CredentialProviderResponse" ||
				resp.CacheKeyType != credentialproviderv1.RegistryPluginCacheKeyType || resp.CacheDuration == nil || resp.CacheDuration.Duration != time.Minute {
				t.Errorf("response %+v", resp)
			}
			if a, ok := resp.Auth[tc.registry]; !ok || len(resp.Auth) != 1 || a.Username != tc.user || a.Password != tc.passwd {
				t.Errorf("auth %+v, want %s: %s", resp.Auth, tc.registry, tc.user)
			}
		})
	}
	// The response is in the request's version (the kubelet checks it).
	out, _, err := call(request("v1beta1", "gcr.io/x"), envCreds)
	var m map[string]any
	if err != nil || json.Unmarshal([]byte(out), &m) != nil || m["apiVersion"] != "credentialprovider.kubelet.k8s.io/v1beta1" {
		t.Errorf("v1beta1: %v %s", err, out)
	}
	for name, c := range map[string]struct {
		req string
		env []string
	}{
		"not a request":  {`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1"}`, envCreds},
		"no image":       {`{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1"}`, envCreds},
		"garbage":        {`{`, envCreds},
		"no credentials": {request("v1", "gcr.io/x"), nil},
	} {
		if out, stderr, err := call(c.req, c.env); err == nil || out != "" || stderr == "" {
			t.Errorf("%s: %v, stdout %q, stderr %q", name, err, out, stderr)
		}
	}
}
