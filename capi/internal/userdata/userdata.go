// Package userdata turns a ProvisionConfig's spec and what the cluster supplies
// into provision's GenerateConfig and renders it with generate.Render: the
// bootstrap provider's only way to userdata, so the controller produces
// exactly what `provision generate` does.
package userdata

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
	bootstrapv1 "github.com/provision-dev/provision/capi/api/v1alpha1"
	"github.com/provision-dev/provision/generate"
	"github.com/provision-dev/provision/osprofiles"
)

// Cluster is what the cluster supplies for one machine.
type Cluster struct {
	// KubeletVersion is Machine.spec.version (or the MachinePool template's).
	KubeletVersion string
	// APIServerURL is https://<Cluster.spec.controlPlaneEndpoint>.
	APIServerURL string
	// CACert is tls.crt of the Secret <cluster>-ca (PEM).
	CACert []byte
	// Token is the bootstrap token minted for this config. A secret.
	Token string
	// Hostname is the Machine's name (empty: the cloud's).
	Hostname string
	// ClusterDNS and ClusterDomain come from Cluster.spec.clusterNetwork
	// (ClusterNetworkDNS); the spec's own values take precedence.
	ClusterDNS    []string
	ClusterDomain string
	// PodCIDRs and ServiceCIDRs are Cluster.spec.clusterNetwork.pods and
	// services.cidrBlocks: added to the proxy's noProxy, and the cluster DNS
	// must lie inside the services'.
	PodCIDRs     []string
	ServiceCIDRs []string
	// HTTPProxy and HTTPSProxy are the values of the Secret keys spec.proxy
	// refers to. Secrets: they may carry credentials.
	HTTPProxy  string
	HTTPSProxy string
	// Registries is what the controller read for spec.containerd.registries,
	// by host: the CA of caCertFrom and the credentials of
	// credentialsSecretRef. Secrets.
	Registries map[string]RegistryInputs
}

// RegistryInputs are one registry host's values read from the objects its
// spec references.
type RegistryInputs struct {
	// CACert is the PEM bundle of caCertFrom ("" without one).
	CACert string
	// Auth is the credentials of credentialsSecretRef (zero without one). A secret.
	Auth v1alpha1.RegistryAuth
}

// Sources names, for the condition's message, where each derived field of
// the GenerateConfig comes from: a field error about one of them points at
// the object to fix, not at a field the user cannot see.
var Sources = map[string]string{
	"kubeletVersion": "Machine.spec.version",
	"apiServerURL":   "Cluster.spec.controlPlaneEndpoint",
	"caCert":         "Secret <cluster>-ca tls.crt",
	"token":          "bootstrap token",
	"hostname":       "Machine.metadata.name",
	"podCIDRs":       "Cluster.spec.clusterNetwork.pods.cidrBlocks",
	"serviceCIDRs":   "Cluster.spec.clusterNetwork.services.cidrBlocks",
	// Always on: the contract's /run/cluster-api/bootstrap-success.complete.
	"bootstrapSentinel": "Cluster API's bootstrap contract",
}

// Excluded are the GenerateConfig fields a ProvisionConfig does not offer, and why.
var Excluded = map[string]string{
	"apiVersion":      "the GenerateConfig document's own header",
	"kind":            "the GenerateConfig document's own header",
	"tokenFile":       "files on the controller's host are never read",
	"caCertFile":      "files on the controller's host are never read",
	"cloudConfig":     "secret material; TODO: spec.cloudConfigSecretRef",
	"cloudConfigFile": "files on the controller's host are never read",
	"nodeIP":          "one address per machine: the infrastructure provider's, the kubelet picks it",
	// Issue 11's image credential providers.
	"imageCredentialProviders": "not offered yet (TODO: spec.imageCredentialProviders, the same list)",
}

