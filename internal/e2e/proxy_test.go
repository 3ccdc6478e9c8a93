//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/testenv"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/node"
	"github.com/provision-dev/provision/osprofiles"
)

// The proxy scenario's addresses: the node's namespace reaches the proxy's
// namespace over a second veth pair (proxyNodeAddr <-> proxyAddr); the origin
// (provision, the artifacts and the apt repository) listens on originAddr, an
// address on the proxy namespace's loopback device that the node's namespace
// has an unreachable route to. Only the proxy, which runs in that namespace,
// can reach it; the proxy in turn has no route to the API server
// (testenv.ServerAddr), which the node reaches directly.
const (
	proxyNodeAddr = "10.213.1.1"
	proxyAddr     = "10.213.1.2"
	proxyPort     = "8888"
	originAddr    = "10.213.2.1"
	proxyUser     = "node"
	proxyPassword = "Pr0xyPa55word"
	// proxyServiceCIDR is testenv.StartCluster's --service-cluster-ip-range.
	proxyServiceCIDR = "10.96.0.0/16"
)

// TestProxy joins a node whose every download goes through a real forward
// proxy (Debian's tinyproxy, with basic auth) because the origin server is
// unreachable directly: `provision generate` with a proxy and the cluster's
// pod and service CIDRs → NoCloud seed → real cloud-init → setup's unit
// (setup.sh's curl of provision) → `provision node` (artifacts through its
// downloader, apt) → containerd and the kubelet, both with the proxy's
// environment file → the Node is Ready and a pod runs. The API server is
// reached directly (generate adds its host to noProxy; the proxy could not
// reach it): the proxy's log shows setup's binary, the artifacts and apt, and
// no request to the API server. The proxy's credentials appear nowhere but the
// 0600 environment file (and the userdata that writes it).
func TestProxy(t *testing.T) {
	testenv.Require(t)
	tinyproxy, err := exec.LookPath("tinyproxy")
	if err != nil {
		t.Fatalf("tinyproxy: %v (hack/e2e-prereqs.sh installs Debian's tinyproxy-bin)", err)
	}
	testStart := time.Now()
	e := &joinEnv{version: kubeletVersion, kubeletVersion: kubeletVersion, repo: localRepo(t)}
	e.ns = testenv.NewNetNS(t)
	e.cluster = testenv.StartCluster(t, e.ns, kubeletVersion)
	e.a = buildJoinArtifacts(t, e.repo, filepath.Join(e.cluster.KubeDir, "kubelet"))
	e.pauseTar = testenv.PauseImage(t, t.TempDir())
	e.provSHA = testutil.SHA256File(t, e.a.provision)
	pns := newProxyNetNS(t, e.ns)

	// The origin: provision, the artifacts and the apt repository, in the
	// proxy's namespace only.
	mux := http.NewServeMux()
	mux.Handle("/apt/", http.StripPrefix("/apt/", http.FileServer(http.Dir(e.repo.Dir))))
	mux.Handle("/artifacts/", http.StripPrefix("/artifacts/", http.FileServer(http.Dir(e.a.dir))))
	mux.HandleFunc("/provision", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, e.a.provision) })
	e.artReqs = &requestLog{counts: map[string]int{}}
	e.art = pns.ServeOn(t, originAddr, e.artReqs.wrap(mux))
	e.prov, e.provReqs = e.art, e.artReqs
	originHost := strings.TrimPrefix(e.art.URL, "http://")
	checkOriginUnreachable(t, e.ns, originHost, "before the join")
	logFile := startTinyproxy(t, tinyproxy, pns)

	proxyURL := "http://" + proxyUser + ":" + proxyPassword + "@" + proxyAddr + ":" + proxyPort
	e.genConfig = func(c *v1alpha1.GenerateConfig) {
		c.Proxy = v1alpha1.Proxy{HTTPProxy: proxyURL, HTTPSProxy: proxyURL}
		c.PodCIDRs = []string{testenv.PodSubnet}
		c.ServiceCIDRs = []string{proxyServiceCIDR}
	}
	token := e.cluster.CreateToken(t, 15*time.Minute)
	u := e.generateUserdata(t, osprofiles.CloudInit, "e2e-proxy", token, e.provSHA)
	root := testenv.NewRoot(t, testenv.BookwormCloudInit)
	testenv.InstallNodeShims(t, root, e.pauseTar)
	e.installMirrorKey(t, root)
	seedNoCloud(t, root, u, "e2e-proxy-1")
	t.Logf("prepared (cluster, artifacts, proxy, userdata, root) in %v", time.Since(testStart).Round(time.Millisecond))
	m, _ := e.bootAndJoin(t, root, u, "proxy", 6*time.Minute)

	// Every download reached the origin, which only the proxy can reach.
	counts := e.artReqs.reset()
	t.Logf("origin requests (all through the proxy): %v", counts)
	if counts["provision"] == 0 || counts["apt"] == 0 || counts["artifacts"] < 3 {
		t.Errorf("origin requests %v: want provision, apt and 3 artifacts (kubelet, CNI, crictl)", counts)
	}
	logData, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	checkProxyLog(t, string(logData), e.a)
	checkOriginUnreachable(t, e.ns, originHost, "after the join")
	// From inside the node, without the proxy: curl fails to connect.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if r, err := m.Exec(ctx, "curl", "--noproxy", "*", "-sS", "-o", "/dev/null", "--max-time", "5", e.art.URL+"/provision"); err != nil || r.ExitCode == 0 {
		t.Errorf("curl --noproxy '*' of the origin from the node: %v %+v; want a failure", err, r)
	} else {
		t.Logf("curl --noproxy '*' from the node: exit %d, %s (as intended)", r.ExitCode, strings.TrimSpace(r.Stderr))
	}

	// The environment file: 0600, the cluster's ranges in no_proxy.
	envPath := root.Path(v1alpha1.ProxyEnvPath)
	if fi, err := os.Stat(envPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, want mode 0600", v1alpha1.ProxyEnvPath, err)
	}
	kvs, err := v1alpha1.ParseProxyEnv(root.ReadFile(t, v1alpha1.ProxyEnvPath))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range kvs {
		env[kv[0]] = kv[1]
	}
	wantNoProxy := strings.Join([]string{"localhost", "127.0.0.1", testenv.ServerAddr, testenv.PodSubnet, proxyServiceCIDR}, ",")
	if env["no_proxy"] != wantNoProxy || env["http_proxy"] != proxyURL || env["https_proxy"] != proxyURL {
		t.Errorf("%s: no_proxy=%s, http_proxy and https_proxy set: %v %v; want no_proxy=%s and the proxy URL",
			v1alpha1.ProxyEnvPath, env["no_proxy"], env["http_proxy"] == proxyURL, env["https_proxy"] == proxyURL, wantNoProxy)
	} else {
		t.Logf("%s: no_proxy=%s", v1alpha1.ProxyEnvPath, env["no_proxy"])
	}

	// setup, containerd and the kubelet read the file; the running daemons
	// have the settings in their environment.
	for _, unit := range []string{"provision-setup.service", "containerd.service", "kubelet.service"} {
		if out, err := m.Output(ctx, "systemctl", "show", "-p", "EnvironmentFiles", unit); err != nil || !strings.Contains(out, v1alpha1.ProxyEnvPath) {
			t.Errorf("%s EnvironmentFiles: %q %v", unit, out, err)
		}
	}
	for _, unit := range []string{"containerd.service", "kubelet.service"} {
		r, err := m.Exec(ctx, "sh", "-c", `tr '\0' '\n' </proc/"$(systemctl show -p MainPID --value `+unit+`)"/environ`)
		if err != nil || r.ExitCode != 0 {
			t.Errorf("%s's environment: %v %s", unit, err, r.Stderr)
			continue
		}
		lines := strings.Split(r.Stdout, "\n") // holds the credentials: never printed
		if !slices.Contains(lines, "https_proxy="+proxyURL) || !slices.Contains(lines, "no_proxy="+wantNoProxy) {
			t.Errorf("%s runs without the proxy settings in its environment", unit)
		}
	}
	for _, p := range []string{node.ContainerdProxyDropInPath, node.KubeletDropInPath} {
		data := root.ReadFile(t, p)
		if !strings.Contains(string(data), "EnvironmentFile="+v1alpha1.ProxyEnvPath) || strings.Contains(string(data), proxyPassword) {
			t.Errorf("%s:\n%s", p, data)
		}
	}

	// The credentials are in the environment file and the userdata only.
	_, journalJSON := journal(t, m)
	secretFree := map[string][]byte{"node.yaml (generated)": u.nodeYAML, "journal": journalJSON}
	for _, g := range []string{"/etc/provision/*.yaml", "/var/lib/provision/*", "/var/log/cloud-init*.log", "/etc/systemd/system/*.service", "/etc/systemd/system/*.d/*.conf", "/var/lib/kubelet/*.yaml"} {
		files, _ := filepath.Glob(root.Path(g))
		for _, f := range files {
			if data, err := os.ReadFile(f); err == nil {
				secretFree[strings.TrimPrefix(f, root.Dir)] = data
			}
		}
	}
	for name, data := range secretFree {
		if bytes.Contains(data, []byte(proxyPassword)) {
			t.Errorf("%s holds the proxy password", name)
		}
	}
	t.Logf("proxy password: absent from %d files and the journal; TestProxy total %v", len(secretFree)-1, time.Since(testStart).Round(time.Millisecond))
}

