package node

import (
	"fmt"
	"path"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1 "k8s.io/kubelet/config/v1"
	"sigs.k8s.io/yaml"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/node/tasks"
)

// Image credential providers: the kubelet's config and the plugins' directory.
//
// The directory is under /opt, as the CNI plugins' (/opt/cni/bin): /opt is
// writable on every profile (Flatcar's /opt, Fedora CoreOS's /opt -> /var/opt,
// and the package-managed distributions), where the profile's BinDir is not a
// choice (/usr/local/bin is shared with other binaries, and a directory of its
// own keeps the kubelet from running anything but the plugins provision put
// there).
const (
	CredentialProviderConfigPath = "/etc/kubernetes/image-credential-providers.yaml"
	CredentialProviderBinDir     = "/opt/provision/credential-providers"
)

// Task names of the credential providers (join).
const (
	tCredentialProviderBins   = "kubelet/credential-provider-plugins"
	tCredentialProviderConfig = "kubelet/credential-provider-config"
)

// credentialProviderTasks downloads every plugin (verified before it lands,
// executable only then; a plugin already there with its sha256 is not fetched
// again) and writes the kubelet's CredentialProviderConfig (0644: env values
// are not secrets by contract). None without providers.
func (n *Node) credentialProviderTasks() ([]tasks.Task, error) {
	ps := n.Config.Kubernetes.ImageCredentialProviders
	if len(ps) == 0 {
		return nil, nil
	}
	cfg, err := renderCredentialProviderConfig(ps)
	if err != nil {
		return nil, err
	}
	list := make([]tasks.Artifact, 0, len(ps))
	for _, p := range ps {
		list = append(list, tasks.Artifact{URL: p.URL, SHA256: p.SHA256, Path: credentialProviderPath(p.Name), Mode: 0o755})
	}
	return []tasks.Task{
		&tasks.Download{TaskName: tCredentialProviderBins, Artifacts: list},
		&tasks.File{TaskName: tCredentialProviderConfig, Path: CredentialProviderConfigPath, Mode: 0o644, Content: cfg},
	}, nil
}

// credentialProviderPath is where the plugin named name lands.
func credentialProviderPath(name string) string { return path.Join(CredentialProviderBinDir, name) }

// credentialProviderFlags are the kubelet flags that enable the providers.
func credentialProviderFlags(ps []v1alpha1.ImageCredentialProvider) []string {
	if len(ps) == 0 {
		return nil
	}
	return []string{
		"--image-credential-provider-config=" + CredentialProviderConfigPath,
		"--image-credential-provider-bin-dir=" + CredentialProviderBinDir,
	}
}

// renderCredentialProviderConfig builds the kubelet's CredentialProviderConfig
// (k8s.io/kubelet/config/v1) from the providers, in their order (the kubelet
// tries earlier providers' credentials first), as YAML.
func renderCredentialProviderConfig(ps []v1alpha1.ImageCredentialProvider) ([]byte, error) {
	cfg := kubeletv1.CredentialProviderConfig{
		TypeMeta:  metav1.TypeMeta{APIVersion: kubeletv1.SchemeGroupVersion.String(), Kind: "CredentialProviderConfig"},
		Providers: make([]kubeletv1.CredentialProvider, 0, len(ps)),
	}
	for _, p := range ps {
		cp := kubeletv1.CredentialProvider{
			Name:                 p.Name,
			MatchImages:          p.MatchImages,
			DefaultCacheDuration: &metav1.Duration{Duration: p.CacheDuration()},
			APIVersion:           p.ProviderAPIVersion(),
			Args:                 p.Args,
		}
		for _, e := range p.Env {
			cp.Env = append(cp.Env, kubeletv1.ExecEnvVar{Name: e.Name, Value: e.Value})
		}
		cfg.Providers = append(cfg.Providers, cp)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("marshal CredentialProviderConfig: %w", err)
	}
	return out, nil
}
