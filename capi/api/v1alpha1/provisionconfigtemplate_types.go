package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
)

// ProvisionConfigTemplateSpec is the template a MachineDeployment, MachineSet
// or ClusterClass stamps a ProvisionConfig from.
type ProvisionConfigTemplateSpec struct {
	// template is the ProvisionConfig each Machine gets.
	// +required
	Template ProvisionConfigTemplateResource `json:"template,omitzero"`
}

// ProvisionConfigTemplateResource is the ProvisionConfig a template creates.
type ProvisionConfigTemplateResource struct {
	// metadata are the labels and annotations the ProvisionConfig gets.
	// +optional
	ObjectMeta clusterv1.ObjectMeta `json:"metadata,omitempty,omitzero"`
	// spec is the ProvisionConfig's spec.
	// +required
	Spec ProvisionConfigSpec `json:"spec,omitzero"`
}

// ProvisionConfigTemplate is a ProvisionConfig template for MachineDeployments,
// MachineSets and ClusterClasses.
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=provisionconfigtemplates,scope=Namespaced,categories=cluster-api
// +kubebuilder:storageversion
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta1=v1alpha1"
// +kubebuilder:metadata:labels="cluster.x-k8s.io/v1beta2=v1alpha1"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
type ProvisionConfigTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec holds the template.
	// +required
	Spec ProvisionConfigTemplateSpec `json:"spec,omitzero"`
}

// ProvisionConfigTemplateList is a list of ProvisionConfigTemplates.
// +kubebuilder:object:root=true
type ProvisionConfigTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ProvisionConfigTemplate `json:"items"`
}
