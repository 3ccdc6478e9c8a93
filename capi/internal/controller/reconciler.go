// Package controller is provision's Cluster API bootstrap provider: it
// reconciles a ProvisionConfig owned by a Machine or MachinePool into a
// bootstrap token in the workload cluster and a Secret with the userdata
// generate.Render produces, following Cluster API's bootstrap contract
// (v1beta1 and v1beta2).
package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bootstrapv1 "github.com/provision-dev/provision/capi/api/v1alpha1"
	"github.com/provision-dev/provision/capi/internal/userdata"
)

// waitRequeue is how often a config waiting for a Cluster Secret looks again
// (the Secrets are not watched).
const waitRequeue = 30 * time.Second

// Reconciler reconciles ProvisionConfigs.
type Reconciler struct {
	// Client is the manager's client (cached reads).
	Client client.Client
	// APIReader reads past the cache.
	APIReader client.Reader
	// Workload hands out the workload clusters' clients.
	Workload *WorkloadClients
	// TokenTTL is a bootstrap token's lifetime (DefaultTokenTTL if zero): a
	// Machine's token is extended while the node has not joined, a
	// MachinePool's replaced past half of it.
	TokenTTL time.Duration
	// TokenGroup is the token's extra group (DefaultTokenGroup if empty).
	TokenGroup string
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

func (r *Reconciler) ttl() time.Duration {
	if r.TokenTTL > 0 {
		return r.TokenTTL
	}
	return DefaultTokenTTL
}

func (r *Reconciler) group() string {
	if r.TokenGroup != "" {
		return r.TokenGroup
	}
	return DefaultTokenGroup
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile brings one ProvisionConfig's token, data Secret and status up to date.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	cfg := &bootstrapv1.ProvisionConfig{}
	if err := r.Client.Get(ctx, req.NamespacedName, cfg); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !cfg.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // the data Secret goes with it (owner reference); the token expires
	}
	orig := cfg.DeepCopy()
	res, err := r.reconcile(ctx, cfg)
	if err != nil && !created(cfg) {
		setCondition(cfg, bootstrapv1.DataSecretAvailableCondition, false, bootstrapv1.ErrorReason, err.Error())
	}
	if !equality.Semantic.DeepEqual(orig.Status, cfg.Status) {
		if perr := r.Client.Status().Patch(ctx, cfg, client.MergeFrom(orig)); perr != nil {
			err = errors.Join(err, fmt.Errorf("patch status: %w", perr))
		}
	}
	return res, err
}

func (r *Reconciler) reconcile(ctx context.Context, cfg *bootstrapv1.ProvisionConfig) (ctrl.Result, error) {
	o, err := getOwner(ctx, r.Client, cfg)
	if err != nil {
		return ctrl.Result{}, err
	}
	if o == nil {
		waiting(cfg, bootstrapv1.WaitingForOwnerReason, "no Machine or MachinePool owns the config yet")
		return ctrl.Result{}, nil
	}
	clusterName := cfg.Labels[clusterv1.ClusterNameLabel]
	if clusterName == "" {
		clusterName = o.clusterName
	}
	if clusterName == "" {
		waiting(cfg, bootstrapv1.WaitingForClusterReason, "neither the label "+clusterv1.ClusterNameLabel+" nor the owner names a Cluster")
		return ctrl.Result{}, nil
	}
	cluster := &clusterv1.Cluster{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cfg.Namespace, Name: clusterName}, cluster); err != nil {
		if apierrors.IsNotFound(err) {
			waiting(cfg, bootstrapv1.WaitingForClusterReason, "Cluster "+clusterName+" not found")
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("get Cluster %s: %w", clusterName, err)
	}
	if ptr.Deref(cluster.Spec.Paused, false) || hasPausedAnnotation(cluster) || hasPausedAnnotation(cfg) {
		setCondition(cfg, bootstrapv1.PausedCondition, true, bootstrapv1.PausedReason, "the Cluster or the ProvisionConfig is paused")
		return ctrl.Result{}, nil
	}
	setCondition(cfg, bootstrapv1.PausedCondition, false, bootstrapv1.NotPausedReason, "")

	// After a move (clusterctl move, backup/restore) the status is lost but the
	// owner still names the data Secret: adopt it instead of minting new data.
	if cfg.Status.DataSecretName == "" && o.dataSecretName != nil && *o.dataSecretName != "" {
		markCreated(cfg, *o.dataSecretName)
		cfg.Status.ObservedGeneration = cfg.Generation
		return ctrl.Result{}, nil
	}

	s := &scope{cfg: cfg, owner: o, cluster: cluster}
	switch {
	case !created(cfg):
		return r.render(ctx, s)
	case o.joined:
		cfg.Status.ObservedGeneration = cfg.Generation // a new spec changes nothing on a joined node
		return r.deleteToken(ctx, s)
	case cfg.Status.ObservedGeneration != cfg.Generation:
		return r.render(ctx, s) // the spec changed before the node joined: new data, new token
	default:
		return r.keepToken(ctx, s)
	}
}

