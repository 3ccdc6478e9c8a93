package v1alpha1

// Condition types of a ProvisionConfig.
const (
	// ReadyCondition is True once the data Secret exists; Cluster API mirrors it
	// into the Machine's BootstrapConfigReady condition.
	ReadyCondition = "Ready"
	// DataSecretAvailableCondition says whether the data Secret exists and, if
	// not, what it waits for or why the spec cannot be rendered (every field error).
	DataSecretAvailableCondition = "DataSecretAvailable"
	// BootstrapTokenAvailableCondition says whether the bootstrap token of
	// status.bootstrapTokenID exists in the workload cluster.
	BootstrapTokenAvailableCondition = "BootstrapTokenAvailable"
	// PausedCondition is True while the Cluster or the config is paused.
	PausedCondition = "Paused"
)

// Condition reasons of a ProvisionConfig.
const (
	// WaitingForOwnerReason: no Machine or MachinePool owns the config yet.
	WaitingForOwnerReason = "WaitingForOwner"
	// WaitingForClusterReason: the Cluster does not exist yet or names no Cluster.
	WaitingForClusterReason = "WaitingForCluster"
	// WaitingForInfrastructureReason: the Cluster's infrastructure is not provisioned.
	WaitingForInfrastructureReason = "WaitingForInfrastructure"
	// WaitingForControlPlaneReason: the control plane is not initialized or has no endpoint.
	WaitingForControlPlaneReason = "WaitingForControlPlane"
	// WaitingForClusterSecretReason: <cluster>-kubeconfig or <cluster>-ca is missing or unusable.
	WaitingForClusterSecretReason = "WaitingForClusterSecret"
	// WaitingForProxySecretReason: a Secret (or its key) spec.proxy refers to is missing or empty.
	WaitingForProxySecretReason = "WaitingForProxySecret"
	// WaitingForRegistryReferenceReason: a ConfigMap or Secret that
	// spec.containerd.registries references is missing or lacks the key.
	WaitingForRegistryReferenceReason = "WaitingForRegistryReference"
	// InvalidSpecReason: provision's validation refused the spec; the message lists every field error.
	InvalidSpecReason = "InvalidSpec"
	// DataSecretCreatedReason: the data Secret exists.
	DataSecretCreatedReason = "DataSecretCreated"
	// DataSecretNotCreatedReason: the data Secret does not exist yet.
	DataSecretNotCreatedReason = "DataSecretNotCreated"
	// TokenValidReason: the token exists and is refreshed while the node has not joined.
	TokenValidReason = "TokenValid"
	// TokenDeletedReason: the node joined and the token was deleted.
	TokenDeletedReason = "TokenDeleted"
	// PausedReason: the Cluster or the config is paused.
	PausedReason = "Paused"
	// NotPausedReason: reconciliation is not paused.
	NotPausedReason = "NotPaused"
	// ErrorReason: an API call failed; the controller retries.
	ErrorReason = "Error"
)

// Secret keys and values of the data Secret (the contract's value, and format
// by the convention CABPK and CAPD share).
const (
	// DataSecretValueKey holds the userdata.
	DataSecretValueKey = "value"
	// DataSecretFormatKey holds FormatCloudConfig or FormatIgnition.
	DataSecretFormatKey = "format"
	// FormatCloudConfig is the format value of cloud-init userdata.
	FormatCloudConfig = "cloud-config"
	// FormatIgnition is the format value of Ignition userdata.
	FormatIgnition = "ignition"
)
