package generate

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/generate/butane"
	"github.com/provision-dev/provision/generate/ignition"
	"github.com/provision-dev/provision/generate/setup"
	"github.com/provision-dev/provision/internal/kubeversions"
	"github.com/provision-dev/provision/osprofiles"
)

// MaxFileSize bounds each embedded file (CA, cloud-config, token file).
const MaxFileSize = v1alpha1.MaxFileSize

// resolved is a validated GenerateConfig with every default applied and every file read.
type resolved struct {
	v1alpha1.GenerateConfig
	profile     osprofiles.Profile
	format      osprofiles.Format
	token       string
	caCert      []byte
	cloudConfig []byte
	// registryCAs are containerd.registries' CA bundles by host (caCert or
	// caCertFile's contents).
	registryCAs map[string][]byte
}

// Validate checks every input and returns all problems at once, as
// validation.Errors naming each field and its flag. It reads the files c names.
func Validate(c v1alpha1.GenerateConfig) error {
	_, err := resolve(c)
	return err
}

// resolve validates c: the config's own field checks (api/v1alpha1), then what
// needs the OS profile, the renderers or the files c names.
func resolve(c v1alpha1.GenerateConfig) (resolved, error) {
	es := c.Validate("")
	r := resolved{GenerateConfig: c}
	r.SetDefaults()
	es.Append(r.checkFormat())
	es.Append(r.checkRuntime())
	es.Append(r.checkCgroups())
	es.Append(r.readFiles())
	es.Append(r.checkExtras())
	if c.ProvisionSource != "" && !hasError(es, "provisionSource") && !setup.SafeValue(c.ProvisionSource) {
		es.Add("provisionSource", "must be printable ASCII without spaces, quotes, backslashes, '$', '`' or ';' (percent-encode them)")
	}
	if len(es) > 0 {
		return resolved{}, named(es)
	}
	return r, nil
}

func hasError(es validation.Errors, field string) bool {
	for _, e := range es {
		if e.Field == field {
			return true
		}
	}
	return false
}

// checkFormat picks the profile and format and checks the format and Ignition
// version against them (unknown names are the config's own errors).
func (r *resolved) checkFormat() validation.Errors {
	var es validation.Errors
	p, err := osprofiles.Get(r.OS)
	profileOK := err == nil
	r.profile, r.format = p, r.Format
	if r.format == "" && profileOK {
		r.format = p.DefaultFormat
	}
	formatOK := knownFormat(r.format)
	if formatOK && profileOK && !p.SupportsFormat(r.format) {
		es.Add("format", "%s does not boot from %s userdata; use %s", p.Name, r.format, p.DefaultFormat)
		formatOK = false
	}
	_, known := ignition.SpecVersion(r.IgnitionVersion)
	switch {
	case r.IgnitionVersion != "" && !known:
		es.Add("ignitionVersion", "must be one of %s", strings.Join(ignition.Versions(), ", "))
	case r.IgnitionVersion != "" && r.format == osprofiles.CloudInit:
		es.Add("ignitionVersion", "applies only to --format ignition or butane")
	case formatOK && profileOK && known && r.format == osprofiles.Butane:
		if _, err := butane.Version(r.butaneVariant(), r.IgnitionVersion); err != nil {
			es.Add("ignitionVersion", "%v", err)
		}
	}
	return es
}

// checkRuntime checks containerd.install and containerd.version against the OS
// profile and makes the profile's runtime the node's choice (which artifacts the
// node config lists).
func (r *resolved) checkRuntime() validation.Errors {
	if _, err := osprofiles.Get(r.OS); err != nil {
		return nil // the config's own error
	}
	es := r.Containerd.ValidateProfile("containerd", r.profile)
	if len(es) == 0 {
		r.profile = r.profile.WithRuntime(r.Containerd.Install)
	}
	return es
}

