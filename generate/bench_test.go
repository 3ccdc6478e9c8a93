package generate

import (
	"testing"

	bconfig "github.com/coreos/butane/config"
	bcommon "github.com/coreos/butane/config/common"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/generate/ignition"
	"github.com/provision-dev/provision/osprofiles"
)

// benchSpec is the README example with inline contents, so no file I/O is timed.
func benchSpec(b *testing.B, os string) v1alpha1.GenerateConfig {
	s := readmeSpec(b, os)
	r, err := resolve(s)
	if err != nil {
		b.Fatal(err)
	}
	s.Token, s.TokenFile = r.token, ""
	s.CACert, s.CACertFile = string(r.caCert), ""
	s.CloudConfig, s.CloudConfigFile = string(r.cloudConfig), ""
	return s
}

func benchRender(b *testing.B, os string, f osprofiles.Format, gz bool) {
	s := benchSpec(b, os)
	s.Gzip = gz
	var n int
	for b.Loop() {
		out, err := Render(s, f)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.ReportMetric(float64(n), "out-bytes")
}

func BenchmarkRenderCloudInit(b *testing.B) {
	benchRender(b, "ubuntu-22.04", osprofiles.CloudInit, false)
}
func BenchmarkRenderIgnition(b *testing.B) { benchRender(b, "flatcar", osprofiles.Ignition, false) }
func BenchmarkRenderButane(b *testing.B)   { benchRender(b, "flatcar", osprofiles.Butane, false) }

// BenchmarkButaneTranslate is Butane's own translation of the same document, side by side.
func BenchmarkButaneTranslate(b *testing.B) {
	doc, err := Render(benchSpec(b, "flatcar"), osprofiles.Butane)
	if err != nil {
		b.Fatal(err)
	}
	for _, auto := range []bool{false, true} {
		name := "noCompression"
		if auto {
			name = "autoCompression"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := bconfig.TranslateBytes(doc, bcommon.TranslateBytesOptions{TranslateOptions: bcommon.TranslateOptions{NoResourceAutoCompression: !auto}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRenderAndValidateIgnition: render + Ignition's own parse/validate.
func BenchmarkRenderAndValidateIgnition(b *testing.B) {
	s := benchSpec(b, "flatcar")
	for b.Loop() {
		out, err := Render(s, osprofiles.Ignition)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ignition.Parse(ignition.DefaultVersion, out); err != nil {
			b.Fatal(err)
		}
	}
}
