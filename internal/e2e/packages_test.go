//go:build e2e

package e2e

import (
	"testing"

	"github.com/provision-dev/provision/internal/testenv"
	"github.com/provision-dev/provision/osprofiles"
)

// debian12 is the profile the node runs with in these tests.
func debian12(t testing.TB) osprofiles.Profile {
	t.Helper()
	p, err := osprofiles.Get("debian-12")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// nodePackages are the packages the debian-12 profile installs.
func nodePackages(t testing.TB) []string {
	p := debian12(t)
	return append(append([]string(nil), p.Packages...), p.ContainerdPackage)
}

// localRepo is the one cached apt repository of the e2e tests: what the node
// installs, plus containernetworking-plugins (real CNI plugins, repacked as the
// upstream release tarball).
func localRepo(t testing.TB) *testenv.AptRepo {
	t.Helper()
	return testenv.NewAptRepo(t, testenv.Bookworm, append(nodePackages(t), "containernetworking-plugins")...)
}