// checkCgroups refuses a profile whose hosts boot cgroup v1 (the legacy
// profiles) with a kubelet that refuses cgroup v1 (kubeversions: failCgroupV1,
// true by default from 1.35), unless the config sets failCgroupV1: false. An
// unknown OS or version is the config's own error.
func (r *resolved) checkCgroups() validation.Errors {
	var es validation.Errors
	p, perr := osprofiles.Get(r.OS)
	rel, verr := kubeversions.For(r.KubeletVersion)
	if perr != nil || verr != nil || !p.BootsCgroupV1() || !rel.FailsOnCgroupV1(r.FailCgroupV1) {
		return nil
	}
	if r.FailCgroupV1 != nil {
		es.Add("os", "%s is a legacy profile whose hosts boot with cgroup v1, where kubelet %s would not start with failCgroupV1: true: set failCgroupV1: false or drop it",
			p.Name, r.KubeletVersion)
		return es
	}
	es.Add("os", "%s is a legacy profile whose hosts boot with cgroup v1, where kubelet %s does not start (its failCgroupV1 defaults to true in %s): "+
		"use kubelet %s or older, or set failCgroupV1: false in the config file to run it on cgroup v1 (maintenance mode upstream), "+
		"or use a profile whose hosts boot cgroup v2",
		p.Name, r.KubeletVersion, rel, kubeversions.NewestOnCgroupV1())
	return es
}

// readFiles reads the token, CA and cloud config files (when given instead of
// the inline value) and checks their contents, never quoting them.
func (r *resolved) readFiles() validation.Errors {
	var es validation.Errors
	r.token, r.caCert, r.cloudConfig = r.Token, []byte(r.CACert), []byte(r.CloudConfig)
	if r.TokenFile != "" && r.Token == "" {
		b, msg := readFile(r.TokenFile)
		es.Check("tokenFile", msg)
		if msg == "" {
			r.token = strings.TrimSpace(string(b))
			es.Check("token", validation.BootstrapToken(r.token))
		}
	}
	if r.CACertFile != "" && r.CACert == "" {
		b, msg := readFile(r.CACertFile)
		es.Check("caCertFile", msg)
		if msg == "" {
			r.caCert = b
			es.Check("caCert", validation.CACert(b))
		}
	}
	es.Append(r.readRegistryCAs())
	if r.CloudConfigFile != "" && r.CloudConfig == "" {
		b, msg := readFile(r.CloudConfigFile)
		if msg == "" && len(b) == 0 {
			msg = "is empty"
		}
		es.Check("cloudConfigFile", msg)
		r.cloudConfig = b
	}
	return es
}

// readRegistryCAs reads each registry's CA (inline, or its caCertFile) and
// checks a file's contents as the inline one is checked (api/v1alpha1).
func (r *resolved) readRegistryCAs() validation.Errors {
	var es validation.Errors
	r.registryCAs = map[string][]byte{}
	for _, h := range slices.Sorted(maps.Keys(r.Containerd.Registries)) {
		reg, p := r.Containerd.Registries[h], validation.Path("containerd").Child("registries").Key(h)
		switch {
		case reg.CACert != "":
			r.registryCAs[h] = []byte(reg.CACert)
		case reg.CACertFile != "":
			b, msg := readFile(reg.CACertFile)
			es.Check(p.Child("caCertFile"), msg)
			if msg == "" {
				r.registryCAs[h] = b
				es.Check(p.Child("caCert"), validation.CACert(b))
			}
		}
	}
	return es
}

func (r resolved) butaneVariant() string {
	if r.profile.ButaneVariant != "" {
		return r.profile.ButaneVariant
	}
	return "fcos"
}

func knownFormat(f osprofiles.Format) bool {
	for _, k := range osprofiles.Formats() {
		if f == k {
			return true
		}
	}
	return false
}

func readFile(path string) ([]byte, string) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Sprintf("cannot read %s: %v", path, errorsCause(err))
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Sprintf("%s is not a regular file", path)
	}
	if st.Size() > MaxFileSize {
		return nil, fmt.Sprintf("%s is larger than %d bytes", path, MaxFileSize)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Sprintf("cannot read %s: %v", path, errorsCause(err))
	}
	return b, ""
}

// errorsCause drops the path os errors repeat.
func errorsCause(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