// scope is what one reconcile of a config works on.
type scope struct {
	cfg     *bootstrapv1.ProvisionConfig
	owner   *owner
	cluster *clusterv1.Cluster
}

func (s *scope) clusterKey() types.NamespacedName {
	return types.NamespacedName{Namespace: s.cluster.Namespace, Name: s.cluster.Name}
}

// render mints a token, renders the userdata with it and writes the data
// Secret; the token is created in the workload cluster only for valid input.
func (r *Reconciler) render(ctx context.Context, s *scope) (ctrl.Result, error) {
	cfg, cluster := s.cfg, s.cluster
	if !ptr.Deref(cluster.Status.Initialization.InfrastructureProvisioned, false) {
		waiting(cfg, bootstrapv1.WaitingForInfrastructureReason, "the Cluster's infrastructure is not provisioned yet")
		return ctrl.Result{}, nil
	}
	if !ptr.Deref(cluster.Status.Initialization.ControlPlaneInitialized, false) || !cluster.Spec.ControlPlaneEndpoint.IsValid() {
		waiting(cfg, bootstrapv1.WaitingForControlPlaneReason, "the Cluster's control plane is not initialized or has no endpoint yet")
		return ctrl.Result{}, nil
	}
	ca, err := clusterSecret(ctx, r.Client, r.APIReader, s.clusterKey(), "ca")
	if err != nil {
		return r.waitForSecret(cfg, err)
	}
	if len(ca.Data[corev1.TLSCertKey]) == 0 {
		waiting(cfg, bootstrapv1.WaitingForClusterSecretReason, "secret "+ca.Name+" has no key "+corev1.TLSCertKey)
		return ctrl.Result{RequeueAfter: waitRequeue}, nil
	}
	regs, err := registryInputs(ctx, r.APIReader, cfg)
	if err != nil {
		var ref errRegistryReference
		if errors.As(err, &ref) {
			waiting(cfg, bootstrapv1.WaitingForRegistryReferenceReason, ref.Error())
			return ctrl.Result{RequeueAfter: waitRequeue}, nil
		}
		return ctrl.Result{}, err
	}
	t, err := newToken()
	if err != nil {
		return ctrl.Result{}, err
	}
	in := userdata.Cluster{
		Registries:     regs,
		KubeletVersion: s.owner.version,
		APIServerURL:   "https://" + net.JoinHostPort(cluster.Spec.ControlPlaneEndpoint.Host, strconv.Itoa(int(cluster.Spec.ControlPlaneEndpoint.Port))),
		CACert:         ca.Data[corev1.TLSCertKey],
		Token:          t.String(),
	}
	if !s.owner.isPool() && cfg.Spec.Hostname != bootstrapv1.HostnameNone {
		in.Hostname = s.owner.name
	}
	network := cluster.Spec.ClusterNetwork
	in.ClusterDNS, in.ClusterDomain, err = userdata.ClusterNetworkDNS(network.Services.CIDRBlocks, network.ServiceDomain)
	in.PodCIDRs, in.ServiceCIDRs = slices.Clone(network.Pods.CIDRBlocks), slices.Clone(network.Services.CIDRBlocks)
	if perr := r.proxyURLs(ctx, cfg, &in); perr != nil {
		var missing errProxySecret
		if errors.As(perr, &missing) {
			waiting(cfg, bootstrapv1.WaitingForProxySecretReason, perr.Error())
			return ctrl.Result{RequeueAfter: waitRequeue}, nil
		}
		return ctrl.Result{}, perr
	}
	var data userdata.Data
	if err == nil {
		data, err = userdata.Render(cfg.Spec, in)
	}
	var invalid *userdata.InvalidError
	if errors.As(err, &invalid) {
		setCondition(cfg, bootstrapv1.DataSecretAvailableCondition, false, bootstrapv1.InvalidSpecReason, invalid.Error())
		if !created(cfg) {
			setCondition(cfg, bootstrapv1.ReadyCondition, false, bootstrapv1.InvalidSpecReason, "the spec is invalid: see DataSecretAvailable")
		}
		cfg.Status.ObservedGeneration = cfg.Generation
		return ctrl.Result{}, nil // a new spec is a new generation, and a new reconcile
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	wc, err := r.Workload.Get(ctx, s.clusterKey())
	if err != nil {
		return r.waitForSecret(cfg, err)
	}
	expires := r.now().Add(r.ttl()).Truncate(time.Second)
	if err := createToken(ctx, wc, t, r.group(), expires); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.writeDataSecret(ctx, cfg, cluster.Name, data); err != nil {
		return ctrl.Result{}, err // the token expires unused
	}
	markCreated(cfg, cfg.Name)
	if len(data.Warnings) > 0 {
		setCondition(cfg, bootstrapv1.DataSecretAvailableCondition, true, bootstrapv1.DataSecretCreatedReason, "warnings: "+strings.Join(data.Warnings, "; "))
	}
	cfg.Status.ObservedGeneration = cfg.Generation
	setToken(cfg, t.ID, expires)
	ctrl.LoggerFrom(ctx).Info("wrote userdata", "secret", cfg.Name, "format", data.Format, "bytes", len(data.Value), "tokenID", t.ID, "owner", s.owner.kind+"/"+s.owner.name, "warnings", data.Warnings)
	return ctrl.Result{RequeueAfter: max(r.nextCheck(s), time.Second)}, nil // 0 would mean no requeue
}

// keepToken keeps a rendered config's token usable until its node joins: a
// Machine's is extended when less than 5/6 of the TTL is left (CABPK's rule),
// a MachinePool's replaced, with new data, past half of it. A token that is
// gone before the node joined is replaced too.
func (r *Reconciler) keepToken(ctx context.Context, s *scope) (ctrl.Result, error) {
	cfg := s.cfg
	if cfg.Status.BootstrapTokenID == "" || cfg.Status.BootstrapTokenExpiration == nil {
		return ctrl.Result{}, nil // adopted after a move: the token is not ours to track
	}
	if d := r.nextCheck(s); d > 0 {
		return ctrl.Result{RequeueAfter: d}, nil
	}
	if s.owner.isPool() {
		ctrl.LoggerFrom(ctx).Info("rotating the MachinePool's bootstrap token", "oldTokenID", cfg.Status.BootstrapTokenID)
		return r.render(ctx, s) // the old token expires on its own: machines booting now may still use it
	}
	wc, err := r.Workload.Get(ctx, s.clusterKey())
	if err != nil {
		return ctrl.Result{}, err
	}
	expires := r.now().Add(r.ttl()).Truncate(time.Second)
	if err := extendToken(ctx, wc, cfg.Status.BootstrapTokenID, expires); err != nil {
		if apierrors.IsNotFound(err) {
			ctrl.LoggerFrom(ctx).Info("bootstrap token gone before the node joined: minting a new one", "oldTokenID", cfg.Status.BootstrapTokenID)
			return r.render(ctx, s)
		}
		return ctrl.Result{}, fmt.Errorf("extend bootstrap token %s: %w", cfg.Status.BootstrapTokenID, err)
	}
	setToken(cfg, cfg.Status.BootstrapTokenID, expires)
	return ctrl.Result{RequeueAfter: max(r.nextCheck(s), time.Second)}, nil // 0 would mean no requeue
}

// nextCheck is how long until the config's token must be extended or rotated
// (0: now), at most TTL/3 so a lost requeue costs little.
func (r *Reconciler) nextCheck(s *scope) time.Duration {
	exp := s.cfg.Status.BootstrapTokenExpiration
	if exp == nil {
		return 0
	}
	keep := r.ttl() * 5 / 6 // a Machine's token is extended below this much life left
	if s.owner.isPool() {
		keep = r.ttl() / 2
	}
	d := exp.Sub(r.now()) - keep
	if d <= 0 {
		return 0
	}
	return min(d, r.ttl()/3)
}

// deleteToken deletes a joined node's token: it has done its work, and the
// workload cluster may not run the token cleaner.
func (r *Reconciler) deleteToken(ctx context.Context, s *scope) (ctrl.Result, error) {
	cfg := s.cfg
	if cfg.Status.BootstrapTokenID == "" {
		return ctrl.Result{}, nil
	}
	wc, err := r.Workload.Get(ctx, s.clusterKey())
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := deleteToken(ctx, wc, cfg.Status.BootstrapTokenID); err != nil {
		return ctrl.Result{}, err
	}
	ctrl.LoggerFrom(ctx).Info("node joined: deleted its bootstrap token", "tokenID", cfg.Status.BootstrapTokenID)
	cfg.Status.BootstrapTokenID, cfg.Status.BootstrapTokenExpiration = "", nil
	setCondition(cfg, bootstrapv1.BootstrapTokenAvailableCondition, false, bootstrapv1.TokenDeletedReason, "the node joined; its bootstrap token was deleted")
	return ctrl.Result{}, nil
}

// writeDataSecret creates or updates the Secret <config name>: the userdata
// under value, its format, the cluster-name label and the config as controller.
func (r *Reconciler) writeDataSecret(ctx context.Context, cfg *bootstrapv1.ProvisionConfig, clusterName string, d userdata.Data) error {
	want := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: cfg.Name, Namespace: cfg.Namespace,
			Labels: map[string]string{clusterv1.ClusterNameLabel: clusterName},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: bootstrapv1.GroupVersion.String(), Kind: "ProvisionConfig",
				Name: cfg.Name, UID: cfg.UID, Controller: ptr.To(true),
			}},
		},
		Type: clusterv1.ClusterSecretType,
		Data: map[string][]byte{bootstrapv1.DataSecretValueKey: d.Value, bootstrapv1.DataSecretFormatKey: []byte(d.Format)},
	}
	err := r.Client.Create(ctx, want)
	if err == nil {
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create data secret %s: %w", cfg.Name, err)
	}
	got := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(want), got); err != nil {
		return fmt.Errorf("get data secret %s: %w", cfg.Name, err)
	}
	if got.Type != want.Type {
		return fmt.Errorf("data secret %s exists with type %s, not %s: delete it", cfg.Name, got.Type, want.Type)
	}
	if got.Labels == nil {
		got.Labels = map[string]string{}
	}
	got.Labels[clusterv1.ClusterNameLabel] = clusterName
	got.Data = want.Data
	refs := got.OwnerReferences[:0]
	for _, ref := range got.OwnerReferences {
		if !ptr.Deref(ref.Controller, false) {
			refs = append(refs, ref)
		}
	}
	got.OwnerReferences = append(refs, want.OwnerReferences...)
	if err := r.Client.Update(ctx, got); err != nil {
		return fmt.Errorf("update data secret %s: %w", cfg.Name, err)
	}
	return nil
}

