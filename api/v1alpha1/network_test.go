package v1alpha1

import (
	"reflect"
	"strings"
	"testing"
)

// TestClusterNetworkValidate: podCIDRs, serviceCIDRs and clusterDNS against
// them, each problem at its path with its message.
func TestClusterNetworkValidate(t *testing.T) {
	type want struct{ field, msg string }
	for _, tc := range []struct {
		name       string
		pods, svcs []string
		dns        []string
		errs       []want // none: valid
	}{
		{name: "none"},
		{name: "ipv4", pods: []string{"10.244.0.0/16"}, svcs: []string{"10.96.0.0/12"}, dns: []string{"10.96.0.10"}},
		{name: "dual-stack", pods: []string{"10.244.0.0/16", "fd00:10:244::/56"}, svcs: []string{"fd00:10:96::/112", "10.96.0.0/12"}, dns: []string{"fd00:10:96::a", "10.96.0.10"}},
		{name: "ipv6 upper case", svcs: []string{"FD00:10:96::/112"}, dns: []string{"fd00:10:96::a"}},
		{name: "dns without services", pods: []string{"10.244.0.0/16"}, dns: []string{"192.168.0.10"}},
		{name: "services without dns", svcs: []string{"10.96.0.0/12"}},
		{name: "single address range", pods: []string{"10.244.0.1/32"}, svcs: []string{"fd00::1/128"}},
		{name: "not a cidr", pods: []string{"10.244.0.0"}, errs: []want{{"podCIDRs[0]", `must be an IPv4 or IPv6 CIDR such as 10.96.0.0/12 or fd00:10:96::/112, got "10.244.0.0"`}}},
		{name: "bad prefix length", svcs: []string{"10.96.0.0/33"}, errs: []want{{"serviceCIDRs[0]", `got "10.96.0.0/33"`}}},
		{name: "ipv6 prefix length", svcs: []string{"fd00::/129"}, errs: []want{{"serviceCIDRs[0]", `got "fd00::/129"`}}},
		{name: "name", pods: []string{"pods.internal"}, errs: []want{{"podCIDRs[0]", "must be an IPv4 or IPv6 CIDR"}}},
		{name: "empty", pods: []string{""}, errs: []want{{"podCIDRs[0]", `got ""`}}},
		{name: "leading zeros", pods: []string{"010.244.0.0/16"}, errs: []want{{"podCIDRs[0]", `got "010.244.0.0/16"`}}},
		{name: "zone", pods: []string{"fe80::%eth0/64"}, errs: []want{{"podCIDRs[0]", "must be an IPv4 or IPv6 CIDR"}}},
		{name: "ipv4-mapped", svcs: []string{"::ffff:10.96.0.0/108"}, errs: []want{{"serviceCIDRs[0]", "no IPv4-mapped IPv6"}}},
		{name: "host bits", pods: []string{"10.244.1.0/16"}, errs: []want{{"podCIDRs[0]", `"10.244.1.0/16" has host bits set; the range is 10.244.0.0/16`}}},
		{name: "ipv6 host bits", svcs: []string{"fd00:10:96::1/112"}, errs: []want{{"serviceCIDRs[0]", "the range is fd00:10:96::/112"}}},
		{name: "duplicate", pods: []string{"10.244.0.0/16", "10.244.0.0/16"}, errs: []want{{"podCIDRs[1]", "lists 10.244.0.0/16 again (also podCIDRs[0])"}}},
		{name: "duplicate ipv6 spelling", svcs: []string{"fd00::/108", "FD00:0::/108"}, errs: []want{{"serviceCIDRs[1]", "lists fd00::/108 again"}}},
		{name: "two ipv4", svcs: []string{"10.96.0.0/12", "10.112.0.0/12"}, errs: []want{{"serviceCIDRs[1]", "is a second IPv4 range (serviceCIDRs[0] is 10.96.0.0/12): give at most one IPv4 and one IPv6 range (dual-stack)"}}},
		{name: "two ipv6", pods: []string{"fd00:1::/64", "10.244.0.0/16", "fd00:2::/64"}, errs: []want{{"podCIDRs[2]", "second IPv6 range (podCIDRs[0]"}}},
		{name: "dns outside", svcs: []string{"10.96.0.0/12"}, dns: []string{"10.96.0.10", "10.0.0.10"}, errs: []want{{"clusterDNS[1]", "10.0.0.10 is not inside serviceCIDRs (10.96.0.0/12): the cluster DNS Service's IP is allocated from the service range"}}},
		{name: "dns other family", svcs: []string{"10.96.0.0/12"}, dns: []string{"fd00::a"}, errs: []want{{"clusterDNS[0]", "fd00::a is not inside serviceCIDRs (10.96.0.0/12)"}}},
		{name: "dns outside dual-stack", svcs: []string{"10.96.0.0/12", "fd00:10:96::/112"}, dns: []string{"fd00:10:97::a"}, errs: []want{{"clusterDNS[0]", "not inside serviceCIDRs (10.96.0.0/12, fd00:10:96::/112)"}}},
		{name: "node-local dns cache", svcs: []string{"10.96.0.0/12", "fd00:10:96::/112"}, dns: []string{"169.254.20.10", "fe80::a"}},
		{name: "dns ipv4-mapped inside", svcs: []string{"10.96.0.0/12"}, dns: []string{"::ffff:10.96.0.10"}},
		{name: "dns not checked against bad services", svcs: []string{"10.96.0.0/99"}, dns: []string{"10.0.0.10"}, errs: []want{{"serviceCIDRs[0]", "must be"}}},
		{name: "dns not an ip is clusterDNS's own error", svcs: []string{"10.96.0.0/12"}, dns: []string{"kube-dns"}},
		{name: "all at once", pods: []string{"x", "10.244.0.0/16"}, svcs: []string{"10.96.0.1/12"}, errs: []want{{"podCIDRs[0]", "must be"}, {"serviceCIDRs[0]", "host bits"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := validateClusterNetwork("", tc.pods, tc.svcs, tc.dns)
			if len(es) != len(tc.errs) {
				t.Fatalf("errors %v, want %v", es, tc.errs)
			}
			for i, w := range tc.errs {
				if es[i].Field != w.field || !strings.Contains(es[i].Message, w.msg) {
					t.Errorf("error %d = %s: %s; want %s containing %q", i, es[i].Field, es[i].Message, w.field, w.msg)
				}
			}
		})
	}
}

// TestGenerateConfigClusterNetwork: GenerateConfig.Validate reports the ranges
// by path, after clusterDNS's own checks.
func TestGenerateConfigClusterNetwork(t *testing.T) {
	c := GenerateConfig{ClusterDNS: []string{"10.0.0.10", "kube-dns"}, PodCIDRs: []string{"10.244.0.0/33"}, ServiceCIDRs: []string{"10.96.0.0/12"}}
	var got []string
	for _, e := range c.Validate("") {
		if strings.HasPrefix(e.Field, "clusterDNS") || strings.HasSuffix(strings.Split(e.Field, "[")[0], "CIDRs") {
			got = append(got, e.Field+": "+e.Message)
		}
	}
	want := []string{
		`clusterDNS[1]: must be an IP address, got "kube-dns"`,
		`podCIDRs[0]: must be an IPv4 or IPv6 CIDR such as 10.96.0.0/12 or fd00:10:96::/112, got "10.244.0.0/33"`,
		"clusterDNS[0]: 10.0.0.10 is not inside serviceCIDRs (10.96.0.0/12): the cluster DNS Service's IP is allocated from the service range (only a node-local cache's link-local address may lie outside)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("errors\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCanonicalCIDRs(t *testing.T) {
	got := CanonicalCIDRs([]string{"FD00:0:0::/108", "10.96.0.0/12", "bad"})
	if want := []string{"fd00::/108", "10.96.0.0/12"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("CanonicalCIDRs = %v, want %v", got, want)
	}
}

// TestWithNoProxyCIDRs: the cluster's ranges are appended after the user's
// entries and the defaults, each once, in order; no proxy, no list.
func TestWithNoProxyCIDRs(t *testing.T) {
	p := Proxy{HTTPProxy: "http://proxy:3128", NoProxy: "10.96.0.0/12, .internal"}
	got := p.WithNoProxy("10.0.0.10", "10.244.0.0/16", "fd00:10:244::/56", "10.96.0.0/12", "10.0.0.10").NoProxy
	if want := "10.96.0.0/12,.internal,localhost,127.0.0.1,10.0.0.10,10.244.0.0/16,fd00:10:244::/56"; got != want {
		t.Errorf("noProxy = %s\nwant      %s", got, want)
	}
	if msg := NoProxyList(got); msg != "" {
		t.Errorf("the merged noProxy is invalid: %s", msg)
	}
	if got := (Proxy{}).WithNoProxy("10.244.0.0/16"); !got.IsZero() {
		t.Errorf("no proxy: %+v", got)
	}
}
