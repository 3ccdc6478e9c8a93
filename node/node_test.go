package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/node/tasks"
	"github.com/provision-dev/provision/osprofiles"
)

func changedNames(sts []tasks.Status) []string {
	var out []string
	for _, s := range sts {
		if s.Result == tasks.Changed {
			out = append(out, s.Name)
		}
	}
	return out
}

func readStatus(t *testing.T, root string) Status {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, StatusPath))
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestBaseConvergesEveryProfile: the first base run changes things, the second none.
func TestBaseConvergesEveryProfile(t *testing.T) {
	for _, p := range osprofiles.All() {
		for _, live := range []bool{true, false} {
			name := p.Name + map[bool]string{true: "/live", false: "/root"}[live]
			t.Run(name, func(t *testing.T) {
				srv := newArtifactServer(t)
				cfg := testConfig(srv, p.Name)
				root := testRoot(t, p.Name, &cfg)
				host := newFakeHost("")
				n := prepare(t, testOptions(root, host, live, nil))
				if err := n.Run(context.Background(), Base); err != nil {
					t.Fatal(err)
				}
				first := readStatus(t, root).Phases[Base]
				if first.Result != "success" || len(changedNames(first.Tasks)) == 0 {
					t.Fatalf("first run: %+v", first)
				}
				hits := srv.Total()
				host.Reset()
				n = prepare(t, testOptions(root, host, live, nil))
				if err := n.Run(context.Background(), Base); err != nil {
					t.Fatal(err)
				}
				second := readStatus(t, root).Phases[Base]
				if c := changedNames(second.Tasks); len(c) != 0 {
					t.Errorf("second run changed %v", c)
				}
				if srv.Total() != hits {
					t.Errorf("second run downloaded again (%d requests, was %d)", srv.Total(), hits)
				}
				for _, c := range host.Calls() {
					if strings.Contains(c, " install") || strings.Contains(c, " enable ") || strings.Contains(c, " start ") || strings.Contains(c, "restart") {
						t.Errorf("second run ran %q", c)
					}
				}
				for _, f := range []string{ContainerdConfigPath, CrictlConfigPath, "/opt/cni/bin/bridge", p.BinDir + "/kubelet", p.BinDir + "/crictl",
					"/etc/containerd/certs.d/docker.io/hosts.toml", "/etc/systemd/system/provision-health-kubelet.timer"} {
					if _, err := os.Stat(filepath.Join(root, f)); err != nil {
						t.Errorf("missing %s", f)
					}
				}
				if p.Runtime == osprofiles.RuntimeTarball {
					for _, f := range []string{p.BinDir + "/containerd", p.BinDir + "/runc", "/etc/systemd/system/containerd.service"} {
						if _, err := os.Stat(filepath.Join(root, f)); err != nil {
							t.Errorf("missing %s", f)
						}
					}
				}
			})
		}
	}
}

func TestBaseInContainerSkipsKernel(t *testing.T) {
	srv := newArtifactServer(t)
	cfg := testConfig(srv, "debian-12")
	root := testRoot(t, "debian-12", &cfg)
	host := newFakeHost("systemd-nspawn")
	n := prepare(t, testOptions(root, host, true, nil))
	if err := n.Run(context.Background(), Base); err != nil {
		t.Fatal(err)
	}
	got := map[string]tasks.Status{}
	for _, s := range readStatus(t, root).Phases[Base].Tasks {
		got[s.Name] = s
	}
	for _, name := range []string{"kernel/modules-load", "kernel/sysctl-apply", "swap/off"} {
		if got[name].Result != tasks.Skipped || !strings.Contains(got[name].Detail, "container") {
			t.Errorf("%s = %+v, want skipped in a container", name, got[name])
		}
	}
	for _, c := range host.Calls() {
		if strings.HasPrefix(c, "sysctl") || strings.HasPrefix(c, "modprobe") || strings.HasPrefix(c, "swapoff") {
			t.Errorf("ran %q in a container", c)
		}
	}
	toml, _ := os.ReadFile(filepath.Join(root, ContainerdConfigPath))
	if !strings.Contains(string(toml), "restrict_oom_score_adj = true") {
		t.Errorf("containerd config in a container lacks restrict_oom_score_adj:\n%s", toml)
	}
}