func (r *Reconciler) waitForSecret(cfg *bootstrapv1.ProvisionConfig, err error) (ctrl.Result, error) {
	var missing errClusterSecret
	if errors.As(err, &missing) {
		waiting(cfg, bootstrapv1.WaitingForClusterSecretReason, missing.Error())
		return ctrl.Result{RequeueAfter: waitRequeue}, nil
	}
	return ctrl.Result{}, err
}

func created(cfg *bootstrapv1.ProvisionConfig) bool {
	return ptr.Deref(cfg.Status.Initialization.DataSecretCreated, false)
}

func hasPausedAnnotation(o metav1.Object) bool {
	_, ok := o.GetAnnotations()[clusterv1.PausedAnnotation]
	return ok
}

// waiting records what a config without data waits for (a config that has
// data keeps its Ready condition).
func waiting(cfg *bootstrapv1.ProvisionConfig, reason, msg string) {
	if created(cfg) {
		return
	}
	setCondition(cfg, bootstrapv1.DataSecretAvailableCondition, false, reason, msg)
	setCondition(cfg, bootstrapv1.ReadyCondition, false, reason, msg)
}

// markCreated sets the contract's fields for both versions: dataSecretName,
// initialization.dataSecretCreated (v1beta2) and ready (v1beta1).
func markCreated(cfg *bootstrapv1.ProvisionConfig, secret string) {
	cfg.Status.DataSecretName = secret
	cfg.Status.Initialization.DataSecretCreated = ptr.To(true)
	cfg.Status.Ready = true
	setCondition(cfg, bootstrapv1.DataSecretAvailableCondition, true, bootstrapv1.DataSecretCreatedReason, "")
	setCondition(cfg, bootstrapv1.ReadyCondition, true, bootstrapv1.DataSecretCreatedReason, "")
}

func setToken(cfg *bootstrapv1.ProvisionConfig, id string, expires time.Time) {
	cfg.Status.BootstrapTokenID = id
	cfg.Status.BootstrapTokenExpiration = &metav1.Time{Time: expires}
	setCondition(cfg, bootstrapv1.BootstrapTokenAvailableCondition, true, bootstrapv1.TokenValidReason,
		"valid until "+expires.UTC().Format(time.RFC3339)+" unless extended")
}

func setCondition(cfg *bootstrapv1.ProvisionConfig, typ string, status bool, reason, msg string) {
	c := metav1.Condition{Type: typ, Status: metav1.ConditionFalse, Reason: reason, Message: msg, ObservedGeneration: cfg.Generation}
	if status {
		c.Status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&cfg.Status.Conditions, c)
}
