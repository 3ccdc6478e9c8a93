package cloudinit

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"testing"

	"github.com/provision-dev/provision/generate/plan"
)

func TestPlain(t *testing.T) {
	for in, want := range map[string]bool{
		"text\n\ttab": true, "Grüße 🚀": true, "key: v # c": true,
		"a\r\nb": false, "\x00": false, "\xff": false, "\u0085": false, "\u2028": false, "\ufeff": false, "\uffff": false,
	} {
		if got := Plain([]byte(in)); got != want {
			t.Errorf("Plain(%q) = %v", in, got)
		}
	}
}

func TestRenderShape(t *testing.T) {
	p := plan.Plan{Hostname: "h", Files: []plan.File{{Path: "/a", Mode: 0o600, Contents: []byte("\xff")}},
		Units: []plan.Unit{{Name: "u.service", Contents: "[Unit]\n", Enabled: true}},
		Users: []plan.User{{Name: "ubuntu", SSHAuthorizedKeys: []string{"k"}, Default: true}, {Name: "ops", SSHAuthorizedKeys: []string{"k2"}}}}
	out, err := Render(p, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"#cloud-config\n", "encoding: b64", "content: /w==", "permissions: \"0600\"", "- - systemctl\n  - daemon-reload",
		"--no-block\n  - u.service", "path: /etc/systemd/system/u.service", "ssh_authorized_keys:\n- k\n", "users:\n- name: default\n- name: ops"} {
		if !bytes.Contains(out, []byte(s)) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

// TestWriteFileEncoding: each entry is plain text, base64 or gzip+base64,
// whichever is shortest; under --gzip (the whole document compressed) entries
// stay plain; every choice decodes back to the same bytes.
func TestWriteFileEncoding(t *testing.T) {
	long := bytes.Repeat([]byte("kubeReserved:\n  cpu: 100m\n"), 40)
	tests := []struct {
		name     string
		in       []byte
		compress bool
		want     string
	}{
		{"short text stays plain", []byte("worker-1\n"), true, ""},
		{"repetitive text is compressed", long, true, GzipEncoding},
		{"whole document gzipped: plain", long, false, ""},
		{"binary is base64", []byte{0xff}, true, "b64"},
		{"binary, whole document gzipped", []byte{0xff}, false, "b64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := writeFile("/a", 0o644, tt.in, tt.compress)
			if f.Encoding != tt.want {
				t.Fatalf("encoding %q, want %q", f.Encoding, tt.want)
			}
			got := []byte(f.Content)
			if f.Encoding != "" {
				b, err := base64.StdEncoding.DecodeString(f.Content)
				if err != nil {
					t.Fatal(err)
				}
				got = b
			}
			if f.Encoding == GzipEncoding {
				r, err := gzip.NewReader(bytes.NewReader(got))
				if err != nil {
					t.Fatal(err)
				}
				if got, err = io.ReadAll(r); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, tt.in) {
				t.Fatalf("round trip: %q", got)
			}
		})
	}
}
