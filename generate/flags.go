package generate

import (
	"reflect"
	"sort"
	"strings"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/internal/kubeversions"
	"github.com/provision-dev/provision/osprofiles"
)

// Flag ties a command-line flag of `provision generate` to the GenerateConfig
// field it sets. Errors about the field name both; the command binds and merges
// its flags from this table.
type Flag struct {
	// Name is the flag, e.g. "--kubelet-version".
	Name string
	// Field is the GenerateConfig field's path (its YAML name).
	Field string
	// Usage is the flag's help text.
	Usage string
	// Also are the other fields of the same setting (the inline form of a file
	// flag): setting the flag clears them unless their own flag is set too, and
	// their errors name this flag.
	Also []string
}

// Flags is the field-to-flag table, in the GenerateConfig's order. Adding a
// setting with a flag is one row here (and the field in api/v1alpha1).
var Flags = []Flag{
	{Name: "--os", Field: "os", Usage: "OS profile, one of " + strings.Join(osprofiles.Names(), ", ")},
	{Name: "--format", Field: "format", Usage: "userdata format: cloud-init, ignition or butane (default: the OS's own)"},
	{Name: "--arch", Field: "arch", Usage: "machine architecture: amd64 (default) or arm64"},
	{Name: "--kubelet-version", Field: "kubeletVersion", Usage: "kubelet version, vMAJOR.MINOR.PATCH (supported: " + kubeversions.SupportedList() + "; older minors with a warning)"},
	{Name: "--apiserver-url", Field: "apiServerURL", Usage: "https URL of the Kubernetes API server"},
	{Name: "--token-file", Field: "tokenFile", Also: []string{"token"}, Usage: "file holding the bootstrap token ([a-z0-9]{6}.[a-z0-9]{16})"},
	{Name: "--token", Field: "token", Also: []string{"tokenFile"}, Usage: "the bootstrap token itself (prefer --token-file: argv is visible to other users)"},
	{Name: "--ca-cert", Field: "caCertFile", Also: []string{"caCert"}, Usage: "file holding the cluster CA certificate (PEM)"},
	{Name: "--cloud-provider", Field: "cloudProvider", Usage: "the kubelet's --cloud-provider: external (run the provider's cloud-controller-manager; the only one from kubelet 1.29), or an in-tree name before 1.29"},
	{Name: "--cloud-config", Field: "cloudConfigFile", Also: []string{"cloudConfig"}, Usage: "cloud provider config file, installed as /etc/kubernetes/cloud-config (0600) for the cloud-controller-manager and CSI drivers; passed to the kubelet only with an in-tree provider (before 1.29)"},
	{Name: "--hostname", Field: "hostname", Usage: "the node's hostname (RFC 1123)"},
	{Name: "--ssh-authorized-key", Field: "sshAuthorizedKeys", Usage: "SSH public key for the OS's default user (repeatable)"},
	{Name: "--provision-source", Field: "provisionSource", Usage: "https URL of the provision binary the machine downloads"},
	{Name: "--provision-sha256", Field: "provisionSHA256", Usage: "sha256 of that binary, 64 hex digits (checked before it runs)"},
	{Name: "--allow-http-source", Field: "allowHTTPSource", Usage: "allow a plain http --provision-source (internal mirrors; the sha256 still protects it)"},
	{Name: "--ignition-version", Field: "ignitionVersion", Usage: "Ignition spec for ignition/butane: 3.3, 3.4 (default) or 3.5"},
	{Name: "--gzip", Field: "gzip", Usage: "gzip the whole cloud-config (every format already compresses each file where that is shorter)"},
	{Name: "--node-ip", Field: "nodeIP", Usage: "the kubelet's --node-ip (default: the kubelet picks)"},
	{Name: "--cluster-dns", Field: "clusterDNS", Usage: "IP address of the cluster DNS service (kube-dns/CoreDNS) for pods, e.g. 10.96.0.10 (repeatable)"},
	{Name: "--cluster-domain", Field: "clusterDomain", Usage: "the cluster's DNS domain (default cluster.local)"},
	{Name: "--pod-cidr", Field: "podCIDRs", Usage: "the cluster's pod range, an IPv4 or IPv6 CIDR (repeatable: one of each family); added to the proxy's noProxy"},
	{Name: "--service-cidr", Field: "serviceCIDRs", Usage: "the cluster's Service range, an IPv4 or IPv6 CIDR (repeatable: one of each family); added to the proxy's noProxy, and --cluster-dns must lie inside it"},
	{Name: "--node-label", Field: "nodeLabels", Usage: "label the kubelet registers its Node with, key=value (repeatable); not node-role.kubernetes.io/* nor other kubernetes.io/k8s.io keys but the kubelet's own (NodeRestriction)"},
	{Name: "--taint", Field: "taints", Usage: "taint the kubelet registers its Node with, key=value:Effect or key:Effect; Effect NoSchedule, PreferNoSchedule or NoExecute (repeatable)"},
	{Name: "--prebaked", Field: "prebaked", Usage: "the image already ran \"provision node base\": setup only joins, downloading nothing if the binary is present"},
}