// GenerateConfig is spec with the cluster's values: the input of
// generate.Render. The error is an *InvalidError (a kubeletConfig that is not
// a JSON object).
func GenerateConfig(spec bootstrapv1.ProvisionConfigSpec, c Cluster) (v1alpha1.GenerateConfig, error) {
	gc := v1alpha1.GenerateConfig{
		APIVersion:         v1alpha1.APIVersion,
		Kind:               v1alpha1.GenerateConfigKind,
		OS:                 spec.OS,
		Format:             osprofiles.Format(spec.Format),
		Arch:               spec.Arch,
		KubeletVersion:     c.KubeletVersion,
		APIServerURL:       c.APIServerURL,
		Token:              c.Token,
		CACert:             string(c.CACert),
		CloudProvider:      spec.CloudProvider,
		Hostname:           c.Hostname,
		SSHAuthorizedKeys:  slices.Clone(spec.SSHAuthorizedKeys),
		ProvisionSource:    spec.ProvisionSource,
		ProvisionSHA256:    spec.ProvisionSHA256,
		AllowHTTPSource:    spec.AllowHTTPSource,
		IgnitionVersion:    spec.IgnitionVersion,
		Gzip:               spec.Gzip,
		Prebaked:           spec.Prebaked,
		BootstrapSentinel:  true,
		FailCgroupV1:       clonePtr(spec.FailCgroupV1),
		ClusterDNS:         slices.Clone(c.ClusterDNS),
		ClusterDomain:      c.ClusterDomain,
		NodeLabels:         maps.Clone(spec.NodeLabels),
		Taints:             slices.Clone(spec.Taints),
		ServerTLSBootstrap: spec.ServerTLSBootstrap,
		KubeletExtraArgs:   maps.Clone(spec.KubeletExtraArgs),
		Packages:           packages(spec.Packages),
		Containerd: v1alpha1.Containerd{
			SandboxImage:    spec.Containerd.SandboxImage,
			RegistryMirrors: cloneMirrors(spec.Containerd.RegistryMirrors),
			Registries:      registries(spec.Containerd.Registries, c.Registries),
		},
	}
	if len(spec.ClusterDNS) > 0 {
		gc.ClusterDNS = slices.Clone(spec.ClusterDNS)
	}
	gc.PodCIDRs, gc.ServiceCIDRs = slices.Clone(c.PodCIDRs), slices.Clone(c.ServiceCIDRs)
	if p := spec.Proxy; p != nil {
		// The URLs the controller read from the referenced Secrets; a scheme
		// without a reference has no proxy.
		gc.Proxy.NoProxy = p.NoProxy
		if p.HTTPProxy != nil {
			gc.Proxy.HTTPProxy = c.HTTPProxy
		}
		if p.HTTPSProxy != nil {
			gc.Proxy.HTTPSProxy = c.HTTPSProxy
		}
	}
	if spec.ClusterDomain != "" {
		gc.ClusterDomain = spec.ClusterDomain
	}
	if len(spec.Artifacts) > 0 {
		gc.Artifacts = v1alpha1.Artifacts{}
		for name, a := range spec.Artifacts {
			gc.Artifacts[name] = v1alpha1.Artifact{URL: a.URL, SHA256: a.SHA256, AllowHTTP: a.AllowHTTP}
		}
	}
	for _, f := range spec.Files {
		gc.Files = append(gc.Files, v1alpha1.File{Path: f.Path, Mode: int(f.Mode), Content: f.Content, Source: f.Source, SHA256: f.SHA256})
	}
	for _, u := range spec.Units {
		gc.Units = append(gc.Units, v1alpha1.Unit{Name: u.Name, Content: u.Content, Enabled: u.Enabled})
	}
	if spec.KubeletConfig != nil && len(spec.KubeletConfig.Raw) > 0 {
		if err := json.Unmarshal(spec.KubeletConfig.Raw, &gc.KubeletConfig); err != nil {
			return gc, &InvalidError{Errors: []FieldError{{Path: "spec.kubeletConfig", Message: "must be a JSON object (a partial KubeletConfiguration)"}}}
		}
	}
	return gc, nil
}

// kubeadmServicesCIDR is kubeadm's service subnet when the Cluster gives none.
const kubeadmServicesCIDR = "10.96.0.0/12"

