package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// AptRepo is a local, signed apt repository (suite Suite, component main) of
// .debs downloaded from the Debian mirror once and cached.
type AptRepo struct {
	// Dir is the repository's top directory (serve it over HTTP).
	Dir string
	// Suite is the root's suite (bookworm); the component is "main".
	Suite string
	// KeyFile is the binary OpenPGP key that signs InRelease (apt's Signed-By).
	KeyFile string
}

// NewAptRepo returns the cached repository holding pkgs and everything they
// need beyond what the root of spec already has installed (recommends included),
// resolved by apt inside a copy of that root with the host's network.
func NewAptRepo(t testing.TB, spec RootSpec, pkgs ...string) *AptRepo {
	t.Helper()
	Require(t)
	sorted := append([]string(nil), pkgs...)
	sort.Strings(sorted)
	key := cacheKey("apt", spec.key(), strings.Join(sorted, ","))
	dir := cached(t, "apt", key, func(out string) error {
		return buildAptRepo(t, spec, sorted, out)
	})
	return &AptRepo{Dir: dir, Suite: spec.Suite, KeyFile: filepath.Join(dir, "archive-key.gpg")}
}

// Deb returns the path of the cached .deb of package name.
func (r *AptRepo) Deb(t testing.TB, name string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(r.Dir, "pool", "main", name+"_*.deb"))
	if len(m) != 1 {
		t.Fatalf("apt repo %s: want one .deb of %s, found %v", r.Dir, name, m)
	}
	return m[0]
}

func buildAptRepo(t testing.TB, spec RootSpec, pkgs []string, out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	// A scratch copy of the root resolves the packages against its installed set.
	scratch, release := mountTmpfsRelease(t, "provision-aptdl-")
	defer release()
	if _, err := run(ctx, "", nil, "tar", "--numeric-owner", "-xpf", RootTarball(t, spec), "-C", scratch); err != nil {
		return err
	}
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(scratch, "etc/resolv.conf"), resolv, 0o644); err != nil {
		return err
	}
	umountProc, err := mountProc(scratch)
	if err != nil {
		return fmt.Errorf("mount proc in %s: %w", scratch, err)
	}
	defer umountProc()
	debs := "/var/tmp/debs"
	if err := os.MkdirAll(filepath.Join(scratch, debs, "partial"), 0o755); err != nil {
		return err
	}
	chroot := func(argv ...string) error {
		_, err := run(ctx, "", []string{"DEBIAN_FRONTEND=noninteractive", "LANG=C.UTF-8"}, append([]string{"chroot", scratch}, argv...)...)
		return err
	}
	done := Phase(t, "apt download")
	if err := chroot("apt-get", "-q", "update"); err != nil {
		return err
	}
	if err := chroot(append([]string{"apt-get", "-q", "-y", "install", "--download-only", "-o", "Dir::Cache::archives=" + debs}, pkgs...)...); err != nil {
		return err
	}
	done()
	pool := filepath.Join(out, "pool", "main")
	if err := os.MkdirAll(pool, 0o755); err != nil {
		return err
	}
	files, _ := filepath.Glob(filepath.Join(scratch, debs, "*.deb"))
	if len(files) == 0 {
		return fmt.Errorf("apt downloaded nothing for %v", pkgs)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(pool, filepath.Base(f)), data, 0o644); err != nil {
			return err
		}
	}
	t.Logf("apt repo: %d .debs for %v", len(files), pkgs)
	return indexAptRepo(ctx, t, out, spec.Suite)
}

// indexAptRepo writes Packages(.gz), Release and a signed InRelease with a
// throwaway key, exported to archive-key.gpg.
func indexAptRepo(ctx context.Context, t testing.TB, dir, suite string) error {
	done := Phase(t, "apt index")
	defer done()
	bin := filepath.Join("dists", suite, "main", "binary-amd64")
	if err := os.MkdirAll(filepath.Join(dir, bin), 0o755); err != nil {
		return err
	}
	pkgs, err := run(ctx, dir, nil, "apt-ftparchive", "packages", "pool")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, bin, "Packages"), []byte(pkgs), 0o644); err != nil {
		return err
	}
	if _, err := run(ctx, dir, nil, "gzip", "-9kn", filepath.Join(bin, "Packages")); err != nil {
		return err
	}
	release, err := run(ctx, dir, nil, "apt-ftparchive",
		"-o", "APT::FTPArchive::Release::Suite="+suite,
		"-o", "APT::FTPArchive::Release::Codename="+suite,
		"-o", "APT::FTPArchive::Release::Components=main",
		"-o", "APT::FTPArchive::Release::Architectures=amd64",
		"release", filepath.Join("dists", suite))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "dists", suite, "Release"), []byte(release), 0o644); err != nil {
		return err
	}
	gnupg, err := os.MkdirTemp("", "provision-gnupg-")
	if err != nil {
		return err
	}
	env := []string{"GNUPGHOME=" + gnupg}
	defer func() {
		// Stop the gpg-agent of this throwaway home only, then remove it.
		run(context.Background(), dir, env, "gpgconf", "--kill", "gpg-agent")
		os.RemoveAll(gnupg)
	}()
	if _, err := run(ctx, dir, env, "gpg", "--batch", "--passphrase", "", "--quick-gen-key", "provision e2e archive <e2e@provision.invalid>", "ed25519", "sign", "never"); err != nil {
		return err
	}
	if _, err := run(ctx, dir, env, "gpg", "--batch", "--yes", "-o", "archive-key.gpg", "--export"); err != nil {
		return err
	}
	_, err = run(ctx, dir, env, "gpg", "--batch", "--yes", "--clearsign", "-o", filepath.Join("dists", suite, "InRelease"), filepath.Join("dists", suite, "Release"))
	return err
}

// KeyringPath is where InstallSources puts the repository's key inside a root.
const KeyringPath = "/etc/apt/keyrings/provision-e2e.gpg"

// InstallSources makes url (where the repository is served) the root's only
// apt source, signed by the repository's key, as an airgapped node would have it.
func (r *AptRepo) InstallSources(t testing.TB, root *Root, url string) {
	t.Helper()
	root.CopyFile(t, r.KeyFile, KeyringPath, 0o644)
	root.WriteFile(t, "/etc/apt/sources.list", nil, 0o644)
	root.WriteFile(t, "/etc/apt/sources.list.d/provision-e2e.sources", deb822([][2]string{
		{"Types", "deb"},
		{"URIs", url},
		{"Suites", r.Suite},
		{"Components", "main"},
		{"Signed-By", KeyringPath},
	}), 0o644)
}

// deb822 renders one paragraph of ordered fields; values must be single-line.
func deb822(fields [][2]string) []byte {
	var b strings.Builder
	for _, f := range fields {
		if strings.ContainsAny(f[1], "\n") {
			panic("deb822: multi-line value for " + f[0])
		}
		b.WriteString(f[0] + ": " + f[1] + "\n")
	}
	return []byte(b.String())
}
