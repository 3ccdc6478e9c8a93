package reliability

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	arts "github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/node/nodeconfig"
	"github.com/provision-dev/provision/osprofiles"
)

// provisionBin is the provision binary built once for the package's tests.
var provisionBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "provision-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	provisionBin = filepath.Join(dir, "provision")
	build := exec.Command("go", "build", "-o", provisionBin, "github.com/provision-dev/provision/cmd/provision")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build provision: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// noise is n deterministic, incompressible bytes.
func noise(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// artifacts is a loopback server of fake release artifacts.
type artifacts struct{ *testutil.ArtifactServer }

func newArtifacts(t testing.TB) *artifacts {
	files := map[string][]byte{
		"/kubelet": noise(1, 512<<10),
		"/cni.tgz": testutil.TarGz(t, map[string][]byte{"./bridge": noise(2, 96<<10), "./host-local": noise(3, 96<<10), "./loopback": noise(4, 64<<10),
			"./portmap": noise(5, 64<<10), "./bandwidth": noise(6, 32<<10), "./firewall": noise(7, 32<<10)}),
		"/crictl.tgz": testutil.TarGz(t, map[string][]byte{"crictl": noise(8, 192<<10), "LICENSE": []byte("license\n")}),
	}
	for i, r := range arts.Required(debian12()) { // any other artifact of the table
		if _, ok := files["/"+r.File]; !ok && r.Name != arts.Kubelet && r.Name != arts.CNIPlugins && r.Name != arts.Crictl {
			files["/"+r.File] = noise(uint64(100+i), 64<<10)
		}
	}
	return &artifacts{testutil.NewArtifactServer(t, files)}
}

func (a *artifacts) artifact(p string) v1alpha1.Artifact {
	url, sum := a.URLAndSum(p)
	return v1alpha1.Artifact{URL: url, SHA256: sum, AllowHTTP: true} // the test server is plain http
}

// debian12 is the profile of nodeConfig.
func debian12() osprofiles.Profile {
	p, err := osprofiles.Get("debian-12")
	if err != nil {
		panic(err)
	}
	return p
}

// nodeConfig is a debian-12 node config whose artifacts come from a.
func (a *artifacts) nodeConfig() v1alpha1.NodeConfig {
	c := nodeconfig.New("v1.37.2", runtime.GOARCH)
	c.OSProfile = "debian-12"
	c.Kubernetes.APIServerURL = "https://127.0.0.1:6443"
	c.Kubernetes.ClusterDNS = []string{"10.96.0.10"}
	c.Kubernetes.ClusterDomain = "cluster.local"
	c.Artifacts = v1alpha1.Artifacts{arts.Kubelet: a.artifact("/kubelet"), arts.CNIPlugins: a.artifact("/cni.tgz"), arts.Crictl: a.artifact("/crictl.tgz")}
	for _, r := range arts.Required(debian12()) {
		if _, ok := c.Artifacts[r.Name]; !ok {
			c.Artifacts[r.Name] = a.artifact("/" + r.File)
		}
	}
	c.Containerd.RegistryMirrors = map[string][]string{"docker.io": {"https://mirror.internal"}}
	return c
}

// Stub commands for a node run against --root: chroot runs the stub inside
// "the root" by exporting it; dpkg-query/apt-get keep the installed packages in
// ROOT/var/lib/stub-dpkg/installed; systemctl --root enables a unit with the
// same WantedBy symlink systemctl would make.
var stubs = map[string]string{
	"chroot": `#!/bin/sh
root=$1; shift
STUB_ROOT=$root exec "$@"
`,
	"dpkg-query": `#!/bin/sh
db="$STUB_ROOT/var/lib/stub-dpkg/installed"
shift 2
rc=0
for p in "$@"; do
  if [ -f "$db" ] && grep -qx "$p" "$db"; then printf '%s\tii \n' "$p"; else rc=1; fi
done
exit $rc
`,
	"apt-get": `#!/bin/sh
db="$STUB_ROOT/var/lib/stub-dpkg/installed"
inst=0
for a in "$@"; do
  if [ $inst = 1 ]; then
    case $a in -*) ;; *) mkdir -p "${db%/*}"; grep -qsx "$a" "$db" || echo "$a" >> "$db";; esac
  fi
  [ "$a" = install ] && inst=1
done
exit 0
`,
	"systemctl": `#!/bin/sh
[ "$1" = --root ] || { echo "stub systemctl: only --root is supported: $*" >&2; exit 1; }
root=$2 cmd=$3 unit=$4
f=$root/etc/systemd/system/$unit
target=/etc/systemd/system/$unit
if [ ! -f "$f" ]; then target=/lib/systemd/system/$unit wanted=multi-user.target
else wanted=$(sed -n 's/^WantedBy=//p' "$f" | head -n 1); fi
link=$root/etc/systemd/system/$wanted.wants/$unit
case $cmd in
is-enabled) if [ -n "$wanted" ] && [ -L "$link" ]; then echo enabled; exit 0; fi; echo disabled; exit 1;;
enable) [ "$unit" != "${STUB_FAIL_UNIT:-}" ] || { echo "Failed to enable unit: $unit (injected by the test)" >&2; exit 1; }
  [ -n "$wanted" ] || { echo "stub systemctl: $unit has no WantedBy" >&2; exit 1; }
  mkdir -p "${link%/*}"; ln -sfn "$target" "$link";;
*) echo "stub systemctl: unsupported $cmd" >&2; exit 1;;
esac
`,
	"systemd-detect-virt": "#!/bin/sh\necho none\nexit 1\n",
}

// stubPath writes the stubs to a directory and returns a PATH with it first.
func stubPath(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range stubs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir + string(os.PathListSeparator) + os.Getenv("PATH")
}

// seedRoot makes a fresh node root: os-release, an fstab with swap, the node config.
func seedRoot(t testing.TB, dir string, cfg v1alpha1.NodeConfig) {
	t.Helper()
	osr, err := os.ReadFile(filepath.Join("..", "..", "osprofiles", "testdata", "os-release", "debian-12"))
	if err != nil {
		t.Fatal(err)
	}
	y, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for p, c := range map[string][]byte{
		"etc/os-release":          osr,
		"etc/fstab":               []byte("UUID=abc / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n"),
		"etc/provision/node.yaml": y,
	} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), c, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
