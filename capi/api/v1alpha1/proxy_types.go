package v1alpha1

// Proxy is the node's forward proxy for every download (setup's binary, the
// artifacts, apt/dnf), containerd and the kubelet. Its URLs may carry
// credentials, so they come from a Secret the controller reads; the rendered
// userdata writes them only to the node's 0600 /etc/provision/proxy.env. The
// controller adds the API server's host and the Cluster's pod and service
// CIDRs (spec.clusterNetwork) to noProxy.
// +kubebuilder:validation:MinProperties=1
type Proxy struct {
	// httpProxy is the proxy for http:// URLs,
	// http(s)://[user:password@]host[:port], read from a Secret.
	// +optional
	HTTPProxy *ProxyURLSource `json:"httpProxy,omitempty"`

	// httpsProxy is the proxy for https:// URLs, of the same form, read from a Secret.
	// +optional
	HTTPSProxy *ProxyURLSource `json:"httpsProxy,omitempty"`

	// noProxy is a comma-separated list of hosts, .domains, IPs and CIDRs
	// reached directly (no secret: given inline).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	NoProxy string `json:"noProxy,omitempty"`
}

// ProxyURLSource says where a proxy URL comes from.
type ProxyURLSource struct {
	// secretKeyRef selects the key of a Secret in the ProvisionConfig's
	// namespace whose value is the URL (surrounding whitespace is trimmed).
	// +required
	SecretKeyRef SecretKeySelector `json:"secretKeyRef,omitzero"`
}

// SecretKeySelector selects a key of a Secret in the ProvisionConfig's namespace.
type SecretKeySelector struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// key of the Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}
