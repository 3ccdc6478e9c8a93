package generate

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"strings"
)

// Limit is one cloud's userdata size limit.
type Limit struct {
	Cloud string
	// Bytes is the limit.
	Bytes int
	// Base64 is true when the limit applies to the base64-encoded document.
	Base64 bool
}

// Limits are the clouds' userdata limits (shared/references.md).
var Limits = []Limit{
	{Cloud: "AWS EC2", Bytes: 16384},
	{Cloud: "OpenStack Nova", Bytes: 65535, Base64: true},
	{Cloud: "Azure customData", Bytes: 65535},
	{Cloud: "Hetzner", Bytes: 32768},
	{Cloud: "GCP metadata", Bytes: 262144},
	{Cloud: "vSphere guestinfo", Bytes: 65536, Base64: true},
}

// SizeReport measures a document against Limits.
type SizeReport struct {
	// Raw is the document's size as written.
	Raw int
	// Gzip is its size gzip-compressed (what --gzip would roughly give for cloud-init).
	Gzip int
	// Base64 is the size of its base64 encoding (how most APIs carry userdata).
	Base64 int
}

// Sizes measures doc.
func Sizes(doc []byte) SizeReport {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = w.Write(doc)
	_ = w.Close()
	return SizeReport{Raw: len(doc), Gzip: buf.Len(), Base64: base64.StdEncoding.EncodedLen(len(doc))}
}

// Fits reports whether the document fits l.
func (s SizeReport) Fits(l Limit) bool {
	if l.Base64 {
		return s.Base64 <= l.Bytes
	}
	return s.Raw <= l.Bytes
}

// String is a human-readable table, one limit per line.
func (s SizeReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "userdata: %d bytes raw, %d gzip, %d base64\n", s.Raw, s.Gzip, s.Base64)
	for _, l := range Limits {
		measure, size := "raw", s.Raw
		if l.Base64 {
			measure, size = "base64", s.Base64
		}
		verdict := "fits"
		if !s.Fits(l) {
			verdict = "DOES NOT FIT"
		}
		fmt.Fprintf(&b, "  %-18s %7d bytes %-6s limit %7d: %s\n", l.Cloud, size, measure, l.Bytes, verdict)
	}
	return b.String()
}
