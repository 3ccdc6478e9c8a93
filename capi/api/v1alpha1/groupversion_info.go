package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every type of this package.
	GroupVersion = schema.GroupVersion{Group: "bootstrap.provision.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&ProvisionConfig{}, &ProvisionConfigList{},
		&ProvisionConfigTemplate{}, &ProvisionConfigTemplateList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
