package tasks

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/internal/fsroot"
	"github.com/provision-dev/provision/internal/logging"
	"github.com/provision-dev/provision/internal/runner"
	"github.com/provision-dev/provision/osprofiles"
)

// needTools fails (never skips) when a tool the test exercises is missing.
func needTools(t *testing.T, hint string, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found on PATH: install it (%s)", tool, hint)
		}
	}
}

func buildRPM(t *testing.T, top, name string) {
	t.Helper()
	spec := filepath.Join(top, name+".spec")
	os.WriteFile(spec, []byte(fmt.Sprintf(`Name: %[1]s
Version: 1.0
Release: 1
Summary: provision test package
License: MIT
BuildArch: noarch
%%description
A package of the provision RPM-path test.
%%install
mkdir -p %%{buildroot}/usr/share/%[1]s
echo %[1]s > %%{buildroot}/usr/share/%[1]s/marker
%%files
/usr/share/%[1]s/marker
`, name)), 0o644)
	out, err := exec.Command("rpmbuild", "--define", "_topdir "+top, "--quiet", "-bb", spec).CombinedOutput()
	if err != nil {
		t.Fatalf("rpmbuild: %v\n%s", err, out)
	}
}

// TestRPMPathRealDNF builds two RPMs, indexes them with createrepo_c, serves
// them on loopback and runs the real dnf package task into an installroot.
func TestRPMPathRealDNF(t *testing.T) {
	needTools(t, "apt-get install rpm dnf createrepo-c", "rpmbuild", "rpm", "dnf", "createrepo_c")
	top := t.TempDir()
	names := []string{"provision-test-conntrack", "provision-test-socat"}
	for _, n := range names {
		buildRPM(t, top, n)
	}
	repo := filepath.Join(top, "RPMS")
	if out, err := exec.Command("createrepo_c", "--quiet", repo).CombinedOutput(); err != nil {
		t.Fatalf("createrepo_c: %v\n%s", err, out)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(repo)))
	defer srv.Close()

	profile, _ := osprofiles.Get("rocky-9")
	root, _ := fsroot.New(t.TempDir())
	e := &Env{Root: root, Runner: runner.Exec{}, Profile: profile, Log: logging.Discard()}
	repoFile := &File{TaskName: "packages/yum-repo", Path: "/etc/yum.repos.d/provision.repo",
		Content: []byte("[provision]\nname=provision test\nbaseurl=" + srv.URL + "/\nenabled=1\ngpgcheck=0\n")}
	pkgs := &Packages{TaskName: "packages/install", Names: names, ExclusiveRepo: "provision"}
	ctx := context.Background()

	sts, err := Execute(ctx, e, []Task{repoFile, pkgs}, false)
	if err != nil {
		t.Fatal(err)
	}
	if sts[1].Result != Changed || !strings.Contains(sts[1].Detail, "dnf install provision-test-conntrack provision-test-socat") {
		t.Fatalf("first run: %+v", sts[1])
	}
	for _, n := range names {
		if _, err := os.Stat(root.Path("/usr/share/" + n + "/marker")); err != nil {
			t.Errorf("%s not installed into the root: %v", n, err)
		}
	}
	missing, err := RPMMissing(ctx, e, append(names, "not-there"))
	if err != nil || len(missing) != 1 || missing[0] != "not-there" {
		t.Errorf("RPMMissing = %v, %v", missing, err)
	}
	// Second run: rpm says everything is there; dnf is not run.
	sts, err = Execute(ctx, e, []Task{repoFile, pkgs}, false)
	if err != nil {
		t.Fatal(err)
	}
	if CountChanged(sts) != 0 {
		t.Errorf("second run changed: %+v", sts)
	}
}
