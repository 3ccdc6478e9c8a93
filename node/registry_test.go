package node

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/node/tasks"
)

const (
	regPassword = "n0dePa55-MARKER"
	regToken    = "n0deT0ken-MARKER"
	regMirror   = "10.0.0.5:5000"
)

var regCreds = v1alpha1.RegistryCredentials{
	regMirror:       {Username: "puller", Password: regPassword},
	"ghcr.internal": {IdentityToken: regToken},
	"docker.io":     {Username: "hub", Password: regPassword},
}

// TestRegistryContainerdConfig: the credentials land in the CRI's
// registry.configs."HOST".auth of each config version (io.containerd.grpc.v1.cri
// for 2, io.containerd.cri.v1.images for 3 and 4), keyed by the host the CRI
// contacts (docker.io's is registry-1.docker.io); parsed back by key path.
func TestRegistryContainerdConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		f      containerdFormat
		plugin string
	}{
		{"v2", containerdFormat{Version: 2}, "io.containerd.grpc.v1.cri"},
		{"v3", containerdFormat{Version: 3, CNIBinDirs: true}, "io.containerd.cri.v1.images"},
		{"v4", containerdFormat{Version: 4, CNIBinDirs: true}, "io.containerd.cri.v1.images"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := renderContainerdConfig(v1alpha1.Containerd{SandboxImage: "registry.k8s.io/pause:3.10"}, tc.f, regCreds)
			if err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, filepath.Join("testdata", "containerd", "registries-"+tc.name+".toml"), out)
			var tree map[string]any
			if err := toml.Unmarshal(out, &tree); err != nil {
				t.Fatalf("does not parse: %v", err)
			}
			configs := []string{"plugins", tc.plugin, "registry", "configs"}
			for k, want := range map[string]any{
				key(append(configs, regMirror, "auth", "username")...):                "puller",
				key(append(configs, regMirror, "auth", "password")...):                regPassword,
				key(append(configs, "ghcr.internal", "auth", "identitytoken")...):     regToken,
				key(append(configs, "ghcr.internal", "auth", "username")...):          nil,
				key(append(configs, "registry-1.docker.io", "auth", "username")...):   "hub",
				key(append(configs, "docker.io")...):                                  nil,
				key("plugins", tc.plugin, "registry", "config_path"):                  ContainerdCertsDir,
				key("plugins", "io.containerd.cri.v1.runtime", "registry", "configs"): nil,
				key("plugins", "io.containerd.grpc.v1.cri", "registry", "mirrors"):    nil,
				key(append(configs, regMirror, "tls")...):                             nil, // TLS lives in hosts.toml (config_path)
			} {
				got, ok := lookup(tree, k)
				if want == nil {
					if ok {
						t.Errorf("%s = %v, want it absent", k, got)
					}
					continue
				}
				if !ok || !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v (present %v), want %#v", k, got, ok, want)
				}
			}
		})
	}
}

