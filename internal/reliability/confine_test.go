package reliability

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provision-dev/provision/api/v1alpha1"
)

// confineEnv marks the re-executed test process that runs inside its own
// private mount namespace (see inPrivateMountNS).
const confineEnv = "PROVISION_TEST_CONFINE_NS"

// inPrivateMountNS re-executes the running test (only test name) under
// `unshare -m --propagation private` and reports false in the parent, which
// only relays the child's result; in the child it reports true. The child
// mounts a tmpfs for everything it writes outside its roots, so even a
// regression of the confinement can only hit that tmpfs. It never skips: no
// root or no unshare(1) is a failure.
func inPrivateMountNS(t *testing.T) bool {
	t.Helper()
	if os.Getenv(confineEnv) == "1" {
		return true
	}
	if os.Geteuid() != 0 {
		t.Fatal("needs root (a private mount namespace and a tmpfs): run the reliability suite as root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatal("unshare(1) is missing (util-linux): it isolates this test's mounts")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "-m", "--propagation", "private", os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), confineEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("inside the private mount namespace:\n%s", out.String())
	if err != nil {
		t.Fatalf("the test in the private mount namespace failed: %v", err)
	}
	if !strings.Contains(out.String(), "--- PASS: "+t.Name()) {
		t.Fatalf("the test in the private mount namespace did not pass")
	}
	return false
}

// mountTmpfs mounts a tmpfs on a new directory (in the private namespace).
func mountTmpfs(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "provision-confine-")
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256m,mode=0755"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		syscall.Unmount(dir, syscall.MNT_DETACH)
		os.Remove(dir)
	})
	return dir
}

