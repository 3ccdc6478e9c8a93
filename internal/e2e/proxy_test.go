//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/generate/setup"
	"github.com/provision-dev/provision/internal/testenv"
	"github.com/provision-dev/provision/internal/testutil"
)

// The proxy scenario's addresses: the node's namespace reaches the proxy's
// namespace over a second veth pair (proxyNodeAddr <-> proxyAddr); the origin
// (artifacts and apt repository) listens on originAddr, an address on the proxy
// namespace's loopback device that the node's namespace has an unreachable
// route to. Only the proxy, which runs in that namespace, can reach it.
const (
	proxyNodeAddr = "10.213.1.1"
	proxyAddr     = "10.213.1.2"
	proxyPort     = "8888"
	originAddr    = "10.213.2.1"
	proxyUser     = "node"
	proxyPassword = "Pr0xyPa55word"
)

// TestProxy runs setup (its unit and setup.sh, as the userdata installs them)
// and `provision node base` in a booted Debian 12 root whose every download
// (setup.sh's curl of provision, the artifacts through provision's downloader,
// apt's lists and packages) must go through a real forward proxy (Debian's tinyproxy, with
// basic auth) because the origin server is unreachable directly; the proxy's
// log must show the requests, and the proxy's credentials must appear nowhere
// but the 0600 environment file.
func TestProxy(t *testing.T) {
	testenv.Require(t)
	tinyproxy, err := exec.LookPath("tinyproxy")
	if err != nil {
		t.Fatalf("tinyproxy: %v (hack/e2e-prereqs.sh installs Debian's tinyproxy-bin)", err)
	}
	repo := localRepo(t)
	a := buildNodeArtifacts(t, repo)
	ns := testenv.NewNetNS(t)
	pns := newProxyNetNS(t, ns)

	mux := http.NewServeMux()
	mux.Handle("/apt/", http.StripPrefix("/apt/", http.FileServer(http.Dir(repo.Dir))))
	mux.Handle("/artifacts/", http.StripPrefix("/artifacts/", http.FileServer(http.Dir(a.dir))))
	requests := &requestLog{counts: map[string]int{}}
	origin := serveIn(t, pns, originAddr, requests.wrap(mux))

	// The origin is unreachable from the node's namespace; the proxy is not.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := ns.DialContext(ctx, "tcp", strings.TrimPrefix(origin, "http://")); err == nil {
		c.Close()
		t.Fatalf("the origin %s is reachable directly from the node's namespace", origin)
	} else {
		t.Logf("direct route to the origin: %v (as intended)", err)
	}
	logFile := startTinyproxy(t, tinyproxy, pns)

	proxyURL := "http://" + proxyUser + ":" + proxyPassword + "@" + proxyAddr + ":" + proxyPort
	env := v1alpha1.Proxy{HTTPProxy: proxyURL, HTTPSProxy: proxyURL}.WithNoProxy()
	c := servedNodeConfig(origin, a, kubeletVersion, "bookworm")
	c.OSProfile = "debian-12"
	c.Kubernetes.FailCgroupV1 = cgroupV1OptOut(t)
	c.Proxy.EnvironmentFile = v1alpha1.ProxyEnvPath
	nodeYAML := marshalNodeConfig(t, c)

	// setup.sh fetches provision from the origin through the proxy (its real
	// unit, reading the environment file), then runs base (PROVISION_PHASE).
	provSHA := testutil.SHA256File(t, a.provision)
	if err := os.Link(a.provision, filepath.Join(a.dir, "provision")); err != nil {
		data, rerr := os.ReadFile(a.provision)
		if rerr != nil || os.WriteFile(filepath.Join(a.dir, "provision"), data, 0o755) != nil {
			t.Fatalf("serve provision: %v %v", err, rerr)
		}
	}
	unit, err := setup.Unit(setup.Inputs{Source: origin + "/artifacts/provision", SHA256: provSHA, Bin: "/usr/local/bin/provision",
		AllowHTTP: true, EnvironmentFile: v1alpha1.ProxyEnvPath})
	if err != nil {
		t.Fatal(err)
	}
	root := testenv.NewRoot(t, testenv.Bookworm)
	root.CopyFile(t, repo.KeyFile, testenv.KeyringPath, 0o644)
	root.WriteFile(t, v1alpha1.NodeConfigPath, nodeYAML, 0o644)
	root.WriteFile(t, v1alpha1.ProxyEnvPath, env.EnvFile(), 0o600)
	root.WriteFile(t, setup.ScriptPath, setup.Script(), 0o755)
	root.WriteFile(t, "/etc/systemd/system/"+setup.UnitName, []byte(unit), 0o644)
	root.WriteFile(t, "/etc/systemd/system/"+setup.UnitName+".d/base.conf", []byte("[Service]\nEnvironment=PROVISION_PHASE=base\n"), 0o644)
	m := testenv.Boot(t, root, ns)

	start := time.Now()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if r, err := m.Exec(ctx, "systemctl", "start", setup.UnitName); err != nil || r.ExitCode != 0 {
		t.Fatalf("systemctl start %s: %v %+v\njournal:\n%s", setup.UnitName, err, r, tail(m.Journal(), 80))
	}
	t.Logf("setup (curl of provision, then provision node base) through the proxy: %v", time.Since(start).Round(time.Millisecond))
	var st status
	statusJSON, err := os.ReadFile(root.Path("/var/lib/provision/status.json"))
	if err != nil {
		t.Fatalf("status.json: %v\njournal:\n%s", err, tail(m.Journal(), 80))
	}
	if err := json.Unmarshal(statusJSON, &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("base tasks: %s", slowTasks(st))
	if r := st.Phases["base"].Result; r != "success" {
		t.Errorf("base result %q, want success\n%s", r, statusJSON)
	}
	counts := requests.reset()
	t.Logf("origin requests (all through the proxy): %v", counts)
	if counts["apt"] == 0 || counts["artifacts"] < 4 {
		t.Errorf("origin requests %v: want apt and 4 artifacts (provision, kubelet, CNI, crictl)", counts)
	}

	logData, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	proxied := map[string]int{}
	for _, line := range strings.Split(string(logData), "\n") {
		if i := strings.Index(line, "GET http://"+originAddr); i >= 0 {
			rest := line[i+len("GET http://"+originAddr):]
			_, p, _ := strings.Cut(rest, "/")
			top, _, _ := strings.Cut(p, "/")
			proxied[top]++
		}
	}
	t.Logf("tinyproxy logged GETs per top directory: %v", proxied)
	for _, want := range []string{"apt", "artifacts"} {
		if proxied[want] == 0 {
			t.Errorf("tinyproxy's log shows no %s request:\n%s", want, tail(string(logData), 40))
		}
	}
	for _, f := range []string{"provision", a.kubelet, a.cni, a.crictl} {
		if !strings.Contains(string(logData), "/artifacts/"+f) {
			t.Errorf("tinyproxy's log does not show the download of %s", f)
		}
	}
	// tinyproxy enforces BasicAuth: every request the origin saw carried the
	// credentials from the environment file; none was refused.
	if strings.Contains(string(logData), "Proxy Authentication Required") || strings.Contains(string(logData), " 407 ") {
		t.Errorf("tinyproxy refused a request without credentials:\n%s", tail(string(logData), 20))
	}

	// The credentials are only in the 0600 environment file.
	fi, err := os.Stat(root.Path(v1alpha1.ProxyEnvPath))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, mode %v; want 0600", v1alpha1.ProxyEnvPath, err, fi.Mode().Perm())
	}
	for name, data := range map[string]string{"node.yaml": string(nodeYAML), "status.json": string(statusJSON), "journal": m.Journal()} {
		if strings.Contains(data, proxyPassword) {
			t.Errorf("%s holds the proxy password", name)
		}
	}
	for _, p := range []string{"/etc/systemd/system/containerd.service.d/20-provision-proxy.conf"} {
		data, err := os.ReadFile(root.Path(p))
		if err != nil || !strings.Contains(string(data), "EnvironmentFile="+v1alpha1.ProxyEnvPath) || strings.Contains(string(data), proxyPassword) {
			t.Errorf("%s: %v\n%s", p, err, data)
		}
	}
	if out, err := m.Output(context.Background(), "systemctl", "show", "-p", "EnvironmentFiles", "containerd.service"); err != nil || !strings.Contains(out, v1alpha1.ProxyEnvPath) {
		t.Errorf("containerd.service EnvironmentFiles: %q %v", out, err)
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

// serveIn serves h on addr (any port) inside ns until cleanup; it returns the URL.
func serveIn(t *testing.T, ns *testenv.NetNS, addr string, h http.Handler) string {
	t.Helper()
	l, err := ns.Listen(addr + ":0")
	if err != nil {
		t.Fatalf("listen in %s: %v", ns.Name, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("origin server: %v", err)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return "http://" + l.Addr().String()
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
