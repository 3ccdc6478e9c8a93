//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/testenv"
)

// The private registry scenario's names: appRegistry has no DNS anywhere
// (.invalid), so only its mirror, the test's registry, can serve the image.
const (
	appRegistry = "registry.e2e.invalid"
	appRepo     = "e2e/app"
	appTag      = "1"
	pullUser    = "puller"
)

// TestRegistry: a pod's image is pulled from a real registry (CNCF
// distribution, built from the Go module proxy) inside the test's namespace
// that serves TLS with the test's own CA and requires credentials, through
// the mirror the GenerateConfig configures for a registry name no DNS knows.
// The node joins through generate's cloud-init userdata (containerd.registryMirrors
// and containerd.registries: the mirror's CA and a username/password) with
// Debian 12's containerd. Asserted: the pod runs the pushed image (its digest);
// the registry's log shows the node's authenticated pulls by the user of the
// manifest and blobs; the registry refuses requests without credentials (GET
// /v2/ is 401, and the node's own containerd pulling without the CRI's
// credentials is refused); hosts.toml names the mirror with the CA; the
// password is in none of node.yaml, status.json, the journal, cloud-init's logs
// or any process's argv/environment, and the credentials file and containerd's
// config are 0600.
func TestRegistry(t *testing.T) {
	e := newJoinEnvVersion(t, kubeletVersion)
	reg := testenv.StartRegistry(t, e.ns, pullUser)
	// The app image is the pause stand-in plus a file of its own: its layer is
	// not the imported pause image's, so containerd must fetch it.
	img := testenv.PauseOCIImage(t, map[string][]byte{"etc/e2e-app": []byte("app " + randHex(t, 8) + "\n")})
	reg.Push(t, appRepo, appTag, img)
	mirror := reg.URL
	e.genConfig = func(c *v1alpha1.GenerateConfig) {
		c.Containerd.RegistryMirrors = map[string][]string{appRegistry: {mirror}}
		c.Containerd.Registries = map[string]v1alpha1.Registry{
			reg.Host: {CACert: string(reg.CACert), Username: pullUser, Password: reg.Password},
		}
	}

	// The registry requires credentials: anonymous requests are refused.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, p := range []string{"/v2/", "/v2/" + appRepo + "/manifests/" + appTag} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.URL+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := reg.Client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous GET %s: %s, want 401", p, resp.Status)
		}
	}

	procs := watchProcs(t, &markers{values: map[string]string{"registry password": reg.Password}})
	m := e.cloudInitJoin(t, "e2e-registry")

	image := appRegistry + "/" + appRepo + ":" + appTag
	start := time.Now()
	pod, err := e.cluster.RunPodPull(ctx, "e2e-registry", "app", image, corev1.PullAlways)
	if err != nil {
		r, _ := m.Exec(context.Background(), "journalctl", "-b", "--no-pager", "-u", "kubelet", "-u", "containerd", "-n", "40")
		t.Fatalf("pod of %s: %v\n%s\nregistry:\n%s", image, err, r.Stdout, reg.Log(20))
	}
	running := time.Since(start)
	pulled := pullEvent(ctx, t, e.cluster, "app")
	t.Logf("timing: pod of %s created → Running %v; kubelet: %s", image, running.Round(time.Millisecond), pulled)
	want := appRegistry + "/" + appRepo + "@" + img.ManifestDigest
	if id := pod.Status.ContainerStatuses[0].ImageID; id != want {
		t.Errorf("pod's imageID %q, want %q (the pushed manifest)", id, want)
	}

	// The registry's log: the node's containerd pulled the manifest and every
	// blob as the user; its anonymous first attempts (containerd asks without
	// credentials until challenged) were refused.
	nl := nodeRequests(t, reg)
	t.Logf("registry log, from the node's containerd: %d manifest and %d blob requests by %q, %d refused without credentials",
		nl.manifests, len(nl.blobs), pullUser, nl.refused)
	for _, r := range nl.others {
		t.Errorf("node request %s %s (status %d) as user %q, want %q", r.Method, r.URI, r.Status, r.User, pullUser)
	}
	if nl.manifests == 0 {
		t.Errorf("the registry's log shows no manifest request by %q from the node:\n%s", pullUser, reg.Log(30))
	}
	for _, b := range img.Blobs {
		if !nl.blobs[b.Digest] {
			t.Errorf("the registry's log shows no GET of blob %s by %q from the node", b.Digest, pullUser)
		}
	}

	// The node's own containerd without the CRI's credentials (ctr, with the
	// same hosts directory: mirror and CA) reaches the registry over TLS and is
	// refused by it.
	r, err := m.Exec(ctx, "ctr", "-n", "e2e-anonymous", "images", "pull", "--hosts-dir", "/etc/containerd/certs.d", image)
	if err != nil {
		t.Fatal(err)
	}
	out := r.Stdout + r.Stderr
	after := nodeRequests(t, reg)
	switch {
	case r.ExitCode == 0:
		t.Errorf("ctr pull without credentials succeeded:\n%s", tail(out, 10))
	case after.refused <= nl.refused:
		t.Errorf("ctr pull without credentials: exit %d, but the registry refused no new request from the node (TLS?):\n%s\nregistry:\n%s", r.ExitCode, tail(out, 10), reg.Log(10))
	default:
		t.Logf("ctr pull without credentials through the same hosts.toml: exit %d, %d requests refused by the registry: %s", r.ExitCode, after.refused-nl.refused, lastNonEmpty(out))
	}

	// hosts.toml: the mirror, checked with the test's CA written beside it.
	hostsTOML := testenv.MustRead(t, m.Root.Path("/etc/containerd/certs.d/"+appRegistry+"/hosts.toml"))
	var hosts struct {
		Host map[string]struct {
			Capabilities []string `toml:"capabilities"`
			CA           any      `toml:"ca"`
		} `toml:"host"`
	}
	if err := toml.Unmarshal(hostsTOML, &hosts); err != nil {
		t.Fatalf("hosts.toml: %v\n%s", err, hostsTOML)
	}
	h, ok := hosts.Host[mirror]
	caPath := v1alpha1.RegistryCAPath(reg.Host)
	if !ok || h.CA != caPath || !hasString(h.Capabilities, "pull") {
		t.Errorf("hosts.toml: [host.%q] %+v, want ca = %q and the pull capability:\n%s", mirror, h, caPath, hostsTOML)
	}
	if ca := testenv.MustRead(t, m.Root.Path(caPath)); !bytes.Equal(bytes.TrimSpace(ca), bytes.TrimSpace(reg.CACert)) {
		t.Errorf("%s is not the registry's CA", caPath)
	}

	// The password: only in the 0600 credentials file and containerd's 0600 config.
	for _, p := range []string{v1alpha1.RegistryCredentialsPath, "/etc/containerd/config.toml"} {
		fi, err := os.Stat(m.Root.Path(p))
		switch {
		case err != nil:
			t.Errorf("%s: %v", p, err)
		case fi.Mode().Perm() != 0o600:
			t.Errorf("%s mode %o, want 600", p, fi.Mode().Perm())
		case !bytes.Contains(testenv.MustRead(t, m.Root.Path(p)), []byte(reg.Password)):
			t.Errorf("%s does not hold the registry's credentials", p)
		}
	}
	_, journalJSON := journal(t, m)
	texts := map[string][]byte{
		"journal":                        journalJSON,
		v1alpha1.NodeConfigPath:          testenv.MustRead(t, m.Root.Path(v1alpha1.NodeConfigPath)),
		"/var/lib/provision/status.json": testenv.MustRead(t, m.Root.Path("/var/lib/provision/status.json")),
		"the registry's log":             []byte(reg.Log(100000)),
	}
	for _, p := range []string{"/var/log/cloud-init.log", "/var/log/cloud-init-output.log"} {
		if data, err := os.ReadFile(m.Root.Path(p)); err == nil {
			texts[p] = data
		}
	}
	for name, data := range texts {
		if bytes.Contains(data, []byte(reg.Password)) {
			t.Errorf("%s holds the registry password", name)
		}
	}
	procs.check(t)
	t.Logf("registry password: in none of %d texts checked; %s and config.toml 0600", len(texts), v1alpha1.RegistryCredentialsPath)
}