func TestJoinWithFlags(t *testing.T) {
	srv := newArtifactServer(t)
	cfg := testConfig(srv, "debian-12")
	root := testRoot(t, "debian-12", &cfg)
	os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/local/bin/kubelet"), []byte("x"), 0o755)
	ca := filepath.Join(t.TempDir(), "ca.crt")
	os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o644)
	healthz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer healthz.Close()

	var logs bytes.Buffer
	host := newFakeHost("")
	opts := testOptions(root, host, true, &logs)
	opts.HealthzURL = healthz.URL
	opts.Flags.Token = testToken
	opts.Flags.CACert = ca
	os.MkdirAll(filepath.Join(root, StateDir), 0o755)
	os.WriteFile(filepath.Join(root, FailedMarker), []byte("stale"), 0o644)
	n := prepare(t, opts)
	if err := n.Run(context.Background(), Join); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "/etc/kubernetes/bootstrap-kubelet.conf"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bootstrap kubeconfig: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(root, DoneMarker)); err != nil {
		t.Errorf("no done marker: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, FailedMarker)); err == nil {
		t.Errorf("stale failed marker left")
	}
	status, _ := os.ReadFile(filepath.Join(root, StatusPath))
	for what, text := range map[string]string{"logs": logs.String(), "status": string(status), "argv": strings.Join(host.Calls(), "\n")} {
		if strings.Contains(text, testToken) || strings.Contains(text, "0123456789abcdef") {
			t.Errorf("the token reached the %s", what)
		}
	}
	dropin, _ := os.ReadFile(filepath.Join(root, KubeletDropInPath))
	for _, want := range []string{"--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf", "--config=/var/lib/kubelet/config.yaml", "ExecStart=\n"} {
		if !strings.Contains(string(dropin), want) {
			t.Errorf("drop-in lacks %q:\n%s", want, dropin)
		}
	}
	calls := strings.Join(host.Calls(), "\n")
	// enable reloads systemd itself; --now starts the kubelet in the same call.
	for _, want := range []string{"systemctl enable --now kubelet.service"} {
		if !strings.Contains(calls, want) {
			t.Errorf("join did not run %q:\n%s", want, calls)
		}
	}
	// Second join: nothing changes, nothing restarts.
	host.Reset()
	n = prepare(t, opts)
	if err := n.Run(context.Background(), Join); err != nil {
		t.Fatal(err)
	}
	if c := changedNames(readStatus(t, root).Phases[Join].Tasks); len(c) != 0 {
		t.Errorf("second join changed %v", c)
	}
}

func TestJoinFailureWritesFailedMarker(t *testing.T) {
	srv := newArtifactServer(t)
	cfg := testConfig(srv, "debian-12")
	root := testRoot(t, "debian-12", &cfg)
	n := prepare(t, testOptions(root, newFakeHost(""), true, nil))
	err := n.Run(context.Background(), Join)
	if err == nil || !strings.Contains(err.Error(), "kubelet/binary-present") {
		t.Fatalf("err = %v", err)
	}
	marker, _ := os.ReadFile(filepath.Join(root, FailedMarker))
	if !strings.Contains(string(marker), "task: kubelet/binary-present") || !strings.Contains(string(marker), "provision node base") {
		t.Errorf("failed marker:\n%s", marker)
	}
	st := readStatus(t, root).Phases[Join]
	if st.Result != "failed" || st.Tasks[len(st.Tasks)-1].Result != tasks.Failed {
		t.Errorf("status: %+v", st)
	}
}

func TestJoinHealthzTimeout(t *testing.T) {
	srv := newArtifactServer(t)
	cfg := testConfig(srv, "debian-12")
	root := testRoot(t, "debian-12", &cfg)
	os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/local/bin/kubelet"), []byte("x"), 0o755)
	os.MkdirAll(filepath.Join(root, "etc/kubernetes/pki"), 0o755)
	os.WriteFile(filepath.Join(root, cfg.Kubernetes.BootstrapKubeconfigPath), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(root, cfg.Kubernetes.CACertPath), []byte("x"), 0o644)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "not ready", 500) }))
	defer bad.Close()
	opts := testOptions(root, newFakeHost(""), true, nil)
	opts.HealthzURL = bad.URL
	opts.HealthzTimeout = 500e6
	err := prepare(t, opts).Run(context.Background(), Join)
	if err == nil || !strings.Contains(err.Error(), "not healthy") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, FailedMarker)); err != nil {
		t.Errorf("no failed marker")
	}
}

