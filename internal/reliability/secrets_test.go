package reliability

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/generate/cloudinit"
	arts "github.com/provision-dev/provision/internal/artifacts"
)

// Unique marker values: a hit anywhere they should not be is a leak.
const (
	markerTokenID     = "qz7mk2"
	markerTokenSecret = "x9v4r8t2w6y3p5n1" // the secret half of the token
	markerToken       = markerTokenID + "." + markerTokenSecret
	markerCloud       = "cloudpw-MARKER-7f3a9c1e"
	markerSSH         = "sshcomment-MARKER-55aa0b"
	markerRegistry    = "regpw-MARKER-3c9d71e0" // a registry password (containerd.registries)
)

// markers are searched for; the token id alone is public (it names the token).
var markers = []string{markerTokenSecret, markerCloud, markerSSH, markerRegistry}

func hits(data []byte) []string {
	var out []string
	for _, m := range markers {
		if bytes.Contains(data, []byte(m)) {
			out = append(out, m)
		}
	}
	return out
}

// cmdlineSampler reads /proc/*/cmdline of every process every few hundred
// microseconds while runs go on, and records any process whose argv holds a marker.
type cmdlineSampler struct {
	stop    chan struct{}
	done    chan struct{}
	samples atomic.Int64
	mu      sync.Mutex
	leaks   []string
}

func sampleCmdlines() *cmdlineSampler {
	s := &cmdlineSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
			for _, p := range paths {
				b, err := os.ReadFile(p)
				if err != nil {
					continue
				}
				if h := hits(b); len(h) > 0 {
					s.mu.Lock()
					s.leaks = append(s.leaks, fmt.Sprintf("%s: %q", p, bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
					s.mu.Unlock()
				}
			}
			s.samples.Add(1)
			time.Sleep(200 * time.Microsecond)
		}
	}()
	return s
}

func (s *cmdlineSampler) finish() (int64, []string) {
	close(s.stop)
	<-s.done
	return s.samples.Load(), s.leaks
}

// modeWatcher watches directories with inotify and records the mode of every
// file the moment its creation is reported (and again when it is renamed into
// place), from outside the process that writes it.
type modeWatcher struct {
	fd    int
	wds   map[int]string
	mu    sync.Mutex
	modes map[string][]fs.FileMode // base name -> modes seen
	done  chan struct{}
}

func watchModes(t *testing.T, dirs ...string) *modeWatcher {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	w := &modeWatcher{fd: fd, wds: map[int]string{}, modes: map[string][]fs.FileMode{}, done: make(chan struct{})}
	for _, d := range dirs {
		wd, err := unix.InotifyAddWatch(fd, d, unix.IN_CREATE|unix.IN_MOVED_TO)
		if err != nil {
			t.Fatalf("inotify watch %s: %v", d, err)
		}
		w.wds[wd] = d
	}
	go func() {
		defer close(w.done)
		buf := make([]byte, 64<<10)
		for {
			n, err := unix.Read(fd, buf)
			if err != nil || n <= 0 {
				return
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
				off += unix.SizeofInotifyEvent + int(ev.Len)
				if ev.Mask&unix.IN_IGNORED != 0 {
					return
				}
				w.mu.Lock()
				dir := w.wds[int(ev.Wd)]
				w.mu.Unlock()
				if fi, err := os.Lstat(filepath.Join(dir, name)); err == nil && fi.Mode().IsRegular() {
					w.mu.Lock()
					w.modes[name] = append(w.modes[name], fi.Mode().Perm())
					w.mu.Unlock()
				}
			}
		}
	}()
	return w
}

func (w *modeWatcher) add(t *testing.T, dir string) {
	t.Helper()
	wd, err := unix.InotifyAddWatch(w.fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO)
	if err != nil {
		t.Fatalf("inotify watch %s: %v", dir, err)
	}
	w.mu.Lock()
	w.wds[wd] = dir
	w.mu.Unlock()
}

func (w *modeWatcher) close() map[string][]fs.FileMode {
	w.mu.Lock()
	for wd := range w.wds {
		unix.InotifyRmWatch(w.fd, uint32(wd))
	}
	w.mu.Unlock()
	select {
	case <-w.done:
	case <-time.After(2 * time.Second):
	}
	unix.Close(w.fd)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.modes
}

