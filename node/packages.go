package node

import (
	"bytes"
	"fmt"
	"path"
	"strings"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/node/tasks"
	"github.com/provision-dev/provision/osprofiles"
)

// Repository files provision writes for the package mirrors.
const (
	AptSourcePath = "/etc/apt/sources.list.d/provision.sources"
	YumRepoPath   = "/etc/yum.repos.d/provision.repo"
	YumRepoID     = "provision"
)

// packagesBuilder: mirror repositories and the OS packages (none where /usr is immutable).
func packagesBuilder(n *Node) ([]tasks.Task, error) {
	p := n.Profile
	if p.PackageManager == osprofiles.NoPackages {
		return nil, nil
	}
	var out []tasks.Task
	exclusiveRepo := ""
	switch {
	case p.IsDebianFamily() && n.Config.Packages.Apt != nil:
		a := n.Config.Packages.Apt
		data, err := renderAptSource(a)
		if err != nil {
			return nil, fmt.Errorf("packages.apt: %w", err)
		}
		out = append(out, &tasks.File{TaskName: "packages/apt-source", Path: AptSourcePath, Content: data})
		if a.Exclusive {
			out = append(out, &tasks.DisableOthers{TaskName: "packages/apt-exclusive", Dir: "/etc/apt/sources.list.d",
				Suffixes: []string{".list", ".sources"}, Keep: path.Base(AptSourcePath), Extra: []string{"/etc/apt/sources.list"}})
		}
	case p.IsRHELFamily() && n.Config.Packages.Yum != nil:
		y := n.Config.Packages.Yum
		data, err := renderYumRepo(y)
		if err != nil {
			return nil, fmt.Errorf("packages.yum: %w", err)
		}
		out = append(out, &tasks.File{TaskName: "packages/yum-repo", Path: YumRepoPath, Content: data})
		if y.Exclusive {
			exclusiveRepo = YumRepoID
			out = append(out, &tasks.DisableOthers{TaskName: "packages/yum-exclusive", Dir: "/etc/yum.repos.d",
				Suffixes: []string{".repo"}, Keep: path.Base(YumRepoPath)})
		}
	}
	names := append([]string(nil), p.Packages...)
	if p.Runtime == osprofiles.RuntimePackage && p.ContainerdPackage != "" {
		names = append(names, p.ContainerdPackage)
	}
	if n.needsDocker() && p.DockerPackage != "" {
		names = append(names, p.DockerPackage)
	}
	out = append(out, &tasks.Packages{TaskName: "packages/install", Names: names, ExclusiveRepo: exclusiveRepo})
	return out, nil
}

// deb822 renders one deb822 stanza; values are checked for line breaks.
func deb822(fields [][2]string) ([]byte, error) {
	var b bytes.Buffer
	for _, f := range fields {
		if strings.ContainsAny(f[1], "\r\n") || f[1] == "" {
			return nil, fmt.Errorf("deb822 field %s: value must be one non-empty line", f[0])
		}
		fmt.Fprintf(&b, "%s: %s\n", f[0], f[1])
	}
	return b.Bytes(), nil
}

func renderAptSource(a *v1alpha1.AptRepository) ([]byte, error) {
	fields := [][2]string{{"Types", "deb"}, {"URIs", a.URL}, {"Suites", a.Suite}, {"Components", strings.Join(a.Components, " ")}}
	switch {
	case a.SignedBy != "":
		fields = append(fields, [2]string{"Signed-By", a.SignedBy})
	case a.Trusted:
		fields = append(fields, [2]string{"Trusted", "yes"})
	}
	return deb822(fields)
}

// ini renders one INI section (yum .repo); values are checked for line breaks.
func ini(section string, kvs [][2]string) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "[%s]\n", section)
	for _, kv := range kvs {
		if strings.ContainsAny(kv[1], "\r\n") {
			return nil, fmt.Errorf("repo option %s: value must be one line", kv[0])
		}
		fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
	}
	return b.Bytes(), nil
}

func renderYumRepo(y *v1alpha1.YumRepository) ([]byte, error) {
	kvs := [][2]string{{"name", "provision package mirror"}, {"baseurl", y.BaseURL}, {"enabled", "1"}}
	if y.GPGKey != "" {
		kvs = append(kvs, [2]string{"gpgcheck", "1"}, [2]string{"gpgkey", y.GPGKey})
	} else {
		kvs = append(kvs, [2]string{"gpgcheck", "0"})
	}
	return ini(YumRepoID, kvs)
}