// treeState hashes a tree: every entry with kind, mode, size, mtime and content hash.
func treeState(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		desc := fmt.Sprintf("%v %d %d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			desc += " " + hex.EncodeToString(h[:])
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffTrees(before, after map[string]string) []string {
	var d []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			d = append(d, "removed "+k)
		} else if w != v {
			d = append(d, "changed "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			d = append(d, "added "+k)
		}
	}
	sort.Strings(d)
	return d
}

// hostileCase is one path of the root replaced by a symlink pointing at the
// sentinel tree outside the root, and the command run on that root.
type hostileCase struct {
	path string // node path made a symlink
	rel  bool   // a relative ../../.. link instead of an absolute one
	run  string // base, join or bundle
}

func (c hostileCase) String() string {
	kind := "absolute"
	if c.rel {
		kind = "relative"
	}
	return fmt.Sprintf("%s %s link, %s", c.path, kind, c.run)
}

// TestHostileSymlinksConfined builds roots whose paths (every directory
// provision writes under, and files it edits) are symlinks, absolute and
// relative (../../..), to a sentinel tree outside the root, runs base, join
// and base --bundle on each, and proves that nothing outside the root changed
// (the sentinel tree, hashed with modes and mtimes, is identical) and that
// each run either confined its writes (succeeded, the link resolved inside the
// root as if the root were /) or failed naming the path. Everything runs in a
// private mount namespace on a tmpfs.
func TestHostileSymlinksConfined(t *testing.T) {
	if !inPrivateMountNS(t) {
		return
	}
	work := mountTmpfs(t)
	sentinel := filepath.Join(work, "outside")
	art := newArtifacts(t)
	cfg := art.nodeConfig()
	cfg.Packages.Apt = &v1alpha1.AptRepository{URL: "https://mirror.internal/debian", Suite: "bookworm", Components: []string{"main"}, Trusted: true, Exclusive: true}
	path := confinedStubPath(t, work)
	ca, err := os.ReadFile(filepath.Join("..", "..", "generate", "testdata", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	caFile, tokenFile := filepath.Join(work, "ca.crt"), filepath.Join(work, "token")
	os.WriteFile(caFile, ca, 0o644)
	os.WriteFile(tokenFile, []byte(goodToken+"\n"), 0o600)
	cfgFile := filepath.Join(work, "node.yaml")
	y, _ := cfg.Marshal()
	os.WriteFile(cfgFile, y, 0o644)
	bundleFile := filepath.Join(work, "b.tar")
	if out, err := exec.Command(provisionBin, "bundle", "--config", cfgFile, "-o", bundleFile).CombinedOutput(); err != nil {
		t.Fatalf("provision bundle: %v\n%s", err, out)
	}

	paths := map[string][]string{
		"/etc":                {"base", "join"},
		"/etc/kubernetes":     {"join"},
		"/etc/kubernetes/pki": {"join"},
		"/var/lib/kubelet":    {"join"},
		"/etc/systemd/system": {"base", "join"},
		"/etc/systemd/system/timers.target.wants": {"base"},
		"/etc/apt":                     {"base"},
		"/etc/apt/sources.list.d":      {"base"},
		"/etc/apt/sources.list":        {"base"},
		"/var/lib/provision":           {"base", "join", "bundle"},
		"/var/lib/provision/bundle":    {"bundle"},
		"/var/lib/provision/extracted": {"base"},
		"/etc/containerd":              {"base"},
		"/var/cache/provision":         {"base", "bundle"},
		"/opt/cni/bin":                 {"base"},
		"/usr/local/bin":               {"base", "bundle"},
		"/usr/local/bin/kubelet":       {"base"},
		"/etc/fstab":                   {"base"},
		"/etc/sysctl.d":                {"base"},
		"/etc/modules-load.d":          {"base"},
		"/var/lib/dpkg":                {"base"},
		"/etc/provision":               {"base"},
	}
	var cases []hostileCase
	for p, runs := range paths {
		for _, r := range runs {
			cases = append(cases, hostileCase{p, false, r}, hostileCase{p, true, r})
		}
	}
	sort.Slice(cases, func(i, j int) bool { return cases[i].String() < cases[j].String() })

	// The sentinel: for every case path, files and directories with content of
	// their own, at the host path each link names.
	// A file-level case (fileCases) links to a sentinel file.
	fileCases := map[string]bool{"/etc/apt/sources.list": true, "/usr/local/bin/kubelet": true, "/etc/fstab": true}
	for p := range paths {
		if fileCases[p] {
			continue
		}
		dst := filepath.Join(sentinel, p)
		for _, f := range []string{"", "sub"} {
			os.MkdirAll(filepath.Join(dst, f), 0o755)
			os.WriteFile(filepath.Join(dst, f, "sentinel"), []byte("outside "+p+"\n"), 0o644)
		}
		for _, n := range []string{"sources.list", "debian.sources", "config.toml", "kubelet", "bridge", "status.json", "bootstrap-kubelet.conf", "ca.crt", "lock-frontend", "manifest.json", "node.yaml"} {
			os.WriteFile(filepath.Join(dst, n), []byte("outside "+n+"\n"), 0o644)
		}
	}
	for p := range fileCases {
		os.MkdirAll(filepath.Dir(filepath.Join(sentinel, p)), 0o755)
		os.WriteFile(filepath.Join(sentinel, p), []byte("outside "+p+"\n"), 0o644)
	}
	before := treeState(t, sentinel)

	tried, confined, refused := 0, 0, 0
	for i, c := range cases {
		root := filepath.Join(work, fmt.Sprintf("root-%d", i))
		seedRoot(t, root, cfg)
		os.MkdirAll(filepath.Join(root, "etc/apt/sources.list.d"), 0o755)
		os.WriteFile(filepath.Join(root, "etc/apt/sources.list"), []byte("deb http://deb.debian.org/debian bookworm main\n"), 0o644)
		os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/debian.sources"), []byte("Types: deb\n"), 0o644)
		os.MkdirAll(filepath.Join(root, "var/lib/dpkg"), 0o755)
		if c.run == "join" { // join runs on a based root
			if r := runNode(t, path, root, "base"); r.err != nil {
				t.Fatalf("%s: base before join: %v\n%s", c, r.err, r.stderr)
			}
		}
		// The link's target, a host path in the sentinel; inside the root the same
		// name must hold what the path held, so a confined run finds its files.
		target := filepath.Join(sentinel, c.path)
		inRoot := filepath.Join(root, target)
		link := filepath.Join(root, c.path)
		os.MkdirAll(filepath.Dir(inRoot), 0o755)
		os.RemoveAll(inRoot)
		if _, err := os.Lstat(link); err == nil {
			if err := os.Rename(link, inRoot); err != nil {
				t.Fatal(err)
			}
		} else {
			os.MkdirAll(filepath.Dir(link), 0o755)
			if !fileCases[c.path] { // the link resolves, inside the root, to an existing directory
				os.MkdirAll(inRoot, 0o755)
			}
		}
		linkTarget := target
		if c.rel {
			depth := strings.Count(strings.TrimPrefix(c.path, "/"), "/")
			linkTarget = strings.Repeat("../", depth+12) + strings.TrimPrefix(target, "/")
		}
		if err := os.Symlink(linkTarget, link); err != nil {
			t.Fatal(err)
		}
		tried++
		var r nodeRun
		switch c.run {
		case "base":
			r = runNode(t, path, root, "base")
		case "join":
			r = runNode(t, path, root, "join", "--token-file", tokenFile, "--ca-cert", caFile, "--apiserver-url", "https://10.0.0.10:6443")
		case "bundle":
			r = runNode(t, path, root, "base", "--bundle", bundleFile)
		}
		if d := diffTrees(before, treeState(t, sentinel)); len(d) > 0 {
			t.Fatalf("%s: the run changed the tree OUTSIDE the root: %v\n%s", c, d, r.stderr)
		}
		switch {
		case r.err == nil:
			confined++
		case strings.Contains(r.stderr, c.path):
			refused++
			t.Logf("%s: refused: %s", c, lastLine(r.stderr, c.path))
		default:
			t.Errorf("%s: failed without naming %s: %v\n%s", c, c.path, r.err, r.stderr)
		}
		os.RemoveAll(root)
	}
	t.Logf("hostile symlink cases tried %d, confined %d, refused naming the path %d", tried, confined, refused)
	if confined+refused != tried {
		t.Errorf("%d of %d cases neither confined nor refused naming the path", tried-confined-refused, tried)
	}
	if confined == 0 {
		t.Errorf("no case confined: the roots are broken, not the confinement proven")
	}
}

func lastLine(s, sub string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], sub) {
			return lines[i]
		}
	}
	return ""
}

