package node

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/unitverify"
	"github.com/provision-dev/provision/node/tasks"
)

// testdata/units/flatcar-containerd.service is the containerd.service of
// Flatcar's containerd system extension (flatcar/sysext-bakery's
// create_containerd_sysext.sh, the same shape as the image's own unit in
// flatcar/scripts): the config comes from CONTAINERD_CONFIG,
// /usr/share/containerd/config.toml, not from /etc. The e2e reads it too.

// fcosContainerdUnit is Fedora's containerd.service (Fedora CoreOS): no
// --config, so containerd reads /etc/containerd/config.toml.
const fcosContainerdUnit = `[Unit]
Description=containerd container runtime
After=network.target local-fs.target
[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/bin/containerd
Type=notify
Delegate=yes
KillMode=process
[Install]
WantedBy=multi-user.target
`

// TestImageContainerdReadsProvisionConfig: on the OSes that ship containerd in
// their image, base writes a drop-in; the unit systemd then runs (the image's
// unit plus the drop-in, as the real `systemd-analyze verify` loads it without
// a warning) starts containerd with provision's /etc/containerd/config.toml.
// Without the drop-in, Flatcar's would read /usr/share/containerd/config.toml:
// the check is not vacuous.
func TestImageContainerdReadsProvisionConfig(t *testing.T) {
	if err := unitverify.Available(); err != nil {
		t.Fatal(err)
	}
	flatcarContainerdUnit, err := os.ReadFile("testdata/units/flatcar-containerd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		profile, unit string
		want, without []string
	}{
		{"flatcar", string(flatcarContainerdUnit),
			[]string{"/usr/bin/containerd", "--config", ContainerdConfigPath},
			[]string{"/usr/bin/containerd", "--config", "/usr/share/containerd/config.toml"}},
		{"fedora-coreos", fcosContainerdUnit, []string{"/usr/bin/containerd"}, []string{"/usr/bin/containerd"}},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			srv := newArtifactServer(t)
			cfg := testConfig(srv, tc.profile)
			root := testRoot(t, tc.profile, &cfg)
			if err := prepare(t, testOptions(root, newFakeHost(""), false, nil)).Run(context.Background(), Base); err != nil {
				t.Fatal(err)
			}
			dropIn, err := os.ReadFile(filepath.Join(root, ContainerdDropInPath))
			if err != nil {
				t.Fatalf("base wrote no drop-in: %v", err)
			}
			base := filepath.Join(root, "usr/lib/systemd/system/containerd.service")
			os.MkdirAll(filepath.Dir(base), 0o755)
			if err := os.WriteFile(base, []byte(tc.unit), 0o644); err != nil {
				t.Fatal(err)
			}
			standIn(t, root, "/usr/bin/containerd")
			standIn(t, root, "/sbin/modprobe")
			if err := unitverify.InstallTargets(root); err != nil {
				t.Fatal(err)
			}
			if out, err := unitverify.Verify(root, "containerd.service"); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}

			env, argv := effectiveExecStart(t, []byte(tc.unit), dropIn)
			if strings.Join(argv, " ") != strings.Join(tc.want, " ") {
				t.Errorf("ExecStart resolves to %q (environment %v), want %q", argv, env, tc.want)
			}
			if got := env["CONTAINERD_CONFIG"]; got != ContainerdConfigPath {
				t.Errorf("CONTAINERD_CONFIG = %q, want %s", got, ContainerdConfigPath)
			}
			if _, argv := effectiveExecStart(t, []byte(tc.unit)); strings.Join(argv, " ") != strings.Join(tc.without, " ") {
				t.Errorf("without the drop-in: %q, want %q", argv, tc.without)
			}
		})
	}
}

// effectiveExecStart merges a unit file and its drop-ins as systemd does for
// the [Service] settings used here (Environment= assignments accumulate, a
// later one wins per variable; an empty ExecStart= resets the list) and
// returns the environment and the one ExecStart's argv with $VAR and ${VAR}
// expanded.
func effectiveExecStart(t *testing.T, files ...[]byte) (map[string]string, []string) {
	t.Helper()
	env := map[string]string{}
	var exec []string
	for _, f := range files {
		opts, err := unit.DeserializeOptions(bytes.NewReader(f))
		if err != nil {
			t.Fatalf("parse: %v\n%s", err, f)
		}
		for _, o := range opts {
			if o.Section != "Service" {
				continue
			}
			switch o.Name {
			case "Environment":
				for _, kv := range strings.Fields(o.Value) {
					k, v, _ := strings.Cut(strings.Trim(kv, `"`), "=")
					env[k] = v
				}
			case "ExecStart":
				if o.Value == "" {
					exec = nil
					continue
				}
				exec = append(exec, o.Value)
			}
		}
	}
	if len(exec) != 1 {
		t.Fatalf("%d ExecStart lines, want 1: %q", len(exec), exec)
	}
	var argv []string
	for _, w := range strings.Fields(exec[0]) {
		argv = append(argv, varRE.ReplaceAllStringFunc(w, func(m string) string {
			return env[strings.Trim(m, "${}")]
		}))
	}
	return env, argv
}

