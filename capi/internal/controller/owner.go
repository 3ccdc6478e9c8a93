package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bootstrapv1 "github.com/provision-dev/provision/capi/api/v1alpha1"
)

// owner is the Machine or MachinePool a config belongs to, reduced to what
// the reconciler reads.
type owner struct {
	kind           string // "Machine" or "MachinePool"
	name           string
	clusterName    string
	version        string  // the kubelet version
	dataSecretName *string // spec.bootstrap.dataSecretName (Cluster API copies ours there)
	joined         bool    // a Machine's status.nodeRef is set
}

func (o owner) isPool() bool { return o.kind == "MachinePool" }

// getOwner returns the config's owning Machine or MachinePool (an owner
// reference of group cluster.x-k8s.io), nil while there is none.
func getOwner(ctx context.Context, c client.Reader, cfg *bootstrapv1.ProvisionConfig) (*owner, error) {
	for _, ref := range cfg.OwnerReferences {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil || gv.Group != clusterv1.GroupVersion.Group {
			continue
		}
		key := client.ObjectKey{Namespace: cfg.Namespace, Name: ref.Name}
		switch ref.Kind {
		case "Machine":
			m := &clusterv1.Machine{}
			if err := c.Get(ctx, key, m); err != nil {
				if apierrors.IsNotFound(err) {
					return nil, nil
				}
				return nil, fmt.Errorf("get owner Machine %s: %w", ref.Name, err)
			}
			return &owner{kind: ref.Kind, name: m.Name, clusterName: m.Spec.ClusterName, version: m.Spec.Version,
				dataSecretName: m.Spec.Bootstrap.DataSecretName, joined: m.Status.NodeRef.Name != ""}, nil
		case "MachinePool":
			mp := &clusterv1.MachinePool{}
			if err := c.Get(ctx, key, mp); err != nil {
				if apierrors.IsNotFound(err) {
					return nil, nil
				}
				return nil, fmt.Errorf("get owner MachinePool %s: %w", ref.Name, err)
			}
			return &owner{kind: ref.Kind, name: mp.Name, clusterName: mp.Spec.ClusterName, version: mp.Spec.Template.Spec.Version,
				dataSecretName: mp.Spec.Template.Spec.Bootstrap.DataSecretName}, nil
		}
	}
	return nil, nil
}
