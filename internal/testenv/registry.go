package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"sigs.k8s.io/yaml"
)

// RegistryVersion is the CNCF distribution registry hack/build-registry.sh
// builds from the Go module proxy (which serves v3.0.0, v3.1.0 and v3.1.2).
const RegistryVersion = "v3.1.2"

// RegistryBinary runs hack/build-registry.sh, which builds distribution's
// registry from the Go module proxy into the cache once (about 13 minutes cold
// on a busy 2-core machine, most of it downloading modules) and checks the
// cached binary's version on every later call. Concurrent test processes wait
// for each other on a lock file next to the cached binary.
func RegistryBinary(t testing.TB) string {
	t.Helper()
	done := Phase(t, "registry "+RegistryVersion)
	defer done()
	dir := filepath.Join(CacheDir(t), "registry")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("cache: %v", err)
	}
	unlock := lockFile(t, filepath.Join(dir, RegistryVersion+".lock"))
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	root := ModuleRoot(t)
	out, err := run(ctx, root, []string{"PROVISION_TEST_CACHE=" + CacheDir(t)}, "bash", filepath.Join(root, "hack", "build-registry.sh"), RegistryVersion)
	if err != nil {
		t.Fatalf("hack/build-registry.sh: %v", err)
	}
	t.Logf("build-registry: %s", lastLines(out, 2))
	p := filepath.Join(dir, RegistryVersion, "registry")
	mustExist(t, p)
	return p
}

// Registry is distribution's registry run by the test: TLS with a serving
// certificate of its own CA, htpasswd (bcrypt) authentication of one user,
// filesystem storage in a temporary directory, a JSON log the test reads.
// It is stopped by its PID at cleanup.
type Registry struct {
	// Host is IP:PORT, the registry's host in image references and containerd's config.
	Host string
	// URL is https://Host.
	URL string
	// CACert is the PEM of the CA that signed the serving certificate (and nothing else).
	CACert []byte
	// Username and Password are the only credentials the registry accepts.
	Username, Password string
	// LogFile is the registry's log (JSON lines: one "response completed" per request).
	LogFile string
	// Client trusts CACert, dials from the registry's namespace and sends no credentials.
	Client *http.Client

	proc *process
}

// registryConfig is the part of distribution's configuration the test sets
// (https://distribution.github.io/distribution/about/configuration/).
type registryConfig struct {
	Version string          `json:"version"`
	Log     registryLog     `json:"log"`
	Storage registryStorage `json:"storage"`
	HTTP    registryHTTP    `json:"http"`
	Auth    registryAuth    `json:"auth"`
}

type registryLog struct {
	Level     string `json:"level"`
	Formatter string `json:"formatter"`
	AccessLog struct {
		Disabled bool `json:"disabled"`
	} `json:"accesslog"`
}

type registryStorage struct {
	Filesystem struct {
		RootDirectory string `json:"rootdirectory"`
	} `json:"filesystem"`
}

type registryHTTP struct {
	Addr string `json:"addr"`
	// Secret signs upload state; set so the registry does not log a generated one.
	Secret string `json:"secret"`
	TLS    struct {
		Certificate string `json:"certificate"`
		Key         string `json:"key"`
	} `json:"tls"`
}

type registryAuth struct {
	Htpasswd struct {
		Realm string `json:"realm"`
		Path  string `json:"path"`
	} `json:"htpasswd"`
}

