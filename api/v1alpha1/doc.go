// Package v1alpha1 is provision's public, versioned configuration API
// (apiVersion provision.dev/v1alpha1): the GenerateConfig that `provision
// generate --config` reads and the NodeConfig (/etc/provision/node.yaml) that
// generate writes and `provision node` reads. generate, node and the Cluster API
// integration import these types; the YAML formats they define are stable within
// the version.
//
// Each type documents its fields, applies its defaults in SetDefaults and checks
// itself in Validate(path), returning validation.Errors whose entries carry the
// field path (e.g. "kubernetes.version"), the allowed form, and never a secret.
// Adding a setting:
//
//  1. the field, documented, in its struct here (and its default in SetDefaults, if any);
//  2. one line in that struct's Validate, with a validator of api/validation;
//  3. one row in node/nodeconfig's TestValidateErrors (and generate's, if generate sets it);
//  4. if `provision generate` has a flag for it: the field in GenerateConfig, one row in
//     generate.Flags (which binds, merges and names the flag in errors) and the copy into
//     the node config in generate's nodeConfig.
//
// Then use it where node renders it.
package v1alpha1

import "github.com/provision-dev/provision/internal/kubeversions"

const (
	// APIVersion is the version of every document of this package.
	APIVersion = "provision.dev/v1alpha1"
	// GenerateConfigKind is the kind of a GenerateConfig document.
	GenerateConfigKind = "GenerateConfig"
	// NodeConfigKind is the kind of a NodeConfig document.
	NodeConfigKind = "NodeConfig"

	// NodeConfigPath is where generate writes the node config and node reads it.
	NodeConfigPath = "/etc/provision/node.yaml"
	// CACertPath is the cluster CA on the node.
	CACertPath = "/etc/kubernetes/pki/ca.crt"
	// CloudConfigPath is the cloud provider's config file on the node (0600).
	CloudConfigPath = "/etc/kubernetes/cloud-config"
	// BootstrapKubeconfigPath holds the bootstrap token (0600).
	BootstrapKubeconfigPath = "/etc/kubernetes/bootstrap-kubelet.conf"
	// BootstrapSentinelPath is Cluster API's bootstrap success sentinel,
	// touched after a successful join when the config asks for it.
	BootstrapSentinelPath = "/run/cluster-api/bootstrap-success.complete"
	// KubeconfigPath is the kubelet's kubeconfig after the TLS bootstrap.
	KubeconfigPath = "/etc/kubernetes/kubelet.conf"

	// DefaultArch is the architecture when none is given.
	DefaultArch = "amd64"
	// DefaultClusterDomain is the cluster's DNS domain when none is given (kubeadm's default).
	DefaultClusterDomain = "cluster.local"
	// CloudProviderExternal is the cloud provider of a kubelet whose cloud is run
	// by a cloud-controller-manager; from kubelet 1.29 the only one.
	CloudProviderExternal = "external"
)

// DefaultSandboxImage is containerd's pause image for a kubelet version: the
// one its minor's kubeadm uses (internal/kubeversions); "" for a version
// provision does not know (validation refuses it).
func DefaultSandboxImage(kubeletVersion string) string {
	r, err := kubeversions.For(kubeletVersion)
	if err != nil {
		return ""
	}
	return r.PauseImage
}
