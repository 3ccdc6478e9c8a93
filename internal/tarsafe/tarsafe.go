// Package tarsafe holds the rules every tar extraction of provision applies
// (CNI plugins, crictl, containerd, bundles): no sparse members (their header
// size is not what would land on disk), a bound on a member's size, and modes
// without setuid, setgid, sticky and world-write bits.
package tarsafe

import (
	"archive/tar"
	"io/fs"
	"strings"
)

// MaxMember bounds one extracted member (the largest, containerd's binaries,
// are about 50 MiB).
const MaxMember = 1 << 30

// Mode is the mode an extracted file gets from a tar header's mode: the
// permission bits without setuid, setgid, sticky and world-write.
func Mode(tarMode int64) fs.FileMode {
	return fs.FileMode(tarMode).Perm() &^ 0o002
}

// IsSparse reports whether a tar member is a sparse file (GNU's old format or
// the PAX GNU.sparse.* formats).
func IsSparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}
