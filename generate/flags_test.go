package generate

import (
	"reflect"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/osprofiles"
)

// TestFlagTable: every row names a GenerateConfig field of a bindable type, once.
func TestFlagTable(t *testing.T) {
	var c v1alpha1.GenerateConfig
	seen := map[string]bool{}
	for _, f := range Flags {
		if seen[f.Name] || f.Usage == "" {
			t.Errorf("%s: duplicate or without usage", f.Name)
		}
		seen[f.Name] = true
		switch f.Target(&c).(type) {
		case *string, *bool, *[]string, *map[string]string, *osprofiles.Format: // what the command binds
		default:
			t.Errorf("%s: field %s has a type no flag binds", f.Name, f.Field)
		}
		if _, ok := fieldOrder[f.Field]; !ok {
			t.Errorf("%s: no field %s", f.Name, f.Field)
		}
	}
}

func TestFlagFor(t *testing.T) {
	for field, want := range map[string]string{
		"os": "--os", "token": "--token-file", "tokenFile": "--token-file", "caCert": "--ca-cert", "caCertFile": "--ca-cert",
		"cloudConfig": "--cloud-config", "sshAuthorizedKeys[1]": "--ssh-authorized-key", "nodeIP": "--node-ip",
		"artifacts.kubelet.url": "", "apiVersion": "",
	} {
		if got := flagFor(field); got != want {
			t.Errorf("flagFor(%s) = %q, want %q", field, got, want)
		}
	}
}

// TestMergeFlags: a set flag overrides the config; a file flag replaces the inline
// form unless that form's flag is set too (then validation says "not both").
func TestMergeFlags(t *testing.T) {
	file := v1alpha1.GenerateConfig{OS: "flatcar", Token: "inline", CACert: "pem", CloudConfig: "cc", KubeletVersion: "v1.30.0", Gzip: true}
	flags := v1alpha1.GenerateConfig{OS: "debian-12", TokenFile: "/t", Token: "flag", CACertFile: "/ca", Format: "ignition", SSHAuthorizedKeys: []string{"k"}}
	tests := []struct {
		name string
		set  []string
		want func(c *v1alpha1.GenerateConfig)
	}{
		{"nothing set", nil, func(c *v1alpha1.GenerateConfig) {}},
		{"scalars", []string{"os", "format", "ssh-authorized-key"}, func(c *v1alpha1.GenerateConfig) {
			c.OS, c.Format, c.SSHAuthorizedKeys = "debian-12", "ignition", []string{"k"}
		}},
		{"token file replaces inline token", []string{"token-file"}, func(c *v1alpha1.GenerateConfig) { c.TokenFile, c.Token = "/t", "" }},
		{"both token flags stay both", []string{"token-file", "token"}, func(c *v1alpha1.GenerateConfig) { c.TokenFile, c.Token = "/t", "flag" }},
		{"ca file replaces inline CA", []string{"ca-cert"}, func(c *v1alpha1.GenerateConfig) { c.CACertFile, c.CACert = "/ca", "" }},
		{"cloud config file replaces inline", []string{"cloud-config"}, func(c *v1alpha1.GenerateConfig) { c.CloudConfig = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := file, file
			tt.want(&want)
			set := map[string]bool{}
			for _, s := range tt.set {
				set[s] = true
			}
			MergeFlags(&got, &flags, func(n string) bool { return set[n] })
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}