// flagFor names the flag that sets a field path ("" for config-only fields).
func flagFor(field string) string {
	top := topField(field)
	for _, f := range Flags {
		if f.Field == top || contains(f.Also, top) {
			return f.Name
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// topField is the first element of a field path: "artifacts" of "artifacts.kubelet.url".
func topField(path string) string {
	if i := strings.IndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return path
}

// fieldOrder ranks the GenerateConfig's fields in document order, from its YAML names.
var fieldOrder = func() map[string]int {
	order := map[string]int{}
	t := reflect.TypeOf(v1alpha1.GenerateConfig{})
	for i := 0; i < t.NumField(); i++ {
		order[strings.Split(t.Field(i).Tag.Get("json"), ",")[0]] = i
	}
	return order
}()

// named gives every error its flag and orders them as the document orders its fields.
func named(es validation.Errors) validation.Errors {
	for i := range es {
		es[i].Flag = flagFor(es[i].Field)
	}
	sort.SliceStable(es, func(i, j int) bool { return fieldOrder[topField(es[i].Field)] < fieldOrder[topField(es[j].Field)] })
	return es
}

// Target returns a pointer to the field f sets in c (*string, *bool,
// *[]string, *map[string]string or *osprofiles.Format), for binding the flag.
func (f Flag) Target(c *v1alpha1.GenerateConfig) any {
	return fieldByName(c, f.Field).Addr().Interface()
}

func fieldByName(c *v1alpha1.GenerateConfig, name string) reflect.Value {
	v := reflect.ValueOf(c).Elem()
	for i := 0; i < v.NumField(); i++ {
		if strings.Split(v.Type().Field(i).Tag.Get("json"), ",")[0] == name {
			return v.Field(i)
		}
	}
	panic("generate: no GenerateConfig field " + name) // the table names a field that does not exist
}

// MergeFlags copies into dst the fields whose flag was set (changed reports it,
// by name without "--") from src, the values the flags were parsed into: flags
// override a config file. A file flag clears the inline form it replaces, unless
// that form's own flag is set too, so validation refuses both ("not both")
// instead of one silently winning.
func MergeFlags(dst *v1alpha1.GenerateConfig, src *v1alpha1.GenerateConfig, changed func(name string) bool) {
	set := func(field string) bool {
		for _, f := range Flags {
			if f.Field == field {
				return changed(strings.TrimPrefix(f.Name, "--"))
			}
		}
		return false
	}
	for _, f := range Flags {
		if !changed(strings.TrimPrefix(f.Name, "--")) {
			continue
		}
		fieldByName(dst, f.Field).Set(fieldByName(src, f.Field))
		for _, other := range f.Also {
			if !set(other) {
				v := fieldByName(dst, other)
				v.Set(reflect.Zero(v.Type()))
			}
		}
	}
}