var varRE = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*\}|\$[A-Za-z_][A-Za-z0-9_]*`)

// TestAptProfileTarballRuntime: containerd.install: tarball on Debian 12 takes
// containerd and runc from the release assets, unpinned, through each one's
// checksum convention (containerd's URL.sha256sum, runc's runc.sha256sum
// listing every arch), installs no containerd package, writes the unit and the
// version 4 config with the tarball's runc, converges on a re-run, and reports
// the running containerd's version; containerd older than the kubelet's minimum
// is a warning in status.json.
func TestAptProfileTarballRuntime(t *testing.T) {
	srv := newArtifactServer(t)
	cfg := testConfig(srv, "debian-12")
	cfg.Containerd.Install = v1alpha1.InstallTarball
	srv.Files["/runc/v1.3.7/runc.amd64"] = []byte("#!/bin/sh\necho runc\n")
	srv.Files["/runc/v1.3.7/runc.arm64"] = []byte("arm64 runc")
	srv.Files["/containerd/containerd-2.3.7-linux-amd64.tar.gz"] = srv.Files["/containerd.tgz"]
	cfg.Artifacts["containerd"] = v1alpha1.Artifact{URL: srv.URL + "/containerd/containerd-2.3.7-linux-amd64.tar.gz", AllowHTTP: true}
	cfg.Artifacts["runc"] = v1alpha1.Artifact{URL: srv.URL + "/runc/v1.3.7/runc.amd64", AllowHTTP: true}
	root := testRoot(t, "debian-12", &cfg)
	host := newFakeHost("")
	n := prepare(t, testOptions(root, host, true, nil))
	if err := n.Run(context.Background(), Base); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/containerd/containerd-2.3.7-linux-amd64.tar.gz.sha256sum", "/runc/v1.3.7/runc.sha256sum"} {
		if srv.Hits(p) != 1 {
			t.Errorf("%s fetched %d times, want once (the artifact's checksum convention)", p, srv.Hits(p))
		}
	}
	if got, _ := os.ReadFile(filepath.Join(root, "usr/local/bin/runc")); string(got) != "#!/bin/sh\necho runc\n" {
		t.Errorf("/usr/local/bin/runc = %q, want the amd64 binary", got)
	}
	if host.installed["containerd"] {
		t.Error("the containerd package was installed on a tarball node")
	}
	for _, p := range []string{"usr/local/bin/containerd", "usr/local/bin/containerd-shim-runc-v2", strings.TrimPrefix(ContainerdUnitPath, "/")} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	toml, _ := os.ReadFile(filepath.Join(root, ContainerdConfigPath))
	for _, want := range []string{"version = 4", "BinaryName = '/usr/local/bin/runc'", "[plugins.'io.containerd.cri.v1.images'.pinned_images]"} {
		if !strings.Contains(string(toml), want) {
			t.Errorf("config lacks %q:\n%s", want, toml)
		}
	}
	st := map[string]tasks.Status{}
	for _, s := range readStatus(t, root).Phases[Base].Tasks {
		st[s.Name] = s
	}
	if d := st[tContainerdVersion].Detail; !strings.Contains(d, "containerd 2.3.7 (installed); kubelet 1.37 needs 2.0.0 or newer") {
		t.Errorf("containerd/version: %q", d)
	}
	// A re-run changes nothing and downloads nothing but the two checksum files
	// (unpinned: the expected hash comes from upstream each time).
	hits := srv.Total()
	if err := prepare(t, testOptions(root, host, true, nil)).Run(context.Background(), Base); err != nil {
		t.Fatal(err)
	}
	for _, s := range readStatus(t, root).Phases[Base].Tasks {
		if s.Result == tasks.Changed {
			t.Errorf("re-run: %s changed: %s", s.Name, s.Detail)
		}
	}
	if srv.Total() != hits+2 || srv.Hits("/runc/v1.3.7/runc.amd64") != 1 {
		t.Errorf("re-run made %d requests, want the 2 checksum files only", srv.Total()-hits)
	}

	// The running containerd older than the kubelet's minimum: a warning.
	host.containerd = "containerd github.com/containerd/containerd v1.5.9 rev\n"
	if err := prepare(t, testOptions(root, host, true, nil)).Run(context.Background(), Base); err != nil {
		t.Fatal(err)
	}
	for _, s := range readStatus(t, root).Phases[Base].Tasks {
		if s.Name == tContainerdVersion && !strings.Contains(s.Detail, "warning: /usr/local/bin/containerd is containerd 1.5.9, but the node config says the tarball holds 2.3.7") {
			t.Errorf("containerd/version with another binary: %q", s.Detail)
		}
	}
}

// TestContainerdVersionWarning: a package's containerd older than the
// kubelet's minimum (internal/kubeversions) is reported, not refused.
func TestContainerdVersionWarning(t *testing.T) {
	for _, tc := range []struct{ kubelet, out, want string }{
		{"v1.31.4", "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1\n", "containerd 1.6.20 (installed); kubelet 1.31 needs 1.6.0 or newer"},
		{"v1.37.2", "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1\n", "warning: containerd 1.6.20 (installed) is older than 2.0.0, the minimum for kubelet 1.37: use containerd.install: tarball or a newer package"},
		{"v1.37.2", "containerd containerd.io 2.2.1 dea7da5\n", "containerd 2.2.1 (installed); kubelet 1.37 needs 2.0.0 or newer"},
		{"v1.37.2", "something else\n", `containerd --version printed "something else": version not checked`},
	} {
		srv := newArtifactServer(t)
		cfg := testConfig(srv, "debian-12")
		cfg.Kubernetes.Version = tc.kubelet
		root := testRoot(t, "debian-12", &cfg)
		host := newFakeHost("")
		host.containerd = tc.out
		var logs bytes.Buffer
		if err := prepare(t, testOptions(root, host, true, &logs)).Run(context.Background(), Base); err != nil {
			t.Fatal(err)
		}
		for _, s := range readStatus(t, root).Phases[Base].Tasks {
			if s.Name == tContainerdVersion && s.Detail != tc.want {
				t.Errorf("%s, %q: detail %q, want %q", tc.kubelet, tc.out, s.Detail, tc.want)
			}
		}
		if strings.HasPrefix(tc.want, "warning") && !strings.Contains(logs.String(), "is older than 2.0.0") {
			t.Errorf("the warning is not logged:\n%s", logs.String())
		}
	}
}

// TestPrepareRefusesInstallForProfile: a hand-written node config asking for a
// tarball runtime on Flatcar is refused before anything runs, naming the field.
func TestPrepareRefusesInstallForProfile(t *testing.T) {
	srv := newArtifactServer(t)
	cfg := testConfig(srv, "flatcar")
	cfg.Containerd.Install = v1alpha1.InstallTarball
	root := testRoot(t, "flatcar", &cfg)
	_, err := Prepare(context.Background(), testOptions(root, newFakeHost(""), false, nil))
	if err == nil || !strings.Contains(err.Error(), "containerd.install: flatcar ships containerd in its image") {
		t.Fatalf("Prepare = %v, want the containerd.install error", err)
	}
}

// TestTarballContainerdWarning: a tarball containerd older than the kubelet
// minor's minimum is reported before anything runs (Warnings, which `provision
// node` prints on stderr) and in the plan's containerd/version line.
func TestTarballContainerdWarning(t *testing.T) {
	srv := newArtifactServer(t)
	cfg := testConfig(srv, "rocky-9")
	cfg.Containerd.Version = "1.7.24"
	root := testRoot(t, "rocky-9", &cfg)
	n := prepare(t, testOptions(root, newFakeHost(""), false, nil))
	want := "warning: containerd 1.7.24 (from the tarball) is older than 2.0.0, the minimum for kubelet 1.37: point artifacts.containerd at a newer release (and containerd.version, if set)"
	if got := strings.Join(n.Warnings(), "\n"); !strings.Contains(got, want) {
		t.Errorf("Warnings() = %q, want %q", got, want)
	}
	entries, err := n.Preview(context.Background(), Base)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n.WritePreview(&buf, entries)
	if !strings.Contains(buf.String(), want) {
		t.Errorf("plan lacks the warning:\n%s", buf.String())
	}
	cfg.Containerd.Version = ""
	root = testRoot(t, "rocky-9", &cfg)
	if w := prepare(t, testOptions(root, newFakeHost(""), false, nil)).Warnings(); len(w) != 0 {
		t.Errorf("the default tarball warns: %q", w)
	}
}
