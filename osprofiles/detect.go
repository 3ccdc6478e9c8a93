package osprofiles

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// OSRelease holds the fields of an os-release(5) file that detection uses.
type OSRelease struct {
	ID        string
	IDLike    []string
	VersionID string
	VariantID string
	Pretty    string
}

// ParseOSRelease parses an os-release(5) file: KEY=value lines, values optionally
// quoted with shell-style quotes. Unknown keys and comments are ignored.
func ParseOSRelease(data []byte) (OSRelease, error) {
	var r OSRelease
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return OSRelease{}, fmt.Errorf("os-release line %d: expected KEY=value", n)
		}
		val = unquote(val)
		switch key {
		case "ID":
			r.ID = strings.ToLower(val)
		case "ID_LIKE":
			r.IDLike = strings.Fields(strings.ToLower(val))
		case "VERSION_ID":
			r.VersionID = val
		case "VARIANT_ID":
			r.VariantID = strings.ToLower(val)
		case "PRETTY_NAME":
			r.Pretty = val
		}
	}
	if err := sc.Err(); err != nil {
		return OSRelease{}, fmt.Errorf("reading os-release: %w", err)
	}
	if r.ID == "" {
		return OSRelease{}, fmt.Errorf("os-release has no ID= line")
	}
	return r, nil
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		if v[0] == '"' {
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
		}
		return v[1 : len(v)-1]
	}
	return v
}

// Detect picks the profile for an os-release file's contents. An unknown OS gives an
// error naming what was found and the supported profiles.
func Detect(osRelease []byte) (Profile, error) {
	r, err := ParseOSRelease(osRelease)
	if err != nil {
		return Profile{}, err
	}
	return Match(r)
}

// Match picks the profile for parsed os-release fields.
func Match(r OSRelease) (Profile, error) {
	for _, p := range profiles {
		if p.ID != r.ID {
			continue
		}
		if p.VariantID != "" && p.VariantID != r.VariantID {
			continue
		}
		if p.VersionID == "" || versionMatches(p.VersionID, r.VersionID) {
			return p, nil
		}
	}
	found := r.ID
	if r.VersionID != "" {
		found += " " + r.VersionID
	}
	if r.VariantID != "" {
		found += " (variant " + r.VariantID + ")"
	}
	return Profile{}, fmt.Errorf("unsupported OS %q (from os-release): supported are %s", found, strings.Join(Names(), ", "))
}

// versionMatches compares a profile's VERSION_ID with a host's: "9" matches "9.4",
// "7" matches "7" (CentOS 7 reports "7"); "22.04" matches only "22.04".
func versionMatches(want, got string) bool {
	return got == want || strings.HasPrefix(got, want+".")
}
