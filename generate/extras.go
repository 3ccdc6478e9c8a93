package generate

import (
	"path"
	"strings"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/generate/plan"
	"github.com/provision-dev/provision/generate/setup"
	"github.com/provision-dev/provision/osprofiles"
)

// provisionDir is the directory provision owns on the node (node.yaml, setup.sh).
const provisionDir = "/etc/provision"

// ownedPaths are the files generate writes itself, which an extra file may
// not replace.
func (r resolved) ownedPaths() []string {
	owned := []string{v1alpha1.CACertPath, v1alpha1.BootstrapKubeconfigPath, v1alpha1.CloudConfigPath,
		v1alpha1.KubeconfigPath, v1alpha1.BootstrapSentinelPath, path.Join(plan.UnitDir, setup.UnitName)}
	if r.Hostname != "" {
		owned = append(owned, plan.HostnameFile)
	}
	for h := range r.registryCAs {
		owned = append(owned, v1alpha1.RegistryCAPath(h))
	}
	return owned
}

// checkExtras refuses extra files and units that collide with what generate
// writes or that the format cannot express (a remote source in cloud-init).
func (r resolved) checkExtras() validation.Errors {
	var es validation.Errors
	owned := r.ownedPaths()
	units := map[string]int{}
	for i, u := range r.Units {
		units[path.Join(plan.UnitDir, u.Name)] = i
		if u.Name == setup.UnitName {
			es.Add(validation.Path("units").Index(i).Child("name"), "%s is provision's own setup unit; name the unit differently", setup.UnitName)
		}
	}
	for i, f := range r.Files {
		fp := validation.Path("files").Index(i)
		switch {
		case f.Path == provisionDir || strings.HasPrefix(f.Path, provisionDir+"/"):
			es.Add(fp.Child("path"), "%s is under %s, which provision owns (node.yaml, setup.sh, its state); choose another directory", f.Path, provisionDir)
		case contains(owned, f.Path):
			es.Add(fp.Child("path"), "%s is written by provision itself; choose another path (set it through provision's own settings)", f.Path)
		}
		if j, ok := units[f.Path]; ok {
			es.Add(fp.Child("path"), "%s is the file of units[%d]; give the unit in units only", f.Path, j)
		}
		if f.Source != "" && r.format == osprofiles.CloudInit {
			es.Add(fp.Child("source"), "is not supported by the cloud-init format (write_files has no remote source); give content inline, or use --format ignition or butane")
		}
	}
	return es
}

// extraFiles and extraUnits are the config's files and units as plan entries,
// after provision's own: units start after every file is written.
func (r resolved) extraFiles() []plan.File {
	var out []plan.File
	for _, f := range r.Files {
		out = append(out, plan.File{Path: f.Path, Mode: f.FileMode(), Contents: []byte(f.Content), Source: f.Source, SHA256: f.SHA256, Overwrite: true})
	}
	return out
}

func (r resolved) extraUnits() []plan.Unit {
	var out []plan.Unit
	for _, u := range r.Units {
		out = append(out, plan.Unit{Name: u.Name, Contents: u.Content, Enabled: u.Enabled})
	}
	return out
}