// pullEvent returns the kubelet's Pulled event message for the pod (it names
// the pull's duration).
func pullEvent(ctx context.Context, t *testing.T, c *testenv.Cluster, pod string) string {
	t.Helper()
	list, err := c.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range list.Items {
		if ev.Reason == "Pulled" {
			return ev.Message
		}
	}
	return "no Pulled event"
}

// nodeLog is what the registry's log says about the node's requests.
type nodeLog struct {
	manifests, refused int
	blobs              map[string]bool // digests fetched (GET, 200) by pullUser
	others             []testenv.RegistryRequest
}

// nodeRequests sorts the registry's logged requests from the node's containerd.
func nodeRequests(t *testing.T, reg *testenv.Registry) nodeLog {
	t.Helper()
	nl := nodeLog{blobs: map[string]bool{}}
	for _, r := range reg.Requests(t) {
		// The node's traffic to ServerAddr stays inside the namespace, so its
		// source address is ServerAddr too: containerd is told by its user agent.
		if !strings.HasPrefix(r.Agent, "containerd/") {
			continue
		}
		switch {
		case r.Status == http.StatusUnauthorized:
			nl.refused++
		case r.User != pullUser:
			nl.others = append(nl.others, r)
		case strings.HasPrefix(r.URI, "/v2/"+appRepo+"/manifests/"):
			nl.manifests++
		case strings.HasPrefix(r.URI, "/v2/"+appRepo+"/blobs/") && r.Method == http.MethodGet && r.Status == http.StatusOK:
			// containerd adds ?ns=HOST (the registry the mirror stands in for).
			d, _, _ := strings.Cut(strings.TrimPrefix(r.URI, "/v2/"+appRepo+"/blobs/"), "?")
			nl.blobs[d] = true
		}
	}
	return nl
}
