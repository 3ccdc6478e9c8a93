package generate

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/generate/setup"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/osprofiles"
)

const proxySecret = "pr0xyS3cret"

// TestProxyPlan: the proxy settings go to ProxyEnvPath (0600) with the API
// server's host in noProxy; node.yaml names only the file; setup's unit reads it.
func TestProxyPlan(t *testing.T) {
	spec := readmeSpec(t, "ubuntu-24.04")
	spec.Proxy = v1alpha1.Proxy{HTTPProxy: "http://ops:" + proxySecret + "@proxy.internal:3128", HTTPSProxy: "http://ops:" + proxySecret + "@proxy.internal:3128", NoProxy: ".internal"}
	p, err := BuildPlan(spec)
	if err != nil {
		t.Fatal(err)
	}
	var env, node []byte
	for _, f := range p.Files {
		switch f.Path {
		case v1alpha1.ProxyEnvPath:
			env = f.Contents
			if f.Mode != 0o600 {
				t.Errorf("%s mode %o, want 0600", f.Path, f.Mode)
			}
		case v1alpha1.NodeConfigPath:
			node = f.Contents
		default:
			if strings.Contains(string(f.Contents), proxySecret) {
				t.Errorf("%s holds the proxy credentials", f.Path)
			}
		}
	}
	if !strings.Contains(string(env), "no_proxy=.internal,localhost,127.0.0.1,10.0.0.10\n") || !strings.Contains(string(env), "http_proxy="+spec.Proxy.HTTPProxy+"\n") {
		t.Errorf("proxy env file:\n%s", env)
	}
	if strings.Contains(string(node), proxySecret) || strings.Contains(string(node), "proxy.internal") || !strings.Contains(string(node), "environmentFile: "+v1alpha1.ProxyEnvPath) {
		t.Errorf("node.yaml must name only the env file:\n%s", node)
	}
	if len(p.Units) != 1 || !strings.Contains(p.Units[0].Contents, "EnvironmentFile="+v1alpha1.ProxyEnvPath+"\n") || strings.Contains(p.Units[0].Contents, proxySecret) {
		t.Errorf("setup unit:\n%s", p.Units[0].Contents)
	}
	for _, os := range []string{"ubuntu-24.04", "flatcar"} { // cloud-init and Ignition
		spec.OS = os
		if _, err := Render(spec, ""); err != nil {
			t.Fatalf("%s: %v", os, err)
		}
	}
}

// TestProxyNoProxyCIDRs: the cluster's pod and service CIDRs follow the API
// server's host in noProxy, canonical, each once (a range the user listed
// stays where the user put it).
func TestProxyNoProxyCIDRs(t *testing.T) {
	for _, tc := range []struct {
		name       string
		noProxy    string
		pods, svcs []string
		want       string
	}{
		{name: "none", want: "localhost,127.0.0.1,10.0.0.10"},
		{name: "ipv4", pods: []string{"10.244.0.0/16"}, svcs: []string{"10.96.0.0/12"}, want: "localhost,127.0.0.1,10.0.0.10,10.244.0.0/16,10.96.0.0/12"},
		{name: "dual-stack", noProxy: ".internal", pods: []string{"10.244.0.0/16", "FD00:10:244:0::/56"}, svcs: []string{"10.96.0.0/12", "fd00:10:96::/112"},
			want: ".internal,localhost,127.0.0.1,10.0.0.10,10.244.0.0/16,fd00:10:244::/56,10.96.0.0/12,fd00:10:96::/112"},
		{name: "already listed", noProxy: "10.96.0.0/12,10.0.0.10", pods: []string{"10.244.0.0/16"}, svcs: []string{"10.96.0.0/12"},
			want: "10.96.0.0/12,10.0.0.10,localhost,127.0.0.1,10.244.0.0/16"},
		{name: "services only", svcs: []string{"fd00:10:96::/112"}, want: "localhost,127.0.0.1,10.0.0.10,fd00:10:96::/112"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := readmeSpec(t, "ubuntu-24.04")
			spec.ClusterDNS = nil
			spec.Proxy = v1alpha1.Proxy{HTTPSProxy: "http://ops:" + proxySecret + "@proxy.internal:3128", NoProxy: tc.noProxy}
			spec.PodCIDRs, spec.ServiceCIDRs = tc.pods, tc.svcs
			p, err := BuildPlan(spec)
			if err != nil {
				t.Fatal(err)
			}
			env := ""
			for _, f := range p.Files {
				if f.Path == v1alpha1.ProxyEnvPath {
					env = string(f.Contents)
				}
			}
			if want := "https_proxy=" + spec.Proxy.HTTPSProxy + "\nno_proxy=" + tc.want + "\n"; env != want {
				t.Errorf("proxy env file:\n%s\nwant\n%s", env, want)
			}
		})
	}
	// Without a proxy the ranges change nothing but validation.
	spec := readmeSpec(t, "ubuntu-24.04")
	plain, err := Render(spec, "")
	if err != nil {
		t.Fatal(err)
	}
	spec.PodCIDRs, spec.ServiceCIDRs = []string{"10.244.0.0/16"}, []string{"10.96.0.0/12"}
	withRanges, err := Render(spec, "")
	if err != nil {
		t.Fatal(err)
	}
	if string(plain) != string(withRanges) {
		t.Errorf("podCIDRs/serviceCIDRs changed the userdata of a node without a proxy")
	}
}