// runNode runs `provision node PHASE --root root ARGS...` with the stubs.
func runNode(t *testing.T, path, root, phase string, args ...string) nodeRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, provisionBin, append([]string{"node", phase, "--root", root}, args...)...)
	cmd.Env = []string{"PATH=" + path, "HOME=" + root, "LANG=C"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err := cmd.Run()
	if cmd.Process != nil {
		killGroup(t, cmd.Process.Pid)
	}
	return nodeRun{stderr: stderr.String(), err: err}
}

// confinedStubPath is stubPath with a systemctl that, like the real
// `systemctl --root` (which resolves paths in the root with systemd's chase),
// never writes through a symlink: a symlinked directory on the way to the
// .wants link is refused, naming it. (systemctl --root is the documented
// boundary of provision's own confinement.)
func confinedStubPath(t *testing.T, work string) string {
	t.Helper()
	dir := filepath.Join(work, "stubs")
	os.MkdirAll(dir, 0o755)
	for name, body := range stubs {
		if name == "systemctl" {
			body = strings.Replace(body, `link=$root/etc/systemd/system/$wanted.wants/$unit
`, `link=$root/etc/systemd/system/$wanted.wants/$unit
d=$root
for c in etc systemd system "$wanted.wants"; do
  d=$d/$c
  if [ -L "$d" ]; then echo "stub systemctl: ${d#$root} is a symlink: refusing to write through it" >&2; exit 1; fi
done
if [ -L "$f" ]; then echo "stub systemctl: ${f#$root} is a symlink: refusing to read through it" >&2; exit 1; fi
`, 1)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir + string(os.PathListSeparator) + os.Getenv("PATH")
}
