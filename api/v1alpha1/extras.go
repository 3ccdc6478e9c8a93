package v1alpha1

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/provision-dev/provision/api/validation"
)

// unitNameRE is a systemd unit name: a prefix of [A-Za-z0-9:_.\-@] and one of
// the unit types a userdata may install.
var unitNameRE = regexp.MustCompile(`^[A-Za-z0-9:_.\\@-]+\.(service|socket|timer|path|mount|automount|swap|target|slice)$`)

// unitNameForm is the allowed form, for messages.
const unitNameForm = "a systemd unit name such as node-exporter.service (letters, digits, ':', '_', '.', '\\', '@', '-'; a type suffix .service, .socket, .timer, .path, .mount, .automount, .swap, .target or .slice; at most 255 characters)"

// validateFiles checks the extra files. Contents are never quoted: they may be secret.
func validateFiles(p validation.Path, files []File) validation.Errors {
	var es validation.Errors
	seen := map[string]int{}
	for i, f := range files {
		fp := p.Child("files").Index(i)
		es.Check(fp.Child("path"), validation.Required(f.Path, "is required, an absolute path such as /etc/motd", validation.AbsPath))
		if f.Path == "/" {
			es.Add(fp.Child("path"), "must name a file, not /")
		}
		if j, dup := seen[f.Path]; dup && f.Path != "" {
			es.Add(fp.Child("path"), "is also the path of %s", p.Child("files").Index(j))
		} else {
			seen[f.Path] = i
		}
		switch m := f.Mode; {
		case m < 0 || m > 0o7777:
			es.Add(fp.Child("mode"), "must be permission bits, an octal number from 0000 to 0777 such as 0644 or 0600")
		case m&0o4000 != 0 || m&0o2000 != 0 || m&0o1000 != 0:
			es.Add(fp.Child("mode"), "must not set setuid, setgid or sticky bits (0%o); use permission bits 0000 to 0777 such as 0644 or 0600", m)
		case m&0o002 != 0:
			es.Add(fp.Child("mode"), "must not be world-writable (0%o); use e.g. 0644 or 0600", m)
		}
		switch {
		case f.Source != "" && f.Content != "":
			es.Add(fp.Child("content"), "give content or source, not both")
		case f.Source != "":
			es.Check(fp.Child("source"), validation.URL(f.Source, validation.URLRule{}))
			es.Check(fp.Child("sha256"), validation.Required(f.SHA256, "is required with source, 64 lower-case hex digits (sha256sum of the file)", validation.SHA256))
		case f.SHA256 != "":
			es.Add(fp.Child("sha256"), "is only for a file with a source")
		}
		if len(f.Content) > MaxFileSize {
			es.Add(fp.Child("content"), "is larger than %d bytes", MaxFileSize)
		}
	}
	return es
}

// validateUnits checks the extra units: names, and contents with go-systemd's
// unit parser (never quoted: a unit may carry a secret in an Environment= line).
func validateUnits(p validation.Path, units []Unit) validation.Errors {
	var es validation.Errors
	seen := map[string]int{}
	for i, u := range units {
		up := p.Child("units").Index(i)
		switch {
		case u.Name == "":
			es.Add(up.Child("name"), "is required, %s", unitNameForm)
		case len(u.Name) > 255 || !unitNameRE.MatchString(u.Name):
			es.Add(up.Child("name"), "must be %s, got %s", unitNameForm, validation.Quote(u.Name))
		case strings.HasSuffix(u.Name, "@"+u.Name[strings.LastIndexByte(u.Name, '.'):]) && u.Enabled:
			es.Add(up.Child("enabled"), "a template unit (%s) cannot be enabled without an instance; name the instance, e.g. %s", u.Name,
				strings.Replace(u.Name, "@.", "@1.", 1))
		}
		if j, dup := seen[u.Name]; dup && u.Name != "" {
			es.Add(up.Child("name"), "is also the name of %s", p.Child("units").Index(j))
		} else {
			seen[u.Name] = i
		}
		if len(u.Content) > MaxFileSize {
			es.Add(up.Child("content"), "is larger than %d bytes", MaxFileSize)
			continue
		}
		es.Check(up.Child("content"), unitContent(u))
	}
	return es
}

// unitContent parses a unit's text; its message never quotes the text.
func unitContent(u Unit) string {
	if strings.TrimSpace(u.Content) == "" {
		return "is required, the unit file's text ([Unit], [Service], [Install] sections of Key=Value lines)"
	}
	opts, err := unit.DeserializeOptions(strings.NewReader(u.Content))
	if err != nil {
		return "must be a systemd unit file: sections such as [Unit] and [Service] of Key=Value lines (go-systemd's parser refused it)"
	}
	if len(opts) == 0 {
		return "must be a systemd unit file with at least one section and Key=Value line"
	}
	if u.Enabled {
		for _, o := range opts {
			if o.Section == "Install" && (o.Name == "WantedBy" || o.Name == "RequiredBy" || o.Name == "UpheldBy" || o.Name == "Alias" || o.Name == "Also") {
				return ""
			}
		}
		return fmt.Sprintf("an enabled unit needs an [Install] section with WantedBy= (e.g. WantedBy=multi-user.target) or RequiredBy=; enabling %s does nothing without it", u.Name)
	}
	return ""
}
