package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// tools are the host commands the harness runs, with the Debian package that
// ships each (hack/e2e-prereqs.sh installs them).
var tools = map[string]string{
	"debootstrap":    "debootstrap",
	"systemd-nspawn": "systemd-container",
	"ip":             "iproute2",
	"nsenter":        "util-linux",
	"tar":            "tar",
	"mount":          "mount",
	"apt-ftparchive": "apt-utils",
	"dpkg-deb":       "dpkg",
	"chroot":         "coreutils",
}

// Require fails the test, naming everything missing, unless it runs as root on
// a machine with the harness's tools. It never skips: an e2e test that cannot
// run must not pass.
func Require(t testing.TB) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (the harness mounts tmpfs, creates network namespaces and boots systemd-nspawn; run as root)")
	}
	for tool, pkg := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool+" (Debian package "+pkg+")")
		}
	}
	if len(missing) > 0 {
		t.Fatalf("e2e environment unavailable, missing:\n  %s\ninstall the packages with hack/e2e-prereqs.sh", strings.Join(missing, "\n  "))
	}
}
