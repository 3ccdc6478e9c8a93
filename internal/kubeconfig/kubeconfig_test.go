package kubeconfig

import (
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

func TestBuildRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   Bootstrap
	}{
		{"ca by path", Bootstrap{Server: "https://10.0.0.10:6443", CAPath: "/etc/kubernetes/pki/ca.crt", Token: "abcdef.0123456789abcdef"}},
		{"ca by data", Bootstrap{Server: "https://api.example:6443", CAData: []byte("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"), Token: "abcdef.0123456789abcdef"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Build(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := clientcmd.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			c := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]
			if c.Server != tt.in.Server || c.CertificateAuthority != tt.in.CAPath || string(c.CertificateAuthorityData) != string(tt.in.CAData) {
				t.Fatalf("cluster = %+v", c)
			}
			tok, err := Token(out)
			if err != nil || tok != tt.in.Token {
				t.Fatalf("Token = %q, %v", tok, err)
			}
			if srv, err := Server(out); err != nil || srv != tt.in.Server {
				t.Fatalf("Server = %q, %v", srv, err)
			}
			if strings.Count(string(out), tt.in.Token) != 1 {
				t.Fatalf("token should appear exactly once")
			}
		})
	}
}

func TestServerErrors(t *testing.T) {
	for _, in := range []string{"{", "apiVersion: v1\nkind: Config\ncurrent-context: x\n", "apiVersion: v1\nkind: Config\ncurrent-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"} {
		if _, err := Server([]byte(in)); err == nil {
			t.Errorf("Server(%q): no error", in)
		}
	}
}