func TestFlagsWithoutConfig(t *testing.T) {
	root := testRoot(t, "ubuntu-22.04", nil)
	opts := testOptions(root, newFakeHost(""), false, nil)
	if _, err := Prepare(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "--kubelet-version") {
		t.Fatalf("err = %v", err)
	}
	opts.Flags.KubeletVersion = "1.31"
	_, err := Prepare(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "--kubelet-version / kubernetes.version: must be vMAJOR") {
		t.Fatalf("err = %v", err)
	}
	opts.Flags.KubeletVersion = "v1.37.2"
	opts.Flags.Token = "not-a-token-secret"
	_, err = Prepare(context.Background(), opts)
	if err == nil || strings.Contains(err.Error(), "not-a-token-secret") {
		t.Fatalf("err = %v", err)
	}
	opts.Flags.Token = ""
	n, err := Prepare(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if n.Profile.Name != "ubuntu-22.04" || n.Config.Kubernetes.Version != "v1.37.2" {
		t.Errorf("node: %s %s", n.Profile.Name, n.Config.Kubernetes.Version)
	}
}

func TestUnknownOS(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=gentoo\nVERSION_ID=2.15\n"), 0o644)
	opts := testOptions(root, newFakeHost(""), false, nil)
	opts.Flags.KubeletVersion = "v1.37.2"
	_, err := Prepare(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "gentoo") || !strings.Contains(err.Error(), "debian-12") {
		t.Fatalf("err = %v", err)
	}
}

// TestBuildersReadNothing: Prepare reads the input files once; building the
// tasks reads nothing more (a file removed after Prepare changes nothing), and a
// missing input fails only the phase that needs it, as a build failure in
// status.json naming the flag.
func TestBuildersReadNothing(t *testing.T) {
	srv := newArtifactServer(t)
	cfg := testConfig(srv, "debian-12")
	root := testRoot(t, "debian-12", &cfg)
	ca := filepath.Join(t.TempDir(), "ca.crt")
	pem := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	os.WriteFile(ca, pem, 0o644)
	opts := testOptions(root, newFakeHost(""), false, nil)
	opts.Flags.CACert = ca
	n := prepare(t, opts)
	os.Remove(ca)
	list, err := n.Tasks(Join)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, task := range list {
		if f, ok := task.(*tasks.File); ok && f.TaskName == tCACert {
			found = bytes.Equal(f.Content, pem)
		}
	}
	if !found {
		t.Fatalf("join has no %s task with the CA read by Prepare", tCACert)
	}

	opts.Flags.CACert = filepath.Join(t.TempDir(), "missing.crt")
	n = prepare(t, opts)
	if _, err := n.Tasks(Base); err != nil {
		t.Fatalf("base needs no --ca-cert: %v", err)
	}
	err = n.Run(context.Background(), Join)
	if err == nil || !strings.Contains(err.Error(), "task build: --ca-cert: open") {
		t.Fatalf("join with a missing --ca-cert: %v", err)
	}
	if st := readStatus(t, root).Phases[Join]; st.Result != "failed" || !strings.Contains(st.Error, "--ca-cert") {
		t.Errorf("status: %+v", st)
	}
}

// TestJoinBootstrapSentinel: a successful join touches Cluster API's
// bootstrap-success sentinel only when the node config asks for it.
func TestJoinBootstrapSentinel(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint("sentinel=", on), func(t *testing.T) {
			srv := newArtifactServer(t)
			cfg := testConfig(srv, "debian-12")
			cfg.BootstrapSentinel = on
			root := testRoot(t, "debian-12", &cfg)
			os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755)
			os.WriteFile(filepath.Join(root, "usr/local/bin/kubelet"), []byte("x"), 0o755)
			ca := filepath.Join(t.TempDir(), "ca.crt")
			os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o644)
			healthz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
			defer healthz.Close()
			opts := testOptions(root, newFakeHost(""), true, nil)
			opts.HealthzURL = healthz.URL
			opts.Flags.Token = testToken
			opts.Flags.CACert = ca
			if err := prepare(t, opts).Run(context.Background(), Join); err != nil {
				t.Fatal(err)
			}
			_, err := os.Stat(filepath.Join(root, v1alpha1.BootstrapSentinelPath))
			if on && err != nil {
				t.Errorf("bootstrapSentinel: true, but no %s: %v", v1alpha1.BootstrapSentinelPath, err)
			}
			if !on && err == nil {
				t.Errorf("bootstrapSentinel unset, but %s was written", v1alpha1.BootstrapSentinelPath)
			}
		})
	}
}
