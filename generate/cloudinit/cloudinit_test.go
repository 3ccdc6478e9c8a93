package cloudinit

import (
	"bytes"
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
