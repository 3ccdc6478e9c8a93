package node

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/osprofiles"
)

// writeNodeConfig replaces the root's node.yaml, as a userdata does on a
// prebaked image before join.
func writeNodeConfig(t *testing.T, root string, cfg v1alpha1.NodeConfig) {
	t.Helper()
	y, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, v1alpha1.NodeConfigPath), y, 0o644); err != nil {
		t.Fatal(err)
	}
}

// joinOptions are live options for a join on root: token, CA and a healthy kubelet.
func joinOptions(t *testing.T, root string, host *fakeHost, logs *bytes.Buffer) Options {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o644)
	healthz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	t.Cleanup(healthz.Close)
	opts := testOptions(root, host, true, logs)
	opts.HealthzURL = healthz.URL
	opts.Flags.Token = testToken
	opts.Flags.CACert = ca
	return opts
}

// containerdCalls are the systemctl calls acting on containerd among calls
// (systemctl show only reads).
func containerdCalls(calls []string) []string {
	var out []string
	for _, c := range calls {
		if strings.HasPrefix(c, "systemctl ") && strings.Contains(c, "containerd.service") && !strings.HasPrefix(c, "systemctl show ") {
			out = append(out, c)
		}
	}
	return out
}

// indexOf is the index of the first call containing s, -1 if none.
func indexOf(calls []string, s string) int {
	for i, c := range calls {
		if strings.Contains(c, s) {
			return i
		}
	}
	return -1
}

// TestJoinAppliesRuntimeConfig: on a prebaked root (base ran with one node
// config), join with another one rewrites containerd's config.toml (0600 with
// credentials), the hosts.toml files (removing the baked ones no longer
// named) and the proxy drop-in, and restarts containerd once, before the
// kubelet starts; a second join changes nothing and runs no systemctl on
// containerd. No credential reaches status.json, the logs or argv.
func TestJoinAppliesRuntimeConfig(t *testing.T) {
	srv := newArtifactServer(t)
	baked := testConfig(srv, "debian-12") // mirrors of docker.io, no registries, no credentials, no proxy
	root := testRoot(t, "debian-12", &baked)
	host := newFakeHost("")
	if err := prepare(t, testOptions(root, host, true, nil)).Run(context.Background(), Base); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(root, ContainerdConfigPath)
	if fi, err := os.Stat(conf); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("baked config.toml: %v %v", fi, err)
	}
	// A hosts.toml someone else wrote is not provision's to remove.
	foreign := filepath.Join(root, ContainerdCertsDir, "quay.io", "hosts.toml")
	os.MkdirAll(filepath.Dir(foreign), 0o755)
	os.WriteFile(foreign, []byte("server = \"https://quay.io\"\n"), 0o644)

	// The userdata of the join: other registries, credentials, a proxy.
	joined := baked
	joined.Containerd.RegistryMirrors = map[string][]string{"registry.example.com": {"https://" + regMirror}}
	joined.Containerd.Registries = map[string]v1alpha1.Registry{regMirror: {CAPath: v1alpha1.RegistryCAPath(regMirror)}}
	joined.Containerd.CredentialsFile = v1alpha1.RegistryCredentialsPath
	joined.Proxy.EnvironmentFile = v1alpha1.ProxyEnvPath
	writeNodeConfig(t, root, joined)
	writeCreds(t, root, regCreds, 0o600)
	os.WriteFile(filepath.Join(root, v1alpha1.ProxyEnvPath), []byte("https_proxy=http://proxy.internal:3128\n"), 0o600)
	caFile := filepath.Join(root, v1alpha1.RegistryCAPath(regMirror))
	os.MkdirAll(filepath.Dir(caFile), 0o755)
	os.WriteFile(caFile, []byte("-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"), 0o644)

	var logs bytes.Buffer
	host.Reset()
	opts := joinOptions(t, root, host, &logs)
	if err := prepare(t, opts).Run(context.Background(), Join); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(conf)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.toml after join: %v %v, want mode 0600", fi, err)
	}
	if data, _ := os.ReadFile(conf); !bytes.Contains(data, []byte(regPassword)) || !bytes.Contains(data, []byte(regToken)) {
		t.Errorf("config.toml lacks the join's credentials:\n%s", data)
	}
	for _, h := range []string{"registry.example.com", regMirror} {
		if _, err := os.Stat(filepath.Join(root, ContainerdCertsDir, h, "hosts.toml")); err != nil {
			t.Errorf("no hosts.toml for %s: %v", h, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, ContainerdCertsDir, "docker.io", "hosts.toml")); err == nil {
		t.Errorf("the baked docker.io mirrors are left")
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("a hosts.toml provision did not write was removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, ContainerdProxyDropInPath)); err != nil {
		t.Errorf("no proxy drop-in: %v", err)
	}
	wantChanged := []string{tContainerdConfig, "containerd/mirror-" + regMirror, "containerd/mirror-registry.example.com", tContainerdHostsPrune, tContainerdProxy, tContainerdRestart}
	if c := changedNames(readStatus(t, root).Phases[Join].Tasks); !reflect.DeepEqual(c[:len(wantChanged)], wantChanged) {
		t.Errorf("join changed %v, want first %v", c, wantChanged)
	}
	calls := host.Calls()
	want := []string{"systemctl restart containerd.service"}
	if got := containerdCalls(calls); !reflect.DeepEqual(got, want) {
		t.Errorf("containerd calls %q, want %q", got, want)
	}
	if d, r := indexOf(calls, "daemon-reload"), indexOf(calls, "restart containerd.service"); d < 0 || d > r {
		t.Errorf("no daemon-reload before containerd's restart (the drop-in is new):\n%s", strings.Join(calls, "\n"))
	}
	if r, k := indexOf(calls, "restart containerd.service"), indexOf(calls, "kubelet.service"); r < 0 || k < 0 || r > k {
		t.Errorf("containerd restarted at call %d, the kubelet started at %d:\n%s", r, k, strings.Join(calls, "\n"))
	}
	status, _ := os.ReadFile(filepath.Join(root, StatusPath))
	for what, data := range map[string]string{"status.json": string(status), "logs": logs.String(), "argv": strings.Join(calls, "\n")} {
		if strings.Contains(data, regPassword) || strings.Contains(data, regToken) {
			t.Errorf("%s shows a registry credential", what)
		}
	}

	// Again: nothing changes, containerd is left alone.
	host.Reset()
	if err := prepare(t, opts).Run(context.Background(), Join); err != nil {
		t.Fatal(err)
	}
	if c := changedNames(readStatus(t, root).Phases[Join].Tasks); len(c) != 0 {
		t.Errorf("second join changed %v", c)
	}
	if got := containerdCalls(host.Calls()); len(got) != 0 {
		t.Errorf("second join ran %q", got)
	}

	// Joined again without a proxy: the drop-in goes, containerd restarts once.
	joined.Proxy = v1alpha1.NodeProxy{}
	writeNodeConfig(t, root, joined)
	host.Reset()
	if err := prepare(t, opts).Run(context.Background(), Join); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, ContainerdProxyDropInPath)); err == nil {
		t.Errorf("the proxy drop-in is left")
	}
	calls = host.Calls()
	if got := containerdCalls(calls); !reflect.DeepEqual(got, want) {
		t.Errorf("containerd calls %q, want %q", got, want)
	}
	if d, r := indexOf(calls, "daemon-reload"), indexOf(calls, "restart containerd.service"); d < 0 || d > r {
		t.Errorf("no daemon-reload before containerd's restart (the drop-in is gone):\n%s", strings.Join(calls, "\n"))
	}
}