// StartRegistry runs the registry (RegistryBinary) inside ns on ServerAddr, or
// on 127.0.0.1 in the test's own network namespace when ns is nil, accepting
// user with a random password, and waits until it answers over HTTPS with its
// CA: an anonymous GET /v2/ is refused with 401 and a Basic challenge.
func StartRegistry(t testing.TB, ns *NetNS, user string) *Registry {
	t.Helper()
	bin := RegistryBinary(t)
	done := Phase(t, "registry start")
	defer done()
	dir := t.TempDir()
	addr := "127.0.0.1"
	if ns != nil {
		addr = ServerAddr
	}
	host := freeAddr(t, ns, addr)

	ca := newCA(t, "provision-e2e-registry-ca")
	crt, key := ca.issue(t, "provision-e2e-registry", nil, []net.IP{net.ParseIP(addr)}, nil).write(t, dir, "registry")
	password := randomHex(t, 16)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg registryConfig
	cfg.Version = "0.1"
	cfg.Log.Level = "info"
	cfg.Log.Formatter = "json"
	cfg.Log.AccessLog.Disabled = true
	cfg.Storage.Filesystem.RootDirectory = filepath.Join(dir, "storage")
	cfg.HTTP.Addr = host
	cfg.HTTP.Secret = randomHex(t, 16)
	cfg.HTTP.TLS.Certificate, cfg.HTTP.TLS.Key = crt, key
	cfg.Auth.Htpasswd.Realm = "provision-e2e"
	cfg.Auth.Htpasswd.Path = htpasswd
	cfgYAML, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, cfgYAML, 0o600); err != nil {
		t.Fatal(err)
	}

	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	if ns != nil {
		tr.DialContext = ns.DialContext
	}
	r := &Registry{
		Host: host, URL: "https://" + host, CACert: ca.certPEM(), Username: user, Password: password,
		LogFile: filepath.Join(dir, "registry.log"),
		Client:  &http.Client{Transport: tr, Timeout: 2 * time.Minute},
	}
	// No tracing collector exists: the OpenTelemetry exporter is switched off.
	r.proc = startProcess(t, "registry", ns, r.LogFile, []string{"OTEL_TRACES_EXPORTER=none"}, bin, "serve", cfgFile)
	t.Cleanup(func() { r.proc.stop(t) })
	r.waitReady(t)
	return r
}

// waitReady polls GET /v2/ every 100 ms until the registry refuses it for
// lack of credentials, with its Basic challenge.
func (r *Registry) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		if !r.proc.alive() {
			t.Fatalf("registry exited: %v\n%s", r.proc.cmd.ProcessState, r.Log(40))
		}
		resp, err := r.Client.Get(r.URL + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized && strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("registry not ready after 30s: %s\n%s", last, r.Log(40))
}

// Log returns the tail of the registry's log.
func (r *Registry) Log(lines int) string {
	data, err := os.ReadFile(r.LogFile)
	if err != nil {
		return err.Error()
	}
	return lastLines(string(data), lines)
}

// Push pushes img as repo:tag with the registry's credentials (PushImage).
func (r *Registry) Push(t testing.TB, repo, tag string, img *Image) {
	t.Helper()
	done := Phase(t, "registry push "+repo+":"+tag)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := PushImage(ctx, r.Client, r.URL, r.Username, r.Password, repo, tag, img); err != nil {
		t.Fatalf("push %s/%s:%s: %v\n%s", r.Host, repo, tag, err, r.Log(20))
	}
}

// RegistryRequest is one request the registry logged.
type RegistryRequest struct {
	User   string `json:"auth.user.name"`
	Method string `json:"http.request.method"`
	URI    string `json:"http.request.uri"`
	Agent  string `json:"http.request.useragent"`
	// Remote is the client's IP:PORT (inside a test namespace, ServerAddr for
	// every client: the node's traffic to ServerAddr stays local to it).
	Remote string `json:"http.request.remoteaddr"`
	Status int    `json:"http.response.status"`
	Msg    string `json:"msg"`
}

// Requests returns the requests the registry has answered (its "response
// completed" log lines) and refused for lack of credentials (its "error
// authorizing context" lines, as status 401), in order.
func (r *Registry) Requests(t testing.TB) []RegistryRequest {
	t.Helper()
	f, err := os.Open(r.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []RegistryRequest
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var req RegistryRequest
		if json.Unmarshal(sc.Bytes(), &req) != nil {
			continue
		}
		switch {
		case strings.HasPrefix(req.Msg, "response completed"):
			out = append(out, req)
		case strings.HasPrefix(req.Msg, "error authorizing context"):
			// A request refused with the Basic challenge.
			req.Status = http.StatusUnauthorized
			out = append(out, req)
		}
	}
	return out
}