// procSamples counts the /proc passes of all runs (a short run may finish
// within one pass: the sampling is best effort per run, continuous overall).
var procSamples atomic.Int64

type run struct {
	name       string
	args       []string
	env        []string
	wantErr    string // "" = must succeed
	secretsAt  []string
	mustBeHere bool // the 0600 secret files must hold the markers
}

// TestSecretsNeverLeak seeds unique markers for the bootstrap token, the cloud
// config's credentials and an SSH key's comment, and runs the built binary:
// generate (success and six injected failures) and node base+join against a
// temp root (success and injected failures: artifact 404, unit enable failure,
// an unwritable kubernetes dir, a token without an API server) with --verbose.
// It greps stdout, stderr, every file under the work dir and the node root
// except the 0600 files meant to hold them (the userdata output,
// bootstrap-kubelet.conf, cloud-config) and, sampled all along, the
// /proc/*/cmdline of every process. Zero hits are allowed. It also watches, with
// inotify, that every file in the secret files' directories is 0600 when it
// first appears.
func TestSecretsNeverLeak(t *testing.T) {
	art := newArtifacts(t)
	work := t.TempDir()
	ca, err := os.ReadFile(filepath.Join("..", "..", "generate", "testdata", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(p, c string, mode fs.FileMode) string {
		p = filepath.Join(work, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tokenFile := write("in/token", markerToken+"\n", 0o600)
	cloud := write("in/cloud.conf", "[Global]\nauth-url = https://keystone.internal:5000/v3\nusername = provision\npassword = "+markerCloud+"\n", 0o600)
	caFile := write("in/ca.crt", string(ca), 0o644)
	badCA := write("in/bad-ca.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 0o644)
	sshKey := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3f5Q2Xq0yQmQ7cX9mJtq3VbqHq3oYkq7o0Jm3sR1z " + markerSSH
	outDir := filepath.Join(work, "out")
	os.MkdirAll(outDir, 0o755)

	// The SSH key goes in through the config file: on argv it would be the test's
	// own doing (an SSH public key is not a secret, but its marker must not show).
	// So does the private registry: its password is only ever in a config file.
	genConfig := write("in/generate.yaml", "apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\nsshAuthorizedKeys:\n  - "+sshKey+"\n"+
		"containerd:\n  registryMirrors: {registry.example.com: [\"https://10.0.0.5:5000\"]}\n"+
		"  registries:\n    10.0.0.5:5000: {caCertFile: "+caFile+", username: puller, password: "+markerRegistry+"}\n", 0o600)
	badRegConfig := write("in/generate-bad-registry.yaml", "apiVersion: provision.dev/v1alpha1\nkind: GenerateConfig\n"+
		"containerd:\n  registries:\n    10.0.0.5:5000: {username: \"pull:er\", password: \""+markerRegistry+"\\n\", identityToken: "+markerRegistry+"}\n", 0o600)
	gen := func(out string, extra ...string) []string {
		return append([]string{"generate", "--config", genConfig, "--os", "ubuntu-22.04", "--kubelet-version", "v1.37.2", "--apiserver-url", "https://10.0.0.10:6443",
			"--token-file", tokenFile, "--ca-cert", caFile, "--cloud-provider", "external", "--cloud-config", cloud, "--hostname", "worker-1",
			"--provision-source", "https://example.com/p", "--provision-sha256", goodSum, "-o", out}, extra...)
	}
	userdata := filepath.Join(outDir, "user-data")
	w := watchModes(t, outDir)
	runs := []run{
		{name: "generate cloud-init", args: gen(userdata), secretsAt: []string{userdata}, mustBeHere: true},
		// Ignition embeds files as encoded data URLs: the markers are not visible in it.
		{name: "generate ignition", args: gen(userdata+".ign", "--os", "flatcar", "--format", "ignition"), secretsAt: []string{userdata + ".ign"}},
		{name: "generate bad CA", args: gen(filepath.Join(outDir, "x"), "--ca-cert", badCA), wantErr: "--ca-cert / caCert"},
		{name: "generate bad apiserver URL", args: gen(filepath.Join(outDir, "x"), "--apiserver-url", "http://10.0.0.10:6443"), wantErr: "--apiserver-url / apiServerURL"},
		{name: "generate bad source URL", args: gen(filepath.Join(outDir, "x"), "--provision-source", "ftp://mirror/p"), wantErr: "--provision-source / provisionSource"},
		{name: "generate bad hostname", args: gen(filepath.Join(outDir, "x"), "--hostname", "-bad"), wantErr: "--hostname / hostname"},
		{name: "generate over --max-size", args: gen(filepath.Join(outDir, "x"), "--max-size", "1000"), wantErr: "--max-size"},
		{name: "generate unwritable output", args: gen(filepath.Join(outDir, "missing-dir", "x")), wantErr: "write output"},
		{name: "generate bad registry credentials", args: gen(filepath.Join(outDir, "x"), "--config", badRegConfig), wantErr: "containerd.registries[10.0.0.5:5000].password: must be printable ASCII"},
	}
	for _, r := range runs {
		runOne(t, r, work, nil)
	}

	// node: base+join against a temp root, with a stub package manager and systemctl.
	path := stubPath(t)
	cfg := art.nodeConfig()
	cfg.Kubernetes.CloudProvider = "external"
	cfg.Kubernetes.CloudConfigPath = v1alpha1.CloudConfigPath
	cfg.Containerd.RegistryMirrors = map[string][]string{"registry.example.com": {"https://10.0.0.5:5000"}}
	cfg.Containerd.CredentialsFile = v1alpha1.RegistryCredentialsPath
	creds, err := v1alpha1.RegistryCredentials{"10.0.0.5:5000": {Username: "puller", Password: markerRegistry}}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	nodeArgs := func(root string, extra ...string) []string {
		return append([]string{"node", "--verbose", "--root", root, "--token-file", tokenFile, "--ca-cert", caFile, "--cloud-config", cloud,
			"--apiserver-url", "https://10.0.0.10:6443"}, extra...)
	}
	newRoot := func(name string, c v1alpha1.NodeConfig) string {
		root := filepath.Join(work, name)
		os.MkdirAll(filepath.Join(root, "etc", "kubernetes"), 0o755)
		seedRoot(t, root, c)
		os.MkdirAll(filepath.Join(root, "etc", "containerd"), 0o755)
		if err := os.WriteFile(filepath.Join(root, v1alpha1.RegistryCredentialsPath), creds, 0o600); err != nil {
			t.Fatal(err)
		}
		return root
	}
	secretFiles := func(root string) []string {
		return []string{filepath.Join(root, "etc/kubernetes/bootstrap-kubelet.conf"), filepath.Join(root, "etc/kubernetes/cloud-config"),
			filepath.Join(root, v1alpha1.RegistryCredentialsPath), filepath.Join(root, "etc/containerd/config.toml")}
	}
	okRoot := newRoot("node-ok", cfg)
	w.add(t, filepath.Join(okRoot, "etc", "kubernetes"))
	w.add(t, filepath.Join(okRoot, "etc", "containerd"))
	runOne(t, run{name: "node base+join", args: nodeArgs(okRoot), env: []string{"PATH=" + path}, secretsAt: secretFiles(okRoot), mustBeHere: true}, work, nil)
	// The bootstrap kubeconfig after a successful join: kept (kubeadm does the
	// same), 0600, and the token nowhere else; the token is short-lived.
	for _, p := range secretFiles(okRoot) {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s after join: %v %v, want kept with mode 0600", p, fi, err)
		}
	}
	// Re-running join with everything in place must not rewrite or leak either.
	runOne(t, run{name: "node join again", args: append([]string{"node", "join"}, nodeArgs(okRoot)[1:]...), env: []string{"PATH=" + path}, secretsAt: secretFiles(okRoot), mustBeHere: true}, work, nil)
	modes := w.close()

	bad404 := cfg
	bad404.Artifacts = maps.Clone(cfg.Artifacts) // a map: cfg keeps its own
	bad404.Artifacts[arts.Kubelet] = v1alpha1.Artifact{URL: art.URL + "/missing-kubelet", SHA256: bad404.Artifacts[arts.Kubelet].SHA256, AllowHTTP: true}
	failRoot := newRoot("node-404", bad404)
	runOne(t, run{name: "node with artifact 404", args: nodeArgs(failRoot), env: []string{"PATH=" + path}, wantErr: "HTTP 404"}, work, nil)
	unitRoot := newRoot("node-unit-fail", cfg)
	runOne(t, run{name: "node with kubelet enable failing", args: nodeArgs(unitRoot), env: []string{"PATH=" + path, "STUB_FAIL_UNIT=kubelet.service"},
		wantErr: "kubelet.service (injected by the test)", secretsAt: secretFiles(unitRoot)}, work, nil)
	roRoot := newRoot("node-unwritable", cfg)
	os.RemoveAll(filepath.Join(roRoot, "etc", "kubernetes"))
	if err := os.WriteFile(filepath.Join(roRoot, "etc", "kubernetes"), []byte("not a dir\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runOne(t, run{name: "node with an unwritable /etc/kubernetes", args: nodeArgs(roRoot), env: []string{"PATH=" + path}, wantErr: "/etc/kubernetes"}, work, nil)
	noAPI := cfg
	noAPI.Kubernetes.APIServerURL = ""
	apiRoot := newRoot("node-no-apiserver", noAPI)
	runOne(t, run{name: "node token without API server", args: []string{"node", "--root", apiRoot, "--token-file", tokenFile}, env: []string{"PATH=" + path}, wantErr: "--token needs --apiserver-url"}, work, nil)
	runOne(t, run{name: "node malformed token file", args: []string{"node", "--root", apiRoot, "--token-file", cloud, "--apiserver-url", "https://10.0.0.10:6443"}, env: []string{"PATH=" + path}, wantErr: "bootstrap token: must have the form"}, work, nil)

	// Every file of every run's tree: no marker outside the secret files.
	secret := map[string]bool{tokenFile: true, cloud: true, genConfig: true, badRegConfig: true, userdata: true, userdata + ".ign": true}
	for _, root := range []string{okRoot, unitRoot, failRoot, roRoot, apiRoot} {
		for _, p := range secretFiles(root) {
			if _, err := os.Stat(p); err == nil {
				secret[p] = true
			}
		}
	}
	files := 0
	filepath.WalkDir(work, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || secret[p] || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		files++
		if b, err := os.ReadFile(p); err == nil {
			if h := hits(b); len(h) > 0 {
				t.Errorf("marker %v in %s", h, p)
			}
		}
		return nil
	})
	for p := range secret {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s holds secrets with mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	// Mode at first appearance, for the secret files and their temp files.
	seen := 0
	for name, ms := range modes {
		if !strings.Contains(name, "bootstrap-kubelet.conf") && !strings.Contains(name, "cloud-config") && !strings.Contains(name, "user-data") && !strings.Contains(name, "config.toml") {
			continue
		}
		seen++
		for _, m := range ms {
			if m != 0o600 {
				t.Errorf("%s was %v when it appeared, want 0600 from creation", name, m)
			}
		}
	}
	if seen < 5 {
		t.Errorf("inotify saw only %d secret files or temp files appear: %v", seen, modes)
	}
	t.Logf("%d runs, %d files scanned, %d /proc passes, %d secret files and temps seen 0600 at creation", len(runs)+7, files, procSamples.Load(), seen)
}

// runOne runs the binary once with a /proc/*/cmdline sampler and checks its
// outcome, stdout and stderr for markers, and the secret files for them.
func runOne(t *testing.T, r run, dir string, _ []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, provisionBin, r.args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"HOME=" + dir, "LANG=C", "PATH=" + os.Getenv("PATH")}, r.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	s := sampleCmdlines()
	err := cmd.Run()
	n, leaks := s.finish()
	for _, l := range leaks {
		t.Errorf("%s: marker in a process's argv: %s", r.name, l)
	}
	procSamples.Add(n)
	switch {
	case r.wantErr == "" && err != nil:
		t.Errorf("%s: %v\n%s", r.name, err, stderr.String())
	case r.wantErr != "" && (err == nil || !strings.Contains(stderr.String(), r.wantErr)):
		t.Errorf("%s: err %v, want stderr to contain %q:\n%s", r.name, err, r.wantErr, stderr.String())
	}
	if h := hits(stdout.Bytes()); len(h) > 0 {
		t.Errorf("%s: marker %v on stdout", r.name, h)
	}
	if h := hits(stderr.Bytes()); len(h) > 0 {
		t.Errorf("%s: marker %v on stderr:\n%s", r.name, h, stderr.String())
	}
	if r.mustBeHere {
		var all []byte
		for _, p := range r.secretsAt {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Errorf("%s: %v", r.name, err)
			}
			all = append(all, b...)
			if bytes.HasPrefix(b, []byte("#cloud-config")) {
				// Files are written in their shortest form (maybe gzip+base64).
				files, err := cloudinit.Files(b)
				if err != nil {
					t.Errorf("%s: %v", r.name, err)
				}
				for _, f := range files {
					all = append(all, f...)
				}
			}
		}
		if !bytes.Contains(all, []byte(markerTokenSecret)) || !bytes.Contains(all, []byte(markerCloud)) || !bytes.Contains(all, []byte(markerRegistry)) {
			t.Errorf("%s: the secret files do not hold the seeded secrets: the test proves nothing", r.name)
		}
	}
}

// TestSecretFilesAre0600FromCreation proves the mode open(2) gives a secret
// file, from outside: `provision node join` is SIGKILLed right after the
// temp file of bootstrap-kubelet.conf / cloud-config is opened, before the
// chmod and before any byte (kill point "fsroot: temp opened"); the temp file
// the dead process left is then inspected. Run with umask 0, so only the mode
// passed to open(2) counts.
func TestSecretFilesAre0600FromCreation(t *testing.T) {
	art := newArtifacts(t)
	path := stubPath(t)
	work := t.TempDir()
	tokenFile := filepath.Join(work, "token")
	cloud := filepath.Join(work, "cloud.conf")
	os.WriteFile(tokenFile, []byte(markerToken+"\n"), 0o600)
	os.WriteFile(cloud, []byte("password = "+markerCloud+"\n"), 0o600)
	ca, _ := os.ReadFile(filepath.Join("..", "..", "generate", "testdata", "ca.crt"))
	caFile := filepath.Join(work, "ca.crt")
	os.WriteFile(caFile, ca, 0o644)
	cfg := art.nodeConfig()
	cfg.Kubernetes.CloudProvider = "external"
	cfg.Kubernetes.CloudConfigPath = v1alpha1.CloudConfigPath
	based := filepath.Join(work, "based")
	seedRoot(t, based, cfg)
	if r := runBase(t, path, based, 0); r.err != nil {
		t.Fatalf("base: %v\n%s", r.err, r.stderr)
	}
	old := unix.Umask(0)
	defer unix.Umask(old)
	checked := map[string]bool{}
	for n := 1; n < 200; n++ {
		root := filepath.Join(work, fmt.Sprintf("join-%d", n))
		if out, err := exec.Command("cp", "-a", based, root).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		cmd := exec.Command(provisionBin, "node", "join", "--root", root, "--token-file", tokenFile, "--ca-cert", caFile, "--cloud-config", cloud, "--apiserver-url", "https://10.0.0.10:6443")
		cmd.Env = []string{"PATH=" + path, fmt.Sprintf("PROVISION_TEST_KILL_AT=%d", n)}
		out, err := cmd.CombinedOutput()
		if err == nil {
			break // the run ended before point n
		}
		m := killLine.FindSubmatch(out)
		if m == nil {
			t.Fatalf("join failed without being killed: %v\n%s", err, out)
		}
		point := string(m[1])
		if !strings.HasPrefix(point, "fsroot: temp opened ") {
			continue
		}
		tmp := strings.TrimPrefix(point, "fsroot: temp opened ")
		base := filepath.Base(tmp)
		for _, secret := range []string{".bootstrap-kubelet.conf.provision-", ".cloud-config.provision-"} {
			if !strings.HasPrefix(base, secret) {
				continue
			}
			fi, err := os.Stat(tmp)
			if err != nil {
				t.Fatalf("%s: the killed run left no temp file: %v", point, err)
			}
			if fi.Mode().Perm() != 0o600 || fi.Size() != 0 {
				t.Errorf("%s: created with mode %v (%d bytes), want 0600 before any byte", base, fi.Mode().Perm(), fi.Size())
			}
			checked[secret] = true
		}
		os.RemoveAll(root)
	}
	if len(checked) != 2 {
		t.Fatalf("checked the creation mode of %v only", checked)
	}
}
