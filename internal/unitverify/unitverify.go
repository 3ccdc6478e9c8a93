// Package unitverify checks systemd unit files with the real
// `systemd-analyze verify`, offline, in a root directory holding the
// distribution's targets and slices (for tests of the units provision writes).
package unitverify

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// SystemDir is where the host's systemd keeps its units.
const SystemDir = "/lib/systemd/system"

// Available returns an error naming the package to install when
// systemd-analyze or the host's units are missing.
func Available() error {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		return fmt.Errorf("systemd-analyze not found: install it (apt-get install -y systemd)")
	}
	if entries, err := os.ReadDir(SystemDir); err != nil || len(entries) == 0 {
		return fmt.Errorf("%s holds no units (%v): install systemd", SystemDir, err)
	}
	return nil
}

// InstallTargets copies the host's targets and slices into root's
// /usr/lib/systemd/system, so units ordered against them verify.
func InstallTargets(root string) error {
	entries, err := os.ReadDir(SystemDir)
	if err != nil {
		return err
	}
	dst := filepath.Join(root, "usr/lib/systemd/system")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".target") && !strings.HasSuffix(e.Name(), ".slice") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(SystemDir, e.Name()))
		if err != nil {
			continue // a dangling alias
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Verify runs `systemd-analyze verify --root=root units...`. An error or any
// output (systemd prints warnings and still exits 0) fails; the returned text
// then holds the output and the units' contents.
func Verify(root string, units ...string) (string, error) {
	args := append([]string{"verify", "--root=" + root}, units...)
	out, err := exec.Command("systemd-analyze", args...).CombinedOutput()
	if err == nil && len(bytes.TrimSpace(out)) > 0 {
		err = fmt.Errorf("warnings")
	}
	if err == nil {
		return "", nil
	}
	var shown strings.Builder
	shown.Write(out)
	for _, u := range units {
		b, _ := os.ReadFile(filepath.Join(root, "etc/systemd/system", u))
		shown.WriteString("--- " + u + "\n" + string(b))
	}
	return shown.String(), fmt.Errorf("systemd-analyze verify %v: %w", units, err)
}