// TestRegistryHostsTOML: each mirror's [host."URL"] gets ca/skip_verify from
// registries[its host], the namespace's server from registries[namespace];
// a registries host that is no namespace gets its own hosts.toml.
func TestRegistryHostsTOML(t *testing.T) {
	c := v1alpha1.Containerd{
		RegistryMirrors: map[string][]string{
			"registry.example.com": {"https://" + regMirror, "https://dev.internal:5000/v2/x", "https://plain.internal"},
			"docker.io":            {"https://" + regMirror},
		},
		Registries: map[string]v1alpha1.Registry{
			regMirror:              {CAPath: v1alpha1.RegistryCAPath(regMirror)},
			"dev.internal:5000":    {SkipVerify: true},
			"registry.example.com": {CAPath: "/etc/pki/example.pem"},
			"solo.internal":        {CAPath: v1alpha1.RegistryCAPath("solo.internal")},
		},
	}
	files, err := renderHostsFiles(c)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for h := range files {
		names = append(names, h)
	}
	if len(files) != 5 {
		t.Fatalf("hosts.toml for %v, want registry.example.com, docker.io, %s, dev.internal:5000, solo.internal", names, regMirror)
	}
	parse := func(h string) map[string]any {
		t.Helper()
		var tree map[string]any
		if err := toml.Unmarshal(files[h], &tree); err != nil {
			t.Fatalf("%s: %v\n%s", h, err, files[h])
		}
		return tree
	}
	testutil.Golden(t, filepath.Join("testdata", "containerd", "registries-hosts.toml"), files["registry.example.com"])
	ns := parse("registry.example.com")
	mirror := []string{"host", "https://" + regMirror}
	dev := []string{"host", "https://dev.internal:5000/v2/x"}
	plain := []string{"host", "https://plain.internal"}
	for k, want := range map[string]any{
		"server":                               "https://registry.example.com",
		"ca":                                   "/etc/pki/example.pem",
		"skip_verify":                          nil,
		key(append(mirror, "ca")...):           "/etc/containerd/certs.d/10.0.0.5:5000/ca.crt",
		key(append(mirror, "skip_verify")...):  nil,
		key(append(mirror, "capabilities")...): []any{"pull", "resolve"},
		key(append(dev, "skip_verify")...):     true,
		key(append(dev, "ca")...):              nil,
		key(append(plain, "ca")...):            nil,
		key(append(plain, "skip_verify")...):   nil,
	} {
		got, ok := lookup(ns, k)
		if want == nil {
			if ok {
				t.Errorf("registry.example.com: %s = %v, want it absent", k, got)
			}
			continue
		}
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("registry.example.com: %s = %#v (present %v), want %#v", k, got, ok, want)
		}
	}
	// The mirror order is kept: the CA'd mirror first.
	if i, j := bytes.Index(files["registry.example.com"], []byte(regMirror)), bytes.Index(files["registry.example.com"], []byte("dev.internal")); i < 0 || j < i {
		t.Errorf("mirror order lost:\n%s", files["registry.example.com"])
	}
	if hub := parse("docker.io"); hub["server"] != "https://registry-1.docker.io" || hub["ca"] != nil {
		t.Errorf("docker.io: %v", hub)
	}
	if solo := parse("solo.internal"); solo["server"] != "https://solo.internal" || solo["ca"] != v1alpha1.RegistryCAPath("solo.internal") || solo["host"] != nil {
		t.Errorf("solo.internal: %v", solo)
	}
	if m := parse(regMirror); m["server"] != "https://"+regMirror || m["ca"] != v1alpha1.RegistryCAPath(regMirror) {
		t.Errorf("%s: %v", regMirror, m)
	}
	if d := parse("dev.internal:5000"); d["skip_verify"] != true {
		t.Errorf("dev.internal:5000: %v", d)
	}
}

func writeCreds(t *testing.T, root string, rc v1alpha1.RegistryCredentials, mode os.FileMode) {
	t.Helper()
	data, err := rc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, v1alpha1.RegistryCredentialsPath)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, mode)
}

// TestRegistryNodeBase: base writes config.toml 0600 with the credentials and
// the hosts.toml files; a second base changes nothing; changed credentials
// rewrite config.toml and restart containerd. status.json, the logs and the
// preview never show a credential.
func TestRegistryNodeBase(t *testing.T) {
	srv := newArtifactServer(t)
	cfg := testConfig(srv, "debian-12")
	cfg.Containerd.RegistryMirrors = map[string][]string{"registry.example.com": {"https://" + regMirror}}
	cfg.Containerd.Registries = map[string]v1alpha1.Registry{regMirror: {CAPath: v1alpha1.RegistryCAPath(regMirror)}}
	cfg.Containerd.CredentialsFile = v1alpha1.RegistryCredentialsPath
	root := testRoot(t, "debian-12", &cfg)
	writeCreds(t, root, regCreds, 0o600)
	var logs bytes.Buffer
	host := newFakeHost("")
	opts := testOptions(root, host, true, &logs)

	// The preview first: it must not print a credential either.
	n := prepare(t, opts)
	entries, err := n.Preview(context.Background(), Base)
	if err != nil {
		t.Fatal(err)
	}
	var preview bytes.Buffer
	if err := n.WritePreview(&preview, entries); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(preview.String(), "create "+ContainerdConfigPath+" (0600)") {
		t.Errorf("preview does not plan config.toml 0600:\n%s", preview.String())
	}

	if err := n.Run(context.Background(), Base); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, ContainerdConfigPath))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.toml: %v %v, want mode 0600", fi, err)
	}
	conf, _ := os.ReadFile(filepath.Join(root, ContainerdConfigPath))
	if !bytes.Contains(conf, []byte(regPassword)) {
		t.Fatalf("config.toml lacks the credentials:\n%s", conf)
	}
	hosts, _ := os.ReadFile(filepath.Join(root, ContainerdCertsDir, "registry.example.com", "hosts.toml"))
	if !bytes.Contains(hosts, []byte(`ca = '/etc/containerd/certs.d/10.0.0.5:5000/ca.crt'`)) {
		t.Errorf("hosts.toml:\n%s", hosts)
	}
	if _, err := os.Stat(filepath.Join(root, ContainerdCertsDir, regMirror, "hosts.toml")); err != nil {
		t.Errorf("no hosts.toml for the mirror's own host: %v", err)
	}
	status, _ := os.ReadFile(filepath.Join(root, StatusPath))
	for what, data := range map[string][]byte{"status.json": status, "logs": logs.Bytes(), "preview": preview.Bytes()} {
		if bytes.Contains(data, []byte(regPassword)) || bytes.Contains(data, []byte(regToken)) {
			t.Errorf("%s shows a registry credential", what)
		}
	}

	// Again: nothing changes.
	host.Reset()
	if err := prepare(t, opts).Run(context.Background(), Base); err != nil {
		t.Fatal(err)
	}
	if c := changedNames(readStatus(t, root).Phases[Base].Tasks); len(c) != 0 {
		t.Errorf("second base changed %v", c)
	}
	// New credentials: config.toml is rewritten (still 0600) and containerd restarts.
	host.Reset()
	writeCreds(t, root, v1alpha1.RegistryCredentials{regMirror: {Username: "puller", Password: regPassword + "2"}}, 0o600)
	if err := prepare(t, opts).Run(context.Background(), Base); err != nil {
		t.Fatal(err)
	}
	if c := changedNames(readStatus(t, root).Phases[Base].Tasks); !reflect.DeepEqual(c, []string{tContainerdConfig, "containerd/service"}) {
		t.Errorf("base after a credentials change changed %v, want config and service", c)
	}
	if calls := strings.Join(host.Calls(), "\n"); !strings.Contains(calls, "restart containerd.service") {
		t.Errorf("containerd not restarted:\n%s", calls)
	}
	if fi, _ := os.Stat(filepath.Join(root, ContainerdConfigPath)); fi.Mode().Perm() != 0o600 {
		t.Errorf("config.toml rewritten with mode %v", fi.Mode().Perm())
	}
}