// ClusterNetworkDNS derives the kubelet's cluster DNS from the Cluster's
// network as kubeadm does: the tenth address of the first services CIDR
// (10.96.0.10 without one), and the service domain ("" keeps provision's
// default, cluster.local). The error is an *InvalidError naming the Cluster's field.
func ClusterNetworkDNS(servicesCIDRs []string, serviceDomain string) ([]string, string, error) {
	const field = "Cluster.spec.clusterNetwork.services.cidrBlocks[0]"
	cidr := kubeadmServicesCIDR
	if len(servicesCIDRs) > 0 {
		cidr = servicesCIDRs[0]
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, "", &InvalidError{Errors: []FieldError{{Path: field, Message: "must be a CIDR, e.g. 10.96.0.0/12"}}}
	}
	a := p.Masked().Addr()
	for range 10 {
		a = a.Next()
	}
	if !a.IsValid() || !p.Contains(a) {
		return nil, "", &InvalidError{Errors: []FieldError{{Path: field, Message: "has no tenth address for the cluster DNS Service"}}}
	}
	return []string{a.String()}, serviceDomain, nil
}

// registries is containerd.registries of the GenerateConfig: the spec's
// inline CA and skipVerify, the CA and credentials read from the objects the
// spec references (in), by host.
func registries(spec map[string]bootstrapv1.Registry, in map[string]RegistryInputs) map[string]v1alpha1.Registry {
	if len(spec) == 0 {
		return nil
	}
	out := make(map[string]v1alpha1.Registry, len(spec))
	for h, r := range spec {
		got := in[h]
		ca := r.CACert
		if got.CACert != "" {
			ca = got.CACert
		}
		out[h] = v1alpha1.Registry{CACert: ca, SkipVerify: r.SkipVerify,
			Username: got.Auth.Username, Password: got.Auth.Password, IdentityToken: got.Auth.IdentityToken}
	}
	return out
}

