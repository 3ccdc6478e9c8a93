// Package setup holds the first-boot bootstrap that every userdata format
// installs: a constant shell script (setup.sh) and the systemd unit that runs it
// once after network-online.target. The script takes its inputs only as
// arguments from the unit's ExecStart, validated and escaped for systemd, so no
// value is ever pasted into shell text.
//
// setup.sh installs provision from URL as DEST once its pinned SHA256 matches
// (a matching DEST is kept), then runs `provision node [$PROVISION_PHASE]`. Its
// curl is bounded like every provision download (internal/download): no URL
// globbing (-g), https only unless allow-http, never a redirect from https to
// http (--proto-redir), at most 1 GiB (--max-filesize) and 10 minutes per try
// (-m); the unit's TimeoutStartSec bounds the whole setup. (No comment in the
// script itself: every byte is paid in every userdata.)
package setup

import (
	_ "embed"
	"fmt"
	"io"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"
)

//go:embed setup.sh
var script []byte

const (
	// StartTimeout bounds the setup unit (download, base and join).
	StartTimeout = "45min"
	// UnitName is the systemd unit that runs setup.sh once.
	UnitName = "provision-setup.service"
	// ScriptPath is where setup.sh is written (/etc is writable on every profile).
	ScriptPath = "/etc/provision/setup.sh"
	// StateDir holds the markers.
	StateDir = "/var/lib/provision"
	// DoneMarker is written by `provision node` after a successful join (node.DoneMarker);
	// while it exists the unit does not run again.
	DoneMarker = StateDir + "/done"
	// FailedMarker holds the reason of the last failed setup run.
	FailedMarker = StateDir + "/setup-failed"
)

// Script returns setup.sh. The slice is a copy.
func Script() []byte { return append([]byte(nil), script...) }

// Inputs are setup.sh's arguments.
type Inputs struct {
	// Source is the URL of the provision binary.
	Source string
	// SHA256 is its pinned checksum, 64 lower-case hex digits.
	SHA256 string
	// Bin is the absolute path the binary is installed to.
	Bin string
	// AllowHTTP permits a plain http:// source (and redirects to it).
	AllowHTTP bool
	// JoinOnly runs `provision node join` instead of base and join (prebaked images).
	JoinOnly bool
	// EnvironmentFile, if set, is read by the unit (EnvironmentFile=): the
	// proxy settings for setup.sh's curl and `provision node`.
	EnvironmentFile string
}

// SafeValue reports whether s can be one ExecStart argument without quoting:
// printable ASCII without spaces, quotes, backslashes, '$', '`' or ';'. The only
// character systemd still interprets, '%', is escaped by Unit.
func SafeValue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("'\"\\$`;", c) >= 0 {
			return false
		}
	}
	return true
}

// Args returns setup.sh's arguments for in (what ExecStart passes).
func Args(in Inputs) []string {
	args := []string{in.Source, in.SHA256, in.Bin}
	if in.AllowHTTP {
		args = append(args, "allow-http")
	}
	return args
}

// Unit returns provision-setup.service, which runs setup.sh with in as its
// arguments, once, after network-online.target. It refuses values SafeValue
// rejects, so no input can change the unit's structure.
func Unit(in Inputs) (string, error) {
	exec := []string{ScriptPath}
	for i, a := range Args(in) {
		if !SafeValue(a) {
			return "", fmt.Errorf("setup: argument %d is empty or holds a character that cannot be passed safely", i+1)
		}
		exec = append(exec, strings.ReplaceAll(a, "%", "%%")) // systemd specifiers
	}
	opts := []*unit.UnitOption{
		unit.NewUnitOption("Unit", "Description", "provision setup"),
		unit.NewUnitOption("Unit", "Wants", "network-online.target"),
		unit.NewUnitOption("Unit", "After", "network-online.target"),
		unit.NewUnitOption("Unit", "ConditionPathExists", "!"+DoneMarker),
		unit.NewUnitOption("Service", "Type", "oneshot"),
		unit.NewUnitOption("Service", "RemainAfterExit", "yes"),
		// A dripping server or a hung install ends in a failed unit (and the
		// failure marker), not a boot that waits forever: downloads are bounded
		// (setup.sh: --max-time; provision: per-download deadlines) and the whole
		// setup, binary plus base and join, gets this long.
		unit.NewUnitOption("Service", "TimeoutStartSec", StartTimeout),
		unit.NewUnitOption("Service", "ExecStart", strings.Join(exec, " ")),
	}
	if in.EnvironmentFile != "" {
		if !SafeValue(in.EnvironmentFile) || in.EnvironmentFile[0] != '/' || strings.Contains(in.EnvironmentFile, "%") {
			return "", fmt.Errorf("setup: the environment file is not an absolute path without special characters")
		}
		opts = append(opts, unit.NewUnitOption("Service", "EnvironmentFile", in.EnvironmentFile))
	}
	if in.JoinOnly {
		opts = append(opts, unit.NewUnitOption("Service", "Environment", "PROVISION_PHASE=join"))
	}
	opts = append(opts,
		unit.NewUnitOption("Install", "WantedBy", "multi-user.target"),
	)
	b, _ := io.ReadAll(unit.Serialize(opts)) // reading a bytes.Buffer cannot fail
	return string(b), nil
}
