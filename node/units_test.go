package node

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/provision-dev/provision/internal/unitverify"
	"github.com/provision-dev/provision/osprofiles"
)

// TestUnitsVerify runs base and join for every profile (and the seed's
// Docker combination) into a root, then checks every unit file and drop-in
// provision wrote with the real `systemd-analyze verify`, in that root, with
// the distribution's targets and the commands the units run present.
func TestUnitsVerify(t *testing.T) {
	if err := unitverify.Available(); err != nil {
		t.Fatal(err)
	}
	type variant struct{ profile, kubelet string }
	var variants []variant
	for _, p := range osprofiles.All() {
		variants = append(variants, variant{p.Name, ""})
	}
	variants = append(variants, variant{"ubuntu-18.04", "v1.23.17"}, variant{"centos-7", "v1.23.17"})
	ca := filepath.Join(t.TempDir(), "ca.crt")
	os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o644)
	for _, v := range variants {
		t.Run(v.profile+v.kubelet, func(t *testing.T) {
			srv := newArtifactServer(t)
			cfg := testConfig(srv, v.profile)
			if v.kubelet != "" {
				cfg.Kubernetes.Version = v.kubelet
			}
			root := testRoot(t, v.profile, &cfg)
			opts := testOptions(root, newFakeHost(""), false, nil)
			opts.Flags.Token = testToken
			opts.Flags.CACert = ca
			for _, phase := range []Phase{Base, Join} {
				if err := prepare(t, opts).Run(context.Background(), phase); err != nil {
					t.Fatalf("%s: %v", phase, err)
				}
			}
			units := provisionUnits(t, root)
			if len(units) < 5 { // kubelet, its drop-in, two health services and timers
				t.Fatalf("only %d units written: %v", len(units), units)
			}
			installTargets(t, root)
			if out, err := unitverify.Verify(root, units...); err != nil {
				t.Errorf("%v\n%s", err, out)
			} else {
				t.Logf("verified %v", units)
			}
		})
	}
	// The check is not vacuous: a unit running a missing command, or with a
	// directive systemd does not know, fails it.
	t.Run("broken units are caught", func(t *testing.T) {
		root := t.TempDir()
		installTargets(t, root)
		for name, body := range map[string]string{
			"missing-command.service": "[Service]\nExecStart=/usr/local/bin/not-there\n",
			"typo.service":            "[Service]\nExecStrat=/bin/true\nExecStart=/bin/true\n",
		} {
			os.MkdirAll(filepath.Join(root, "etc/systemd/system"), 0o755)
			os.WriteFile(filepath.Join(root, "etc/systemd/system", name), []byte(body), 0o644)
			if out, err := unitverify.Verify(root, name); err == nil {
				t.Errorf("systemd-analyze verify accepted %s:\n%s", name, out)
			}
		}
	})
}

// provisionUnits returns the units (and drop-ins' units) under the root's
// /etc/systemd/system, and makes each command they run exist.
func provisionUnits(t *testing.T, root string) []string {
	t.Helper()
	dir := filepath.Join(root, "etc/systemd/system")
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		opts, err := unit.DeserializeOptions(bytes.NewReader(data))
		if err != nil {
			t.Errorf("%s does not parse: %v", p, err)
			return nil
		}
		for _, o := range opts {
			if strings.HasPrefix(o.Name, "Exec") && o.Value != "" {
				bin := strings.TrimLeft(strings.Fields(o.Value)[0], "-@!+:")
				standIn(t, root, bin)
			}
		}
		rel, _ := filepath.Rel(dir, p)
		name := rel
		if parent := filepath.Dir(rel); parent != "." { // a drop-in: verify the unit it extends
			name = strings.TrimSuffix(parent, ".d")
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// standIn makes bin (an absolute path in the root) an executable if it is missing.
func standIn(t *testing.T, root, bin string) {
	t.Helper()
	if !filepath.IsAbs(bin) {
		t.Errorf("unit command %q is not an absolute path", bin)
		return
	}
	p := filepath.Join(root, bin)
	if _, err := os.Stat(p); err == nil {
		os.Chmod(p, 0o755)
		return
	}
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// installTargets adds the host's targets and slices to the root, and stand-ins
// for the units the node's units order against (containerd and docker come
// from packages).
func installTargets(t *testing.T, root string) {
	t.Helper()
	if err := unitverify.InstallTargets(root); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(root, "usr/lib/systemd/system")
	for _, name := range []string{"containerd.service", "docker.service"} {
		if _, err := os.Stat(filepath.Join(root, "etc/systemd/system", name)); err != nil {
			os.WriteFile(filepath.Join(dst, name), []byte("[Service]\nExecStart=/bin/true\n"), 0o644)
			standIn(t, root, "/bin/true")
		}
	}
}
