package v1alpha1

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/provision-dev/provision/api/validation"
)

// CIDR checks one range of the cluster's network (GenerateConfig.podCIDRs,
// serviceCIDRs): an IPv4 or IPv6 CIDR in canonical form, its network address
// with no host bits set (10.96.0.0/12, fd00:10:96::/112), as Kubernetes'
// --service-cluster-ip-range and --cluster-cidr take them.
func CIDR(s string) string {
	const want = "must be an IPv4 or IPv6 CIDR such as 10.96.0.0/12 or fd00:10:96::/112"
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return want + ", got " + validation.Quote(s)
	}
	if pfx.Addr().Zone() != "" || pfx.Addr().Is4In6() {
		return want + " (no zone, no IPv4-mapped IPv6), got " + validation.Quote(s)
	}
	if m := pfx.Masked(); m != pfx {
		return fmt.Sprintf("%s has host bits set; the range is %s", validation.Quote(s), m)
	}
	return ""
}

// validateCIDRs checks the list at p (podCIDRs or serviceCIDRs): each a CIDR,
// each once, at most one IPv4 and one IPv6 range (a dual-stack cluster's pair,
// as Kubernetes and Cluster API's clusterNetwork allow).
func validateCIDRs(p validation.Path, list []string) validation.Errors {
	var es validation.Errors
	seen := map[netip.Prefix]int{}
	family := map[bool]int{} // is IPv4 → first index
	for i, s := range list {
		msg := CIDR(s)
		if msg != "" {
			es.Add(p.Index(i), "%s", msg)
			continue
		}
		pfx := netip.MustParsePrefix(s)
		if j, dup := seen[pfx]; dup {
			es.Add(p.Index(i), "lists %s again (also %s)", pfx, p.Index(j))
			continue
		}
		seen[pfx] = i
		if j, two := family[pfx.Addr().Is4()]; two {
			es.Add(p.Index(i), "is a second %s range (%s is %s): give at most one IPv4 and one IPv6 range (dual-stack)", ipFamily(pfx), p.Index(j), list[j])
			continue
		}
		family[pfx.Addr().Is4()] = i
	}
	return es
}

func ipFamily(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// validateClusterNetwork checks the cluster's pod and service ranges at p and,
// when both are given, that every cluster DNS address lies inside a service
// range (the DNS Service's ClusterIP is allocated from it). A link-local
// address is exempt: it is a node-local DNS cache's (NodeLocal DNSCache's
// 169.254.20.10), never a Service's. Addresses that are no IP are clusterDNS's
// own error (validateClusterDNS).
func validateClusterNetwork(p validation.Path, podCIDRs, serviceCIDRs, clusterDNS []string) validation.Errors {
	var es validation.Errors
	es.Append(validateCIDRs(p.Child("podCIDRs"), podCIDRs))
	svc := validateCIDRs(p.Child("serviceCIDRs"), serviceCIDRs)
	es.Append(svc)
	if len(serviceCIDRs) == 0 || len(svc) > 0 {
		return es
	}
	for i, s := range clusterDNS {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		ip = ip.Unmap()
		if ip.IsLinkLocalUnicast() {
			continue
		}
		inside := false
		for _, c := range serviceCIDRs {
			inside = inside || netip.MustParsePrefix(c).Contains(ip)
		}
		if !inside {
			es.Add(p.Child("clusterDNS").Index(i), "%s is not inside serviceCIDRs (%s): the cluster DNS Service's IP is allocated from the service range (only a node-local cache's link-local address may lie outside)", ip, strings.Join(serviceCIDRs, ", "))
		}
	}
	return es
}

// CanonicalCIDRs returns the valid CIDRs of list in canonical form (lower-case,
// shortest IPv6), in order; invalid ones are Validate's to report.
func CanonicalCIDRs(list []string) []string {
	var out []string
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.String())
		}
	}
	return out
}