func packages(p bootstrapv1.Packages) v1alpha1.Packages {
	var out v1alpha1.Packages
	if p.Apt != nil {
		out.Apt = &v1alpha1.AptRepository{URL: p.Apt.URL, Suite: p.Apt.Suite, Components: slices.Clone(p.Apt.Components),
			SignedBy: p.Apt.SignedBy, Trusted: p.Apt.Trusted, Exclusive: p.Apt.Exclusive}
	}
	if p.Yum != nil {
		out.Yum = &v1alpha1.YumRepository{BaseURL: p.Yum.BaseURL, GPGKey: p.Yum.GPGKey, GPGCheck: clonePtr(p.Yum.GPGCheck), Exclusive: p.Yum.Exclusive}
	}
	return out
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func cloneMirrors(m map[string][]string) map[string][]string {
	if m == nil {
		return nil
	}
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

// Data is the rendered userdata and the data Secret's format value.
type Data struct {
	Value []byte
	// Format is bootstrapv1.FormatCloudConfig or bootstrapv1.FormatIgnition.
	Format string
	// Warnings are generate's: rendered, but worth reporting (a legacy kubelet minor, no cluster DNS).
	Warnings []string
}

// Render renders spec for the cluster's values. On invalid input the error is
// *InvalidError, naming every problem by its path in the ProvisionConfig
// ("spec.format") or by the object a derived value comes from.
func Render(spec bootstrapv1.ProvisionConfigSpec, c Cluster) (Data, error) {
	gc, err := GenerateConfig(spec, c)
	if err != nil {
		return Data{}, err
	}
	f := generate.ResolvedFormat(gc)
	var secretFormat string
	switch f {
	case osprofiles.CloudInit:
		secretFormat = bootstrapv1.FormatCloudConfig
	case osprofiles.Ignition:
		secretFormat = bootstrapv1.FormatIgnition
	case "":
		// an unknown OS: Render reports it
	default:
		return Data{}, &InvalidError{Errors: []FieldError{{Path: "spec.format", Message: fmt.Sprintf("%s is not a boot format; use cloud-init or ignition", f)}}}
	}
	out, err := generate.Render(gc, "")
	if err != nil {
		if es, ok := validation.AsErrors(err); ok {
			return Data{}, invalid(es, spec)
		}
		return Data{}, fmt.Errorf("render userdata: %w", err)
	}
	return Data{Value: out, Format: secretFormat, Warnings: generate.Warnings(gc)}, nil
}

// FieldError is one problem, at its path in the ProvisionConfig (spec.*) or in
// the object a derived value comes from.
type FieldError struct {
	Path    string
	Message string
}

// InvalidError is every problem generate's validation found.
type InvalidError struct {
	Errors []FieldError
}

func (e *InvalidError) Error() string {
	lines := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		lines[i] = fe.Path + ": " + fe.Message
	}
	return strings.Join(lines, "; ")
}

// invalid maps generate's field errors (GenerateConfig paths) to ProvisionConfig
// paths; the messages never quote a secret (generate's rule).
func invalid(es validation.Errors, spec bootstrapv1.ProvisionConfigSpec) *InvalidError {
	out := &InvalidError{}
	for _, e := range es {
		top, rest := e.Field, ""
		if i := strings.IndexAny(e.Field, ".["); i >= 0 {
			top, rest = e.Field[:i], e.Field[i:]
		}
		path := "spec." + e.Field
		if src, ok := Sources[top]; ok {
			path = src + rest
		}
		if p, ok := registrySource(e.Field, spec.Containerd.Registries); ok {
			path = p
		}
		out.Errors = append(out.Errors, FieldError{Path: path, Message: e.Message})
	}
	return out
}

// registrySource points a field error about a registry's CA or credentials
// that came from a referenced object at the reference and the object's key
// (containerd.registries[HOST].password -> spec.containerd.registries[HOST].credentialsSecretRef
// (Secret NAME key KEY)); false for other fields.
func registrySource(field string, regs map[string]bootstrapv1.Registry) (string, bool) {
	for h, r := range regs {
		base := "containerd.registries[" + h + "]."
		leaf, ok := strings.CutPrefix(field, base)
		if !ok {
			continue
		}
		ref := r.CredentialsSecretRef
		user, pass, token := "", "", ""
		if ref != nil {
			user, pass, token = ref.Keys()
		}
		switch {
		case leaf == "caCert" && r.CACertFrom != nil && r.CACertFrom.ConfigMapKeyRef != nil:
			k := r.CACertFrom.ConfigMapKeyRef
			return "spec." + base + "caCertFrom (ConfigMap " + k.Name + " key " + k.Key + ")", true
		case leaf == "caCert" && r.CACertFrom != nil && r.CACertFrom.SecretKeyRef != nil:
			k := r.CACertFrom.SecretKeyRef
			return "spec." + base + "caCertFrom (Secret " + k.Name + " key " + k.Key + ")", true
		case ref == nil:
		case leaf == "username":
			return "spec." + base + "credentialsSecretRef (Secret " + ref.Name + " key " + user + ")", true
		case leaf == "password":
			return "spec." + base + "credentialsSecretRef (Secret " + ref.Name + " key " + pass + ")", true
		case leaf == "identityToken":
			return "spec." + base + "credentialsSecretRef (Secret " + ref.Name + " key " + token + ")", true
		}
	}
	return "", false
}

// SpecFields is every GenerateConfig field a ProvisionConfigSpec carries (by
// JSON name); with Sources and Excluded it accounts for every GenerateConfig
// field (a test holds the three to the type).
func SpecFields() []string {
	return slices.Sorted(maps.Keys(map[string]bool{
		"os": true, "format": true, "arch": true, "cloudProvider": true, "sshAuthorizedKeys": true,
		"provisionSource": true, "provisionSHA256": true, "allowHTTPSource": true, "ignitionVersion": true,
		"gzip": true, "failCgroupV1": true, "prebaked": true,
		"clusterDNS": true, "clusterDomain": true, "nodeLabels": true, "taints": true,
		"serverTLSBootstrap": true, "kubeletConfig": true, "kubeletExtraArgs": true, "artifacts": true, "packages": true, "containerd": true,
		"files": true, "units": true, "proxy": true,
	}))
}
