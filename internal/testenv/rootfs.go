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

// RootSpec says how to debootstrap a root. Its fields are the cache key.
type RootSpec struct {
	Suite   string
	Mirror  string
	Variant string
	// Include lists the packages added to the variant's set.
	Include []string
	// Install lists packages installed with apt-get (no recommends) in a chroot
	// after debootstrap, with the host's network: for packages whose maintainer
	// scripts need a complete base system (debootstrap --include=cloud-init
	// fails configuring python3-cryptography).
	Install []string
}

// Bookworm is a minimal Debian 12 root that boots with systemd.
var Bookworm = RootSpec{
	Suite:   "bookworm",
	Mirror:  "http://deb.debian.org/debian",
	Variant: "minbase",
	Include: []string{"systemd", "systemd-sysv", "dbus", "procps", "kmod", "ca-certificates", "curl"},
}

// Trixie is Bookworm's minimal root for Debian 13 (trixie), the suite being the
// only difference.
var Trixie = Bookworm.WithSuite("trixie")

// BookwormCloudInit is Bookworm with cloud-init, for the userdata path, and
// locales (without it cloud-init's locale module fails, as on a cloud image
// without locales).
var BookwormCloudInit = Bookworm.WithInstalled("cloud-init", "locales")

// WithSuite returns a copy of s for another Debian suite (release), with the
// same mirror, variant and packages; it is cached under its own key.
func (s RootSpec) WithSuite(suite string) RootSpec {
	s.Include = append([]string(nil), s.Include...)
	s.Install = append([]string(nil), s.Install...)
	s.Suite = suite
	return s
}

// With returns a copy of s that also includes pkgs.
func (s RootSpec) With(pkgs ...string) RootSpec {
	s.Include = append(append([]string(nil), s.Include...), pkgs...)
	return s
}

// WithInstalled returns a copy of s that also installs pkgs after debootstrap.
func (s RootSpec) WithInstalled(pkgs ...string) RootSpec {
	s.Install = append(append([]string(nil), s.Install...), pkgs...)
	return s
}

func (s RootSpec) key() string {
	inc := append([]string(nil), s.Include...)
	sort.Strings(inc)
	parts := []string{"debootstrap", s.Suite, s.Mirror, s.Variant, strings.Join(inc, ",")}
	if len(s.Install) > 0 { // absent from older keys, which stay valid
		ins := append([]string(nil), s.Install...)
		sort.Strings(ins)
		parts = append(parts, "install:"+strings.Join(ins, ","))
	}
	return cacheKey(parts...)
}

// installInChroot installs pkgs into a debootstrapped root with apt-get in a
// chroot, with the host's resolv.conf and network, then cleans apt's caches.
func installInChroot(ctx context.Context, t testing.TB, rootfs string, pkgs []string) error {
	done := Phase(t, "apt-get install "+strings.Join(pkgs, " "))
	defer done()
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return err
	}
	rc := filepath.Join(rootfs, "etc/resolv.conf")
	os.Remove(rc)
	if err := os.WriteFile(rc, resolv, 0o644); err != nil {
		return err
	}
	umountProc, err := mountProc(rootfs)
	if err != nil {
		return fmt.Errorf("mount proc in %s: %w", rootfs, err)
	}
	defer umountProc()
	env := []string{"DEBIAN_FRONTEND=noninteractive", "LANG=C.UTF-8"}
	for _, argv := range [][]string{
		{"apt-get", "-q", "update"},
		append([]string{"apt-get", "-q", "-y", "--no-install-recommends", "install"}, pkgs...),
		{"apt-get", "clean"},
	} {
		if _, err := run(ctx, "", env, append([]string{"chroot", rootfs}, argv...)...); err != nil {
			return err
		}
	}
	lists, _ := filepath.Glob(filepath.Join(rootfs, "var/lib/apt/lists/*_*"))
	for _, l := range lists {
		os.Remove(l)
	}
	return nil
}

