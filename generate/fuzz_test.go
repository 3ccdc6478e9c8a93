package generate

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/generate/ignition"
	"github.com/provision-dev/provision/osprofiles"
)

// FuzzSpec renders arbitrary inputs. Properties: no panic; an accepted input
// gives a document that its format's parser accepts and that decodes back to
// the plan; a rejected input gives Errors whose every entry names a field, and
// never quotes the token.
//
//	go test ./generate -run '^$' -fuzz FuzzSpec -fuzztime 60s
func FuzzSpec(f *testing.F) {
	ca, err := os.ReadFile(filepath.Join("testdata", "ca.crt"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(0), uint8(0), "s4entc.h11zq2rxihrm3adt", "worker-1", "ssh-ed25519 AAAA ops", []byte("[Global]\n"), "https://example.com/p", "v1.37.2", false)
	f.Add(uint8(6), uint8(1), "abcdef.0123456789abcdef", "", "", []byte("a: b\n# c\n\"q\"\n\xff"), "http://mirror/p%20q", "v1.0.0", true)
	f.Add(uint8(7), uint8(2), "bad", "-x", "ssh-rsa\nx", []byte{}, "ftp://x", "1.2", false)
	profiles := osprofiles.All()
	formats := osprofiles.Formats()
	f.Fuzz(func(t *testing.T, osIdx, formatIdx uint8, token, hostname, sshKey string, cloudConfig []byte, source, version string, gz bool) {
		prof := profiles[int(osIdx)%len(profiles)]
		format := formats[int(formatIdx)%len(formats)]
		s := v1alpha1.GenerateConfig{
			OS: prof.Name, KubeletVersion: version, APIServerURL: "https://10.0.0.10:6443",
			Token: token, CACert: string(ca), Hostname: hostname,
			CloudConfig: string(cloudConfig), ProvisionSource: source, AllowHTTPSource: gz,
			ProvisionSHA256: strings.Repeat("0", 64), Gzip: gz,
		}
		if len(cloudConfig) > 0 {
			s.CloudProvider = "external"
		}
		if sshKey != "" {
			s.SSHAuthorizedKeys = []string{sshKey}
		}
		out, err := Render(s, format)
		if err != nil {
			var es validation.Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("rejected without field errors: %T %v", err, err)
			}
			for _, e := range es {
				if e.Field == "" || e.Message == "" {
					t.Fatalf("error names no field: %+v", e)
				}
			}
			// The other inputs as given and as errors quote them (%q escapes can
			// spell a token-like run, e.g. "\x00" + "0000" holds "000000").
			var others string
			for _, o := range []string{hostname, sshKey, source, version} {
				others += o + "\x00" + validation.Quote(o) + "\x00"
			}
			if len(token) >= 6 && !strings.Contains(others, token[:6]) && strings.Contains(err.Error(), token[:6]) {
				t.Fatalf("error quotes the token: %v", err)
			}
			return
		}
		p, err := BuildPlan(s)
		if err != nil {
			t.Fatal(err)
		}
		switch format {
		case osprofiles.Ignition:
			if _, err := ignition.Parse(ignition.DefaultVersion, out); err != nil {
				t.Fatalf("accepted input, invalid Ignition: %v", err)
			}
		case osprofiles.Butane:
			ign, err := Render(s, osprofiles.Ignition)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(translateButane(t, out), ign) {
				t.Fatal("Butane translation differs from Ignition")
			}
		}
		compareMachines(t, decodeAny(t, out, format, prof, "", gz), expected(p))
	})
}
