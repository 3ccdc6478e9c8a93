//go:build e2e

package e2e

import (
	"testing"

	"github.com/provision-dev/provision/internal/testenv"
)

// TestBinaries builds (or finds cached) every binary the scenarios need from
// the Go module proxy: Kubernetes of each version of the matrix, the upgrade
// scenario's older kubelet, etcd, crictl, containerd and runc for the
// tarball runtime, and distribution's registry for the private registry. hack/test.sh runs it as a phase of
// its own before the scenarios, so a cold machine's build time is reported
// apart from the tests' (and the scenarios' timeouts never include it).
func TestBinaries(t *testing.T) {
	for _, v := range versionMatrix {
		testenv.KubeBinaries(t, v)
	}
	testenv.KubeletBinary(t, upgradeFromVersion)
	testenv.CrictlBinary(t)
	testenv.ContainerdRelease(t)
	testenv.RegistryBinary(t)
}
