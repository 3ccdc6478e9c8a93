package generate

import (
	"fmt"
	"maps"
	"net/url"
	"path"
	"slices"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/generate/butane"
	"github.com/provision-dev/provision/generate/cloudinit"
	"github.com/provision-dev/provision/generate/ignition"
	"github.com/provision-dev/provision/generate/plan"
	"github.com/provision-dev/provision/generate/setup"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/internal/kubeconfig"
	"github.com/provision-dev/provision/internal/kubeversions"
	"github.com/provision-dev/provision/node/nodeconfig"
	"github.com/provision-dev/provision/osprofiles"
)

// Render validates spec and returns the userdata in format; an empty format
// means spec.Format, or else the OS profile's default. On invalid input the
// error is validation.Errors, naming every bad field and flag.
func Render(spec v1alpha1.GenerateConfig, format osprofiles.Format) ([]byte, error) {
	if format != "" {
		spec.Format = format
	}
	r, err := resolve(spec)
	if err != nil {
		return nil, err
	}
	p, err := r.plan()
	if err != nil {
		return nil, err
	}
	switch r.format {
	case osprofiles.CloudInit:
		return cloudinit.Render(p, r.Gzip)
	case osprofiles.Ignition:
		return ignition.Render(p, ignition.Options{Version: r.IgnitionVersion})
	default:
		return butane.Render(p, butane.Options{Variant: r.butaneVariant(), IgnitionVersion: r.IgnitionVersion})
	}
}

// BuildPlan validates spec and returns the neutral plan every format renders.
func BuildPlan(spec v1alpha1.GenerateConfig) (plan.Plan, error) {
	r, err := resolve(spec)
	if err != nil {
		return plan.Plan{}, err
	}
	return r.plan()
}

// Warnings returns what is worth reporting about spec without refusing it: a
// kubelet minor that is not supported upstream any more (legacy in
// internal/kubeversions) is rendered, and reported, never silently; so is a
// node without cluster DNS. Render's callers print them (provision generate:
// on stderr); an invalid version is Render's error, not a warning.
func Warnings(spec v1alpha1.GenerateConfig) []string {
	var out []string
	if r, err := kubeversions.For(spec.KubeletVersion); err == nil {
		if w := r.Warning(); w != "" {
			out = append(out, w)
		}
	}
	if len(spec.ClusterDNS) == 0 {
		out = append(out, "no clusterDNS (--cluster-dns): pods with dnsPolicy ClusterFirst, the default, get the node's resolver and cluster names such as kubernetes.default.svc do not resolve; give the cluster DNS Service's IP (kubeadm's default 10.96.0.10)")
	}
	return out
}

// ResolvedFormat returns the format Render uses for spec: spec.Format, or the OS
// profile's default; empty if the OS is unknown.
func ResolvedFormat(spec v1alpha1.GenerateConfig) osprofiles.Format {
	if spec.Format != "" {
		return spec.Format
	}
	if p, err := osprofiles.Get(spec.OS); err == nil {
		return p.DefaultFormat
	}
	return ""
}

// ProvisionBinary returns where the machine installs the provision binary.
func ProvisionBinary(p osprofiles.Profile) string { return path.Join(p.BinDir, "provision") }

// nodeConfig is the node's settings file: defaults for the version and arch, the
// profile, and the user's overrides.
func (r resolved) nodeConfig() v1alpha1.NodeConfig {
	nc := nodeconfig.New(r.KubeletVersion, r.Arch)
	nc.OSProfile = r.profile.Name
	nc.Kubernetes.CloudProvider = r.CloudProvider
	nc.Kubernetes.NodeIP = r.NodeIP
	nc.Kubernetes.ClusterDNS = r.ClusterDNS
	nc.Kubernetes.ClusterDomain = r.ClusterDomain
	nc.Kubernetes.NodeLabels = r.NodeLabels
	nc.Kubernetes.Taints = r.Taints
	nc.Kubernetes.ServerTLSBootstrap = r.ServerTLSBootstrap
	nc.Kubernetes.KubeletConfig = r.KubeletConfig
	nc.Kubernetes.KubeletExtraArgs = r.KubeletExtraArgs
	nc.Kubernetes.FailCgroupV1 = r.FailCgroupV1
	nc.Kubernetes.ImageCredentialProviders = r.ImageCredentialProviders
	nc.BootstrapSentinel = r.BootstrapSentinel
	if !r.Proxy.IsZero() {
		nc.Proxy.EnvironmentFile = v1alpha1.ProxyEnvPath // the URLs only there (0600): they may carry credentials
	}
	if len(r.cloudConfig) > 0 {
		nc.Kubernetes.CloudConfigPath = v1alpha1.CloudConfigPath
	}
	for _, a := range artifacts.Configurable() {
		if !a.NeededBy(r.profile) {
			delete(nc.Artifacts, a.Name) // lean: only what this profile downloads
		}
	}
	if v := r.Containerd.Version; v != "" {
		if _, ok := nc.Artifacts[artifacts.Containerd]; ok { // the default URL of that version
			nc.Artifacts[artifacts.Containerd] = v1alpha1.Artifact{URL: artifacts.MustGet(artifacts.Containerd).URLFor(v, r.KubeletVersion, r.Arch)}
		}
	}
	for name, src := range r.Artifacts {
		dst, ok := nc.Artifacts[name]
		switch {
		case src.URL != "":
			nc.Artifacts[name] = src // a mirror (an unknown name is left for Validate to report)
		case src.SHA256 != "" && ok:
			dst.SHA256 = src.SHA256 // pin the default URL
			nc.Artifacts[name] = dst
		}
	}
	nc.Packages = r.Packages
	if r.Containerd.SandboxImage != "" {
		nc.Containerd.SandboxImage = r.Containerd.SandboxImage
	}
	nc.Containerd.RegistryMirrors = r.Containerd.RegistryMirrors
	nc.Containerd.Registries, nc.Containerd.CredentialsFile = r.nodeRegistries()
	nc.Containerd.Install = r.Containerd.Install
	nc.Containerd.Version = r.Containerd.Version
	return nc
}