// checkOriginUnreachable fails the test if the origin answers a direct
// connection from the node's namespace.
func checkOriginUnreachable(t *testing.T, ns *testenv.NetNS, hostPort, when string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := ns.DialContext(ctx, "tcp", hostPort); err == nil {
		c.Close()
		t.Fatalf("the origin %s is reachable directly from the node's namespace %s", hostPort, when)
	} else {
		t.Logf("direct route to the origin %s: %v (as intended)", when, err)
	}
}

// checkProxyLog asserts tinyproxy's log: GETs of setup's binary, each
// artifact and apt's files at the origin, every one authenticated, and no
// request to the API server (noProxy holds its host).
func checkProxyLog(t *testing.T, log string, a nodeArtifacts) {
	t.Helper()
	proxied := map[string]int{}
	for _, line := range strings.Split(log, "\n") {
		if i := strings.Index(line, "GET http://"+originAddr); i >= 0 {
			rest := line[i+len("GET http://"+originAddr):]
			_, p, _ := strings.Cut(rest, "/")
			top, _, _ := strings.Cut(p, "/")
			if f := strings.Fields(top); len(f) > 0 { // "provision HTTP" of "/provision HTTP/1.1"
				proxied[f[0]]++
			}
		}
		// A line of level CONNECT starts with that word: a CONNECT request
		// is "Request (file descriptor N): CONNECT host:port".
		if strings.Contains(line, testenv.ServerAddr) || strings.Contains(line, "): CONNECT ") {
			t.Errorf("tinyproxy's log shows a request to the API server or a CONNECT: %s", line)
		}
	}
	t.Logf("tinyproxy logged GETs per top directory: %v", proxied)
	for _, want := range []string{"provision", "apt", "artifacts"} {
		if proxied[want] == 0 {
			t.Errorf("tinyproxy's log shows no %s request:\n%s", want, tail(log, 40))
		}
	}
	for _, f := range []string{a.kubelet, a.cni, a.crictl} {
		if !strings.Contains(log, "/artifacts/"+f) {
			t.Errorf("tinyproxy's log does not show the download of %s", f)
		}
	}
	// tinyproxy enforces BasicAuth: a request without the credentials would be
	// refused (and the download fail).
	if strings.Contains(log, "Proxy Authentication Required") || strings.Contains(log, " 407 ") {
		t.Errorf("tinyproxy refused a request without credentials:\n%s", tail(log, 20))
	}
}

