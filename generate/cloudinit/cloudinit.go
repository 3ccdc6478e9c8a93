// Package cloudinit renders a plan.Plan as a #cloud-config document: a Go struct
// marshalled with sigs.k8s.io/yaml. Files go through write_files (plain text when
// YAML carries it unchanged, base64 otherwise, or gzip+base64 when that entry is
// shorter), units are written as files and started by runcmd in argv form, keys
// go to the image's default user.
package cloudinit

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"path"
	"unicode/utf8"

	"sigs.k8s.io/yaml"

	"github.com/provision-dev/provision/generate/plan"
)

// Header is the first line cloud-init requires.
const Header = "#cloud-config\n"

// Config is the subset of cloud-config provision writes.
type Config struct {
	Hostname          string   `json:"hostname,omitempty"`
	SSHAuthorizedKeys []string `json:"ssh_authorized_keys,omitempty"`
	// NoSSHFingerprints stops cloud-init from printing the authorized keys (with their
	// comments) to the console and its world-readable output log.
	NoSSHFingerprints bool        `json:"no_ssh_fingerprints,omitempty"`
	Users             []User      `json:"users,omitempty"`
	WriteFiles        []WriteFile `json:"write_files,omitempty"`
	RunCmd            [][]string  `json:"runcmd,omitempty"`
}

// User is a cloud-config user entry (only for users other than the default one).
type User struct {
	Name              string   `json:"name"`
	SSHAuthorizedKeys []string `json:"ssh_authorized_keys,omitempty"`
}

// WriteFile is one write_files entry.
type WriteFile struct {
	Path        string `json:"path"`
	Permissions string `json:"permissions"`
	Owner       string `json:"owner,omitempty"`
	Encoding    string `json:"encoding,omitempty"`
	Content     string `json:"content"`
}

// Render returns the cloud-config for p; with gz, the whole document is
// gzip-compressed (cloud-init detects and decompresses it), deterministically.
func Render(p plan.Plan, gz bool) ([]byte, error) {
	c := Config{Hostname: p.Hostname}
	for _, u := range p.Users {
		if u.Default {
			c.SSHAuthorizedKeys = append(c.SSHAuthorizedKeys, u.SSHAuthorizedKeys...)
			continue
		}
		c.Users = append(c.Users, User{Name: u.Name, SSHAuthorizedKeys: u.SSHAuthorizedKeys})
	}
	if len(c.Users) > 0 {
		c.Users = append([]User{{Name: "default"}}, c.Users...)
	}
	c.NoSSHFingerprints = len(c.SSHAuthorizedKeys) > 0 || len(c.Users) > 0
	for _, f := range p.Files {
		if f.Source != "" {
			return nil, fmt.Errorf("cloud-init: %s: write_files has no remote source; give the contents inline", f.Path)
		}
		c.WriteFiles = append(c.WriteFiles, writeFile(f.Path, f.Mode, f.Contents, !gz))
	}
	var enable []string
	for _, u := range p.Units {
		c.WriteFiles = append(c.WriteFiles, writeFile(path.Join(plan.UnitDir, u.Name), 0o644, []byte(u.Contents), !gz))
		if u.Enabled {
			enable = append(enable, u.Name)
		}
	}
	if len(p.Units) > 0 {
		c.RunCmd = append(c.RunCmd, []string{"systemctl", "daemon-reload"})
	}
	if len(enable) > 0 {
		// --no-block: runcmd runs inside cloud-final.service; waiting there for a
		// unit ordered after network-online.target could stall boot.
		c.RunCmd = append(c.RunCmd, append([]string{"systemctl", "enable", "--now", "--no-block"}, enable...))
	}
	body, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("cloud-init: marshal: %T", err) // never quote the document: it holds the token
	}
	out := append([]byte(Header), body...)
	if !gz {
		return out, nil
	}
	return gzipBytes(out), nil
}

// gzipBytes is b gzip-compressed at the best level with a zero header (no
// name, no mtime), so the output is deterministic.
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // valid level: no error
	_, _ = w.Write(b)                                       // writes to a bytes.Buffer cannot fail
	_ = w.Close()
	return buf.Bytes()
}

// GzipEncoding is the write_files encoding of gzip-compressed, base64-encoded
// contents (cloud-init's cc_write_files decodes it; any cloud-init version).
const GzipEncoding = "gz+b64"

// writeFile is b as a write_files entry: plain text when YAML carries it
// unchanged, else base64; with compress, gzip+base64 instead when that entry
// is shorter (as Butane chooses per file). Without compress (the whole
// document is gzipped) the entry stays plain, which the outer gzip compresses
// better.
func writeFile(p string, mode int, b []byte, compress bool) WriteFile {
	f := WriteFile{Path: p, Permissions: fmt.Sprintf("0%o", mode)}
	if Plain(b) {
		f.Content = string(b)
	} else {
		f.Encoding = "b64"
		f.Content = base64.StdEncoding.EncodeToString(b)
	}
	if !compress {
		return f
	}
	z := WriteFile{Path: f.Path, Permissions: f.Permissions, Encoding: GzipEncoding, Content: base64.StdEncoding.EncodeToString(gzipBytes(b))}
	if entryLen(z) < entryLen(f) {
		return z
	}
	return f
}

// entryLen is the size of f in the document (a write_files list item).
func entryLen(f WriteFile) int {
	out, err := yaml.Marshal([]WriteFile{f})
	if err != nil {
		return int(^uint(0) >> 1) // cannot happen for strings; never chosen
	}
	return len(out)
}

// Plain reports whether b can be written as a plain YAML string that every YAML
// parser (cloud-init's PyYAML included) reads back byte for byte: UTF-8 text of
// printable characters, tabs and newlines, without \r, NEL, line/paragraph
// separators or a byte order mark (which YAML parsers normalise or reject).
func Plain(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		switch {
		case r == '\n' || r == '\t':
		case r < 0x20 || r == 0x7f:
			return false
		case r >= 0x80 && r <= 0x9f, r == 0x2028, r == 0x2029, r == 0xfeff, r >= 0xfff0 && r <= 0xffff:
			return false
		}
	}
	return true
}

// Files decodes a cloud-config this package rendered (gzipped or not) back
// into write_files' contents by path, as cloud-init's cc_write_files decodes
// them (plain, b64, gz+b64). For tests and tools that read userdata.
func Files(doc []byte) (map[string][]byte, error) {
	if bytes.HasPrefix(doc, []byte{0x1f, 0x8b}) {
		var err error
		if doc, err = gunzip(doc); err != nil {
			return nil, fmt.Errorf("cloud-init: %w", err)
		}
	}
	var c Config
	if err := yaml.UnmarshalStrict(doc, &c); err != nil {
		return nil, fmt.Errorf("cloud-init: parse: %w", err)
	}
	out := make(map[string][]byte, len(c.WriteFiles))
	for _, f := range c.WriteFiles {
		b := []byte(f.Content)
		switch f.Encoding {
		case "":
		case "b64", GzipEncoding:
			var err error
			if b, err = base64.StdEncoding.DecodeString(f.Content); err != nil {
				return nil, fmt.Errorf("cloud-init: %s: %s: %w", f.Path, f.Encoding, err)
			}
			if f.Encoding == GzipEncoding {
				if b, err = gunzip(b); err != nil {
					return nil, fmt.Errorf("cloud-init: %s: %w", f.Path, err)
				}
			}
		default:
			return nil, fmt.Errorf("cloud-init: %s: unknown encoding %q", f.Path, f.Encoding)
		}
		out[f.Path] = b
	}
	return out, nil
}

func gunzip(b []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	return out, nil
}