// TestBaseThenJoinChangesNoRuntime: on a node that is not prebaked, join after
// base with the same config changes nothing of containerd and runs no
// systemctl on it, for each way containerd is installed.
func TestBaseThenJoinChangesNoRuntime(t *testing.T) {
	for _, tc := range []struct {
		name, profile string
		install       osprofiles.RuntimeSource
		creds, proxy  bool
	}{
		{name: "package", profile: "debian-12"},
		{name: "package with credentials and proxy", profile: "ubuntu-24.04", creds: true, proxy: true},
		{name: "tarball", profile: "debian-12", install: v1alpha1.InstallTarball, creds: true},
		{name: "builtin", profile: "flatcar", proxy: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newArtifactServer(t)
			cfg := testConfig(srv, tc.profile)
			cfg.Containerd.Install = tc.install
			if tc.creds {
				cfg.Containerd.Registries = map[string]v1alpha1.Registry{regMirror: {SkipVerify: true}}
				cfg.Containerd.CredentialsFile = v1alpha1.RegistryCredentialsPath
			}
			if tc.proxy {
				cfg.Proxy.EnvironmentFile = v1alpha1.ProxyEnvPath
			}
			root := testRoot(t, tc.profile, &cfg)
			if tc.creds {
				writeCreds(t, root, regCreds, 0o600)
			}
			if tc.proxy {
				os.WriteFile(filepath.Join(root, v1alpha1.ProxyEnvPath), []byte("https_proxy=http://proxy.internal:3128\n"), 0o600)
			}
			host := newFakeHost("")
			if err := prepare(t, testOptions(root, host, true, nil)).Run(context.Background(), Base); err != nil {
				t.Fatal(err)
			}
			host.Reset()
			if err := prepare(t, joinOptions(t, root, host, nil)).Run(context.Background(), Join); err != nil {
				t.Fatal(err)
			}
			for _, c := range changedNames(readStatus(t, root).Phases[Join].Tasks) {
				if strings.HasPrefix(c, "containerd/") {
					t.Errorf("join after base changed %s", c)
				}
			}
			if got := containerdCalls(host.Calls()); len(got) != 0 {
				t.Errorf("join after base ran %q", got)
			}
		})
	}
}
