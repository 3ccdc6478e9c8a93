// Package plan is the neutral description of what userdata does on a machine:
// files, systemd units, users and the hostname. generate builds one Plan from a
// Spec; each renderer (cloudinit, ignition, butane) turns the same Plan into its
// format, so the formats cannot drift apart.
package plan

// Plan is everything the first-boot agent must do. Order is significant and
// preserved by every renderer, so the output is deterministic.
type Plan struct {
	// Hostname is the machine's hostname; empty leaves it to the cloud.
	Hostname string
	// Files are written byte for byte with the given mode.
	Files []File
	// Units are systemd units written to /etc/systemd/system.
	Units []Unit
	// Users receive SSH keys. A Default user is the image's login user
	// (cloud-init's default user; created by Ignition if missing).
	Users []User
}

// File is one regular file.
type File struct {
	Path string
	// Mode is the permission bits, e.g. 0o644.
	Mode int
	// Contents are written exactly; they may be any bytes.
	Contents []byte
	// Source, when set, is an https:// URL the machine fetches the contents
	// from instead (Ignition and Butane only), verified against SHA256.
	Source string
	// SHA256 pins Source: 64 lower-case hex digits.
	SHA256 string
	// Overwrite replaces a file the image already ships (Ignition fails otherwise).
	Overwrite bool
}

// Unit is one systemd unit.
type Unit struct {
	// Name is the unit's file name, e.g. "provision-setup.service".
	Name     string
	Contents string
	// Enabled units are enabled through their [Install] section.
	Enabled bool
}

// User is a login user and its SSH keys.
type User struct {
	Name              string
	SSHAuthorizedKeys []string
	// Default marks the image's default user (cloud-init's top-level ssh_authorized_keys).
	Default bool
}

// UnitDir is where the renderers that write units as files put them.
const UnitDir = "/etc/systemd/system"

// HostnameFile is where the renderers without a hostname directive (Ignition,
// Butane) write the hostname.
const HostnameFile = "/etc/hostname"

// WithHostnameFile returns p's files, with /etc/hostname (0644, overwritten)
// appended when p sets a hostname. cloud-init uses its own hostname key instead.
func WithHostnameFile(p Plan) []File {
	files := append([]File(nil), p.Files...)
	if p.Hostname != "" {
		files = append(files, File{Path: HostnameFile, Mode: 0o644, Contents: []byte(p.Hostname + "\n"), Overwrite: true})
	}
	return files
}
