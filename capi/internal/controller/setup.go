package controller

import (
	"context"
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	bootstrapv1 "github.com/provision-dev/provision/capi/api/v1alpha1"
)

// The controller's RBAC in the management cluster (config/rbac/role.yaml is
// generated from these lines by capi/hack/generate.sh). The workload
// clusters are reached with their <cluster>-kubeconfig.
//
// +kubebuilder:rbac:groups=bootstrap.provision.dev,resources=provisionconfigs,verbs=get;list;watch
// +kubebuilder:rbac:groups=bootstrap.provision.dev,resources=provisionconfigs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=cluster.x-k8s.io,resources=clusters;machines;machinepools,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Options tune the controller.
type Options struct {
	// MaxConcurrentReconciles is how many configs are reconciled at once.
	MaxConcurrentReconciles int
	// SkipNameValidation allows several controllers of this name in one process (tests).
	SkipNameValidation bool
}

// SetupWithManager registers the reconciler: it watches ProvisionConfigs, and
// maps Machines, MachinePools and Clusters to the configs they concern.
//
// MachinePools are watched only if their CRD is installed when the manager
// is set up (Cluster API installs it with the MachinePool feature): a watch
// of a missing kind would keep the controller from starting.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager, opts Options) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named("provisionconfig").
		For(&bootstrapv1.ProvisionConfig{}, builder.WithPredicates(specOrMetaChanged())).
		Watches(&clusterv1.Machine{}, handler.EnqueueRequestsFromMapFunc(machineToConfig)).
		Watches(&clusterv1.Cluster{}, handler.EnqueueRequestsFromMapFunc(r.clusterToConfigs), builder.WithPredicates(clusterChanged())).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(opts.MaxConcurrentReconciles, 1), SkipNameValidation: &opts.SkipNameValidation})
	gk := schema.GroupKind{Group: clusterv1.GroupVersion.Group, Kind: "MachinePool"}
	switch _, err := mgr.GetRESTMapper().RESTMapping(gk, clusterv1.GroupVersion.Version); {
	case err == nil:
		b = b.Watches(&clusterv1.MachinePool{}, handler.EnqueueRequestsFromMapFunc(machinePoolToConfig))
	case meta.IsNoMatchError(err):
		mgr.GetLogger().Info("the MachinePool CRD is not installed: MachinePools are not watched (restart the controller after installing it)")
	default:
		return fmt.Errorf("look up the MachinePool kind: %w", err)
	}
	return b.Complete(r)
}

// specOrMetaChanged passes a config's creation and the updates that matter:
// spec (generation), labels, annotations (pause) and owners; not the
// controller's own status writes.
func specOrMetaChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld, e.ObjectNew
		return o.GetGeneration() != n.GetGeneration() ||
			!reflect.DeepEqual(o.GetLabels(), n.GetLabels()) ||
			!reflect.DeepEqual(o.GetAnnotations(), n.GetAnnotations()) ||
			!equality.Semantic.DeepEqual(o.GetOwnerReferences(), n.GetOwnerReferences())
	}}
}

// clusterChanged passes Cluster updates a config waits for: pause, the
// endpoint, initialization.
func clusterChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, okO := e.ObjectOld.(*clusterv1.Cluster)
		n, okN := e.ObjectNew.(*clusterv1.Cluster)
		if !okO || !okN {
			return true
		}
		return !equality.Semantic.DeepEqual(o.Spec.Paused, n.Spec.Paused) ||
			!reflect.DeepEqual(o.GetAnnotations(), n.GetAnnotations()) ||
			o.Spec.ControlPlaneEndpoint != n.Spec.ControlPlaneEndpoint ||
			!equality.Semantic.DeepEqual(o.Status.Initialization, n.Status.Initialization)
	}}
}

func isOurs(ref clusterv1.ContractVersionedObjectReference) bool {
	return ref.APIGroup == bootstrapv1.GroupVersion.Group && ref.Kind == "ProvisionConfig" && ref.Name != ""
}

func machineToConfig(_ context.Context, o client.Object) []reconcile.Request {
	m, ok := o.(*clusterv1.Machine)
	if !ok || !isOurs(m.Spec.Bootstrap.ConfigRef) {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: m.Namespace, Name: m.Spec.Bootstrap.ConfigRef.Name}}}
}

func machinePoolToConfig(_ context.Context, o client.Object) []reconcile.Request {
	mp, ok := o.(*clusterv1.MachinePool)
	if !ok || !isOurs(mp.Spec.Template.Spec.Bootstrap.ConfigRef) {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: mp.Namespace, Name: mp.Spec.Template.Spec.Bootstrap.ConfigRef.Name}}}
}

func (r *Reconciler) clusterToConfigs(ctx context.Context, o client.Object) []reconcile.Request {
	var list bootstrapv1.ProvisionConfigList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingLabels{clusterv1.ClusterNameLabel: o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list the Cluster's ProvisionConfigs", "cluster", o.GetName())
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, c := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&c)})
	}
	return out
}