// RootTarball returns the cached tarball of the root spec, debootstrapping it once.
func RootTarball(t testing.TB, spec RootSpec) string {
	t.Helper()
	dir := cached(t, "roots", spec.key(), func(out string) error {
		if err := os.WriteFile(filepath.Join(out, "spec.txt"), []byte(fmt.Sprintf("%+v\n", spec)), 0o644); err != nil {
			return err
		}
		rootfs, release := mountTmpfsRelease(t, "provision-debootstrap-")
		defer release()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		done := Phase(t, "debootstrap "+spec.Suite)
		argv := []string{"debootstrap", "--variant=" + spec.Variant, "--include=" + strings.Join(spec.Include, ","), spec.Suite, rootfs, spec.Mirror}
		if _, err := run(ctx, "", nil, argv...); err != nil {
			return err
		}
		done()
		if len(spec.Install) > 0 {
			if err := installInChroot(ctx, t, rootfs, spec.Install); err != nil {
				return err
			}
		}
		// Debootstrap copies the host's resolv.conf and hostname: the copy is
		// made neutral here and set per test by NewRoot.
		for name, content := range map[string]string{
			"etc/hostname":    "localhost\n",
			"etc/resolv.conf": "",
		} {
			p := filepath.Join(rootfs, name)
			os.Remove(p)
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				return err
			}
		}
		done = Phase(t, "pack root tarball")
		defer done()
		_, err := run(ctx, "", nil, "tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-cf", filepath.Join(out, "root.tar"), "-C", rootfs, ".")
		return err
	})
	return filepath.Join(dir, "root.tar")
}

// Root is a fresh, unpacked copy of a cached root on its own tmpfs, removed at cleanup.
type Root struct {
	Dir  string
	Spec RootSpec
}

// NewRoot unpacks a fresh copy of the cached root for spec onto a tmpfs. Its
// resolv.conf names DeadNameserver, an address inside the test's network
// namespace where nothing answers, so name lookups fail at once.
func NewRoot(t testing.TB, spec RootSpec) *Root {
	t.Helper()
	Require(t)
	r := RootFromTarball(t, RootTarball(t, spec))
	r.Spec = spec
	return r
}

// RootFromTarball unpacks a root tarball (a cached root, or a Snapshot of a
// prepared one, e.g. a prebaked image) onto a fresh tmpfs.
func RootFromTarball(t testing.TB, tarball string) *Root {
	t.Helper()
	Require(t)
	dir := mountTmpfs(t, "provision-root-")
	done := Phase(t, "unpack root")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := run(ctx, "", nil, "tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", tarball, "-C", dir); err != nil {
		t.Fatalf("unpack root: %v", err)
	}
	done()
	r := &Root{Dir: dir}
	r.WriteFile(t, "/etc/resolv.conf", []byte("nameserver "+DeadNameserver+"\n"), 0o644)
	return r
}

// Path returns the host path of p inside the root.
func (r *Root) Path(p string) string { return filepath.Join(r.Dir, filepath.Clean("/"+p)) }

// WriteFile writes a file inside the root, creating its parents.
func (r *Root) WriteFile(t testing.TB, p string, data []byte, mode os.FileMode) {
	t.Helper()
	hp := r.Path(p)
	if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
		t.Fatalf("root: %v", err)
	}
	os.Remove(hp) // replace symlinks rather than write through them
	if err := os.WriteFile(hp, data, mode); err != nil {
		t.Fatalf("root: %v", err)
	}
	if err := os.Chmod(hp, mode); err != nil {
		t.Fatalf("root: %v", err)
	}
}

// CopyFile copies the host file src to p inside the root with mode.
func (r *Root) CopyFile(t testing.TB, src, p string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("root: %v", err)
	}
	r.WriteFile(t, p, data, mode)
}

// ReadFile reads a file inside the root.
func (r *Root) ReadFile(t testing.TB, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(r.Path(p))
	if err != nil {
		t.Fatalf("root: %v", err)
	}
	return data
}

// Snapshot packs the root (stop its machine first) into the tarball out, for
// RootFromTarball: an image built once and booted fresh by later steps.
func (r *Root) Snapshot(t testing.TB, out string) {
	t.Helper()
	done := Phase(t, "snapshot root")
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := run(ctx, "", nil, "tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-cf", out, "-C", r.Dir, "."); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
}

// MustRead reads a host file or fails the test.
func MustRead(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