// TestRegistryCredentialsFileErrors: a referenced credentials file that is
// missing, readable by others or malformed fails base's build, naming the file
// (and the host), never a credential.
func TestRegistryCredentialsFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(root string)
		msg   string
	}{
		{"missing", func(string) {}, "does not exist"},
		{"group-readable", func(root string) { writeCreds(t, root, regCreds, 0o640) }, "accessible by group or others (mode 0640)"},
		{"world-readable", func(root string) { writeCreds(t, root, regCreds, 0o644) }, "chmod 0600"},
		{"directory", func(root string) { os.MkdirAll(filepath.Join(root, v1alpha1.RegistryCredentialsPath), 0o700) }, "not a regular file"},
		{"not JSON", func(root string) {
			os.WriteFile(filepath.Join(root, v1alpha1.RegistryCredentialsPath), []byte("password: "+regPassword+"\n"), 0o600)
		}, "syntax error"},
		{"no password", func(root string) {
			os.WriteFile(filepath.Join(root, v1alpha1.RegistryCredentialsPath), []byte(`{"`+regMirror+`": {"username": "`+regPassword+`"}}`), 0o600)
		}, "[" + regMirror + "].password: is required with username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newArtifactServer(t)
			cfg := testConfig(srv, "debian-12")
			cfg.Containerd.CredentialsFile = v1alpha1.RegistryCredentialsPath
			root := testRoot(t, "debian-12", &cfg)
			tc.write(root)
			n := prepare(t, testOptions(root, newFakeHost(""), false, nil))
			_, err := n.Tasks(Base)
			if err == nil || !strings.Contains(err.Error(), "containerd.credentialsFile "+v1alpha1.RegistryCredentialsPath) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v, want the file named and %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), regPassword) {
				t.Errorf("the error quotes a credential: %v", err)
			}
		})
	}
}

// TestRegistryNoCredentials: without a credentials file config.toml stays
// 0644 and has no registry.configs.
func TestRegistryNoCredentials(t *testing.T) {
	srv := newArtifactServer(t)
	cfg := testConfig(srv, "debian-12")
	root := testRoot(t, "debian-12", &cfg)
	n := prepare(t, testOptions(root, newFakeHost(""), false, nil))
	ts, err := n.Tasks(Base)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range ts {
		if f, ok := task.(*tasks.File); ok && f.Path == ContainerdConfigPath && (f.Secret || bytes.Contains(f.Content, []byte("configs"))) {
			t.Errorf("config.toml without credentials: secret %v\n%s", f.Secret, f.Content)
		}
	}
}
