// Package v1alpha1 is the API of provision's Cluster API bootstrap provider,
// group bootstrap.provision.dev: a ProvisionConfig is the userdata request of
// one Machine (or one MachinePool), a ProvisionConfigTemplate the one a
// MachineDeployment stamps out per Machine.
//
// The spec is provision's GenerateConfig (github.com/provision-dev/provision/api/v1alpha1)
// minus what the cluster supplies: the kubelet version (Machine.spec.version),
// the API server (Cluster.spec.controlPlaneEndpoint), the CA (Secret <cluster>-ca),
// the bootstrap token (minted per config in the workload cluster), the
// cluster DNS (Cluster.spec.clusterNetwork, unless the spec sets it) and the
// hostname (the Machine's name, unless spec.hostname is None). The controller
// renders it with generate.Render into the Secret named in status.dataSecretName.
//
// +kubebuilder:object:generate=true
// +groupName=bootstrap.provision.dev
package v1alpha1