// TestProxyGolden: a proxy with credentials, noProxy and the cluster's ranges,
// in every format (-update rewrites).
func TestProxyGolden(t *testing.T) {
	for _, c := range []struct {
		os     string
		format osprofiles.Format
	}{{"ubuntu-24.04", osprofiles.CloudInit}, {"flatcar", osprofiles.Ignition}, {"flatcar", osprofiles.Butane}} {
		t.Run(c.os+"/"+string(c.format), func(t *testing.T) {
			spec := readmeSpec(t, c.os)
			spec.Proxy = v1alpha1.Proxy{HTTPProxy: "http://ops:" + proxySecret + "@proxy.internal:3128", HTTPSProxy: "http://ops:" + proxySecret + "@proxy.internal:3128", NoProxy: ".internal"}
			spec.PodCIDRs = []string{"10.244.0.0/16", "fd00:10:244::/56"}
			spec.ServiceCIDRs = []string{"10.96.0.0/12"}
			out, err := Render(spec, c.format)
			if err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, filepath.Join("testdata", "golden", "proxy", filepath.Base(goldenName(c.os, c.format))), out)
		})
	}
}

// TestNoProxyPlan: without a proxy nothing proxy-related is written.
func TestNoProxyPlan(t *testing.T) {
	p, err := BuildPlan(readmeSpec(t, "ubuntu-24.04"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range p.Files {
		if f.Path == v1alpha1.ProxyEnvPath || (f.Path == v1alpha1.NodeConfigPath && strings.Contains(string(f.Contents), "proxy")) {
			t.Errorf("%s written or mentions a proxy without one", f.Path)
		}
	}
	if strings.Contains(p.Units[0].Contents, "EnvironmentFile") {
		t.Errorf("setup unit:\n%s", p.Units[0].Contents)
	}
}

// TestProxyInvalid: a bad proxy is refused by field path, config file only
// (no flag), and the error never quotes the URL.
func TestProxyInvalid(t *testing.T) {
	spec := readmeSpec(t, "ubuntu-24.04")
	spec.Proxy = v1alpha1.Proxy{HTTPSProxy: "socks5://ops:" + proxySecret + "@proxy:1080", NoProxy: "a b"}
	_, err := Render(spec, "")
	es, ok := validation.AsErrors(err)
	if !ok || len(es) != 2 || es[0].Field != "proxy.httpsProxy" || es[1].Field != "proxy.noProxy" || es[0].Flag != "" {
		t.Fatalf("errors %#v", err)
	}
	if strings.Contains(err.Error(), proxySecret) {
		t.Errorf("error quotes the credentials: %v", err)
	}
}

func TestSetupUnitEnvironmentFile(t *testing.T) {
	in := setup.Inputs{Source: "https://x/p", SHA256: strings.Repeat("a", 64), Bin: "/usr/local/bin/provision"}
	for _, bad := range []string{"relative", "/a b", "/a%n", "/a$x"} {
		in.EnvironmentFile = bad
		if _, err := setup.Unit(in); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