// freeAddr returns IP:PORT with a port free on addr (inside ns, if not nil).
func freeAddr(t testing.TB, ns *NetNS, addr string) string {
	t.Helper()
	var l net.Listener
	var err error
	if ns != nil {
		l, err = ns.Listen(addr + ":0")
	} else {
		l, err = net.Listen("tcp", addr+":0")
	}
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	defer l.Close()
	return l.Addr().String()
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// ErrUnauthorized is returned (wrapped) when the registry refuses the credentials.
var ErrUnauthorized = errors.New("unauthorized")

// PushImage pushes img to the registry at base (https://HOST) as repo:tag over
// the OCI distribution API with Basic authentication: each blob the registry
// lacks (HEAD) is uploaded monolithically (POST to open an upload session, PUT
// of the whole blob with its digest), then the manifest is PUT by tag. Errors
// name the request and status, never the password.
func PushImage(ctx context.Context, hc *http.Client, base, user, password, repo, tag string, img *Image) error {
	do := func(method, u, contentType string, body []byte) (*http.Response, error) {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, rd)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, u, err)
		}
		req.SetBasicAuth(user, password)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if body != nil {
			req.ContentLength = int64(len(body))
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, u, err)
		}
		return resp, nil
	}
	expect := func(resp *http.Response, method, u string, want int) error {
		defer resp.Body.Close()
		if resp.StatusCode == want {
			return nil
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		err := fmt.Errorf("%s %s: %s, want %d: %s", method, u, resp.Status, want, strings.TrimSpace(string(msg)))
		if resp.StatusCode == http.StatusUnauthorized {
			err = fmt.Errorf("%w: %w", ErrUnauthorized, err)
		}
		return err
	}
	for _, b := range img.Blobs {
		blobURL := base + "/v2/" + repo + "/blobs/" + b.Digest
		resp, err := do(http.MethodHead, blobURL, "", nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			continue
		}
		upload := base + "/v2/" + repo + "/blobs/uploads/"
		if resp, err = do(http.MethodPost, upload, "", nil); err != nil {
			return err
		}
		loc := resp.Header.Get("Location")
		if err := expect(resp, http.MethodPost, upload, http.StatusAccepted); err != nil {
			return err
		}
		putURL, err := uploadURL(base, loc, b.Digest)
		if err != nil {
			return fmt.Errorf("POST %s: %w", upload, err)
		}
		if resp, err = do(http.MethodPut, putURL, "application/octet-stream", b.Data); err != nil {
			return err
		}
		if err := expect(resp, http.MethodPut, blobURL, http.StatusCreated); err != nil {
			return err
		}
	}
	manifestURL := base + "/v2/" + repo + "/manifests/" + tag
	resp, err := do(http.MethodPut, manifestURL, ImageManifestType, img.Manifest)
	if err != nil {
		return err
	}
	if got := resp.Header.Get("Docker-Content-Digest"); resp.StatusCode == http.StatusCreated && got != "" && got != img.ManifestDigest {
		resp.Body.Close()
		return fmt.Errorf("PUT %s: the registry stored digest %s, want %s", manifestURL, got, img.ManifestDigest)
	}
	return expect(resp, http.MethodPut, manifestURL, http.StatusCreated)
}

// uploadURL resolves an upload session's Location (absolute or relative to
// base) and adds the blob's digest to its query.
func uploadURL(base, location, digest string) (string, error) {
	if location == "" {
		return "", errors.New("no Location for the upload session")
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	l, err := b.Parse(location)
	if err != nil {
		return "", fmt.Errorf("upload Location %q: %w", location, err)
	}
	q := l.Query()
	q.Set("digest", digest)
	l.RawQuery = q.Encode()
	return l.String(), nil
}