// newProxyNetNS creates the proxy's namespace, linked to the node's ns by a
// veth pair, with originAddr on its loopback device and an unreachable route
// to originAddr in the node's namespace. Deleted at cleanup.
func newProxyNetNS(t *testing.T, node *testenv.NetNS) *testenv.NetNS {
	t.Helper()
	name := fmt.Sprintf("provproxy-%d", os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ip := func(argv ...string) {
		t.Helper()
		if out, err := exec.CommandContext(ctx, "ip", argv...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(argv, " "), err, out)
		}
	}
	exec.CommandContext(ctx, "ip", "netns", "delete", name).Run() // a stale one from a killed run
	ip("netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("delete netns %s: %v\n%s", name, err, out)
		}
	})
	ip("-n", node.Name, "link", "add", "px0", "type", "veth", "peer", "name", "px1", "netns", name)
	ip("-n", node.Name, "addr", "add", proxyNodeAddr+"/24", "dev", "px0")
	ip("-n", node.Name, "link", "set", "px0", "up")
	ip("-n", node.Name, "route", "add", "unreachable", originAddr+"/32")
	ip("-n", name, "link", "set", "lo", "up")
	ip("-n", name, "addr", "add", originAddr+"/32", "dev", "lo")
	ip("-n", name, "addr", "add", proxyAddr+"/24", "dev", "px1")
	ip("-n", name, "link", "set", "px1", "up")
	return &testenv.NetNS{Name: name, Path: filepath.Join("/run/netns", name)}
}

// startTinyproxy runs tinyproxy in the foreground inside ns with its own config
// (basic auth, listening on proxyAddr) and returns its log file. It is stopped
// by PID at cleanup; the Debian package's service is never involved (the test
// uses tinyproxy-bin, which ships none).
func startTinyproxy(t *testing.T, bin string, ns *testenv.NetNS) string {
	t.Helper()
	dir := t.TempDir()
	logFile := filepath.Join(dir, "tinyproxy.log")
	conf := filepath.Join(dir, "tinyproxy.conf")
	cfg := strings.Join([]string{
		"Port " + proxyPort,
		"Listen " + proxyAddr,
		"Timeout 600",
		`LogFile "` + logFile + `"`,
		"LogLevel Info",
		"MaxClients 100",
		"Allow " + proxyNodeAddr,
		"BasicAuth " + proxyUser + " " + proxyPassword,
		"DisableViaHeader Yes",
	}, "\n") + "\n"
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", "--net="+ns.Path, "--", bin, "-d", "-c", conf)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start tinyproxy: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := ns.DialContext(ctx, "tcp", net.JoinHostPort(proxyAddr, proxyPort))
		cancel()
		if err == nil {
			c.Close()
			return logFile
		}
		select {
		case <-done:
			t.Fatalf("tinyproxy exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tinyproxy does not listen on %s:%s: %v\n%s", proxyAddr, proxyPort, err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
