package node

import (
	"io"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"
)

// systemd unit helpers shared by the runtime, health and join builders.

// systemdQuote quotes one ExecStart argument so systemd reads it back verbatim:
// double quotes when needed, with \ and " escaped, % and $ doubled.
func systemdQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@+", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%", "$", "$$", "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func execLine(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = systemdQuote(a)
	}
	return strings.Join(q, " ")
}

func serializeUnit(opts []*unit.UnitOption) []byte {
	b, _ := io.ReadAll(unit.Serialize(opts))
	return append([]byte("# Written by provision.\n"), b...)
}
