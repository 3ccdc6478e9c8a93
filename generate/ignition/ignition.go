// Package ignition renders a plan.Plan as an Ignition v3 config, built once as
// the Ignition library's own spec 3.3 types.Config, translated up to the chosen
// spec version by Ignition's translate packages, and marshalled the way Butane
// marshals its output, so a Butane document translated by Butane gives exactly
// the same bytes.
package ignition

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"

	"github.com/clarketm/json"
	v33 "github.com/coreos/ignition/v2/config/v3_3"
	t33 "github.com/coreos/ignition/v2/config/v3_3/types"
	v34 "github.com/coreos/ignition/v2/config/v3_4"
	tr34 "github.com/coreos/ignition/v2/config/v3_4/translate"
	v35 "github.com/coreos/ignition/v2/config/v3_5"
	tr35 "github.com/coreos/ignition/v2/config/v3_5/translate"
	"github.com/coreos/vcontext/report"

	"github.com/provision-dev/provision/generate/plan"
)

// DefaultVersion is the spec version rendered when none is asked for.
const DefaultVersion = "3.4"

// Versions lists the supported spec versions (major.minor).
func Versions() []string { return []string{"3.3", "3.4", "3.5"} }

// SpecVersion returns the full version ("3.4.0") of a supported major.minor
// (or full) version, and false if it is not supported.
func SpecVersion(v string) (string, bool) {
	switch v {
	case "", "3.4", "3.4.0":
		return "3.4.0", true
	case "3.3", "3.3.0":
		return "3.3.0", true
	case "3.5", "3.5.0":
		return "3.5.0", true
	}
	return "", false
}

// Options select the spec version.
type Options struct {
	// Version is "3.3", "3.4" or "3.5"; empty means DefaultVersion.
	Version string
}

// DataURL encodes contents the way Butane encodes inline contents by default:
// the shortest of a percent-escaped data URL, a base64 data URL, and a base64
// data URL of the gzipped bytes (Ignition's compression: gzip, spec 3.1+).
// compression is "" or "gzip".
func DataURL(contents []byte) (url, compression string) {
	var opaque string
	if b64 := base64.StdEncoding.EncodedLen(len(contents)) + len(";base64,"); b64 < 1+escapedLen(contents) {
		opaque = ";base64," + base64.StdEncoding.EncodeToString(contents)
	} else {
		opaque = "," + escape(contents)
	}
	var buf bytes.Buffer
	w := gzipWriters.Get().(*gzip.Writer)
	w.Reset(&buf)
	_, _ = w.Write(contents) // writes to a bytes.Buffer cannot fail
	_ = w.Close()
	gzipWriters.Put(w)
	if z := ";base64," + base64.StdEncoding.EncodeToString(buf.Bytes()); len(z)+len("gzip") < len(opaque) {
		return "data:" + z, "gzip"
	}
	return "data:" + opaque, ""
}

// gzipWriters reuses BestCompression writers (each allocates about 1 MB); Reset
// gives the same bytes as a new writer: a zero header, no name, no mtime.
var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestCompression) // valid level: no error
	return w
}}

// unreserved are the bytes RFC 2396 (and so dataurl.Escape, which Butane uses)
// leaves unescaped.
var unreserved = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.!~*'()", byte(c)) >= 0
	}
	return t
}()

func escapedLen(b []byte) int {
	n := 0
	for _, c := range b {
		if unreserved[c] {
			n++
		} else {
			n += 3
		}
	}
	return n
}

// escape is dataurl.Escape without a fmt call per byte (same output, tested).
func escape(b []byte) string {
	const hex = "0123456789ABCDEF"
	out := make([]byte, 0, escapedLen(b))
	for _, c := range b {
		if unreserved[c] {
			out = append(out, c)
		} else {
			out = append(out, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(out)
}

// Render returns the Ignition config (compact JSON) for p.
func Render(p plan.Plan, o Options) ([]byte, error) {
	full, ok := SpecVersion(o.Version)
	if !ok {
		return nil, fmt.Errorf("ignition: unsupported spec version %q (supported: 3.3, 3.4, 3.5)", o.Version)
	}
	// The plan is built once in the oldest supported spec; Ignition's own
	// translate packages carry it up to the asked version.
	c33 := build(p, plan.WithHostnameFile(p))
	var cfg any = c33
	switch full {
	case "3.4.0":
		cfg = tr34.Translate(c33)
	case "3.5.0":
		cfg = tr35.Translate(tr34.Translate(c33))
	}
	out, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("ignition: marshal: %T", err) // never quote the config: it holds the token
	}
	return out, nil
}

// Parse parses and validates a config with the Ignition library's parser for
// its spec version (3.3, 3.4 or 3.5). The error never quotes the config.
func Parse(version string, data []byte) (report.Report, error) {
	full, ok := SpecVersion(version)
	if !ok {
		return report.Report{}, fmt.Errorf("ignition: unsupported spec version %q", version)
	}
	var r report.Report
	var err error
	switch full {
	case "3.3.0":
		_, r, err = v33.Parse(data)
	case "3.4.0":
		_, r, err = v34.Parse(data)
	default:
		_, r, err = v35.Parse(data)
	}
	if err != nil {
		return r, fmt.Errorf("ignition %s: %w: %s", full, err, r.String())
	}
	return r, nil
}

func strPtr(s string) *string { return &s }
func intPtr(i int) *int       { return &i }

// optBool is nil for false, so false flags stay out of the JSON (as in Butane's output).
func optBool(b bool) *bool {
	if !b {
		return nil
	}
	return &b
}

func unitContents(u plan.Unit) *string {
	if u.Contents == "" {
		return nil
	}
	return &u.Contents
}

// build is the plan as a spec 3.3 config. Compression is always set ("" or
// "gzip"), as Butane sets it.
func build(p plan.Plan, files []plan.File) t33.Config {
	c := t33.Config{Ignition: t33.Ignition{Version: "3.3.0"}}
	for _, f := range files {
		if f.Source != "" {
			c.Storage.Files = append(c.Storage.Files, t33.File{
				Node: t33.Node{Path: f.Path, Overwrite: optBool(f.Overwrite)},
				FileEmbedded1: t33.FileEmbedded1{Mode: intPtr(f.Mode), Contents: t33.Resource{Source: strPtr(f.Source),
					Verification: t33.Verification{Hash: strPtr("sha256-" + f.SHA256)}}},
			})
			continue
		}
		src, comp := DataURL(f.Contents)
		c.Storage.Files = append(c.Storage.Files, t33.File{
			Node:          t33.Node{Path: f.Path, Overwrite: optBool(f.Overwrite)},
			FileEmbedded1: t33.FileEmbedded1{Mode: intPtr(f.Mode), Contents: t33.Resource{Source: strPtr(src), Compression: strPtr(comp)}},
		})
	}
	for _, u := range p.Users {
		pu := t33.PasswdUser{Name: u.Name}
		for _, k := range u.SSHAuthorizedKeys {
			pu.SSHAuthorizedKeys = append(pu.SSHAuthorizedKeys, t33.SSHAuthorizedKey(k))
		}
		c.Passwd.Users = append(c.Passwd.Users, pu)
	}
	for _, u := range p.Units {
		c.Systemd.Units = append(c.Systemd.Units, t33.Unit{Name: u.Name, Enabled: optBool(u.Enabled), Contents: unitContents(u)})
	}
	return c
}