// nodeRegistries is what node.yaml keeps of containerd.registries: each
// host's CA path (where registryFiles writes the CA) and skipVerify, never a
// credential; and the credentials file's path when any host has credentials.
func (r resolved) nodeRegistries() (map[string]v1alpha1.Registry, string) {
	var out map[string]v1alpha1.Registry
	credentials := ""
	for h, reg := range r.Containerd.Registries {
		caPath := ""
		if len(r.registryCAs[h]) > 0 {
			caPath = v1alpha1.RegistryCAPath(h)
		}
		if caPath != "" || reg.SkipVerify {
			if out == nil {
				out = map[string]v1alpha1.Registry{}
			}
			out[h] = reg.NodeRegistry(caPath)
		}
		if reg.HasCredentials() {
			credentials = v1alpha1.RegistryCredentialsPath // the credentials only there (0600)
		}
	}
	return out, credentials
}

// registryFiles are the registries' CAs (0644, at their caPath) and the
// credentials file (0600, JSON built with encoding/json), as proxy.env is written.
func (r resolved) registryFiles() ([]plan.File, error) {
	var out []plan.File
	creds := v1alpha1.RegistryCredentials{}
	for _, h := range slices.Sorted(maps.Keys(r.Containerd.Registries)) {
		if ca := r.registryCAs[h]; len(ca) > 0 {
			out = append(out, plan.File{Path: v1alpha1.RegistryCAPath(h), Mode: 0o644, Contents: ca})
		}
		if reg := r.Containerd.Registries[h]; reg.HasCredentials() {
			creds[h] = reg.Auth()
		}
	}
	if len(creds) > 0 {
		data, err := creds.Marshal()
		if err != nil {
			return nil, err
		}
		out = append(out, plan.File{Path: v1alpha1.RegistryCredentialsPath, Mode: 0o600, Contents: data})
	}
	return out, nil
}

// proxy is the node's proxy with the API server's host (the kubelet reaches it
// directly), then the pod and service CIDRs (pods and Services are reached
// directly) added to noProxy after localhost, each once, in that order.
func (r resolved) proxy() v1alpha1.Proxy {
	var hosts []string
	if u, err := url.Parse(r.APIServerURL); err == nil && u.Hostname() != "" {
		hosts = append(hosts, u.Hostname())
	}
	hosts = append(hosts, v1alpha1.CanonicalCIDRs(r.PodCIDRs)...)
	hosts = append(hosts, v1alpha1.CanonicalCIDRs(r.ServiceCIDRs)...)
	return r.Proxy.WithNoProxy(hosts...)
}

func (r resolved) plan() (plan.Plan, error) {
	kc, err := kubeconfig.Build(kubeconfig.Bootstrap{Server: r.APIServerURL, CAPath: v1alpha1.CACertPath, Token: r.token})
	if err != nil {
		return plan.Plan{}, err // kubeconfig.Build's error never quotes the token
	}
	nc := r.nodeConfig()
	if err := nc.Validate("").Err(); err != nil {
		return plan.Plan{}, fmt.Errorf("node config: %w", err) // resolve already reported these by field
	}
	ncYAML, err := nc.Marshal()
	if err != nil {
		return plan.Plan{}, err
	}
	unit, err := setup.Unit(setup.Inputs{Source: r.ProvisionSource, SHA256: r.ProvisionSHA256, Bin: ProvisionBinary(r.profile), AllowHTTP: r.AllowHTTPSource, JoinOnly: r.Prebaked, EnvironmentFile: nc.Proxy.EnvironmentFile})
	if err != nil {
		return plan.Plan{}, err
	}

	p := plan.Plan{Hostname: r.Hostname}
	p.Files = append(p.Files, plan.File{Path: v1alpha1.CACertPath, Mode: 0o644, Contents: r.caCert})
	if len(r.cloudConfig) > 0 {
		p.Files = append(p.Files, plan.File{Path: v1alpha1.CloudConfigPath, Mode: 0o600, Contents: r.cloudConfig})
	}
	if !r.Proxy.IsZero() {
		p.Files = append(p.Files, plan.File{Path: v1alpha1.ProxyEnvPath, Mode: 0o600, Contents: r.proxy().EnvFile()})
	}
	regFiles, err := r.registryFiles()
	if err != nil {
		return plan.Plan{}, err
	}
	p.Files = append(p.Files, regFiles...)
	p.Files = append(p.Files,
		plan.File{Path: v1alpha1.BootstrapKubeconfigPath, Mode: 0o600, Contents: kc},
		plan.File{Path: v1alpha1.NodeConfigPath, Mode: 0o644, Contents: ncYAML},
		plan.File{Path: setup.ScriptPath, Mode: 0o755, Contents: setup.Script()},
	)
	p.Files = append(p.Files, r.extraFiles()...)
	p.Units = append([]plan.Unit{{Name: setup.UnitName, Contents: unit, Enabled: true}}, r.extraUnits()...)
	if len(r.SSHAuthorizedKeys) > 0 {
		p.Users = []plan.User{{Name: r.profile.DefaultUser, SSHAuthorizedKeys: append([]string(nil), r.SSHAuthorizedKeys...), Default: true}}
	}
	return p, nil
}
