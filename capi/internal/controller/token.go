package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// DefaultTokenTTL is how long a bootstrap token lives unless refreshed (CABPK's default).
	DefaultTokenTTL = 15 * time.Minute
	// DefaultTokenGroup is the token's extra group: kubeadm's, whose RBAC lets a
	// node create CSRs and have them approved.
	DefaultTokenGroup = "system:bootstrappers:kubeadm:default-node-token"
	// tokenDescription marks the token Secrets this controller creates.
	tokenDescription = "bootstrap token of provision-bootstrap-controller"
)

// token is a freshly generated bootstrap token. Its String is the secret:
// it goes into the userdata and the workload's token Secret, nowhere else.
type token struct {
	ID, secret string
}

func newToken() (token, error) {
	s, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		return token{}, fmt.Errorf("generate bootstrap token: %w", err)
	}
	m := bootstraputil.BootstrapTokenRegexp.FindStringSubmatch(s)
	if len(m) != 3 {
		return token{}, fmt.Errorf("generated bootstrap token is not of the form %s", bootstrapapi.BootstrapTokenPattern)
	}
	return token{ID: m[1], secret: m[2]}, nil
}

func (t token) String() string { return bootstraputil.TokenFromIDAndSecret(t.ID, t.secret) }

func tokenKey(id string) client.ObjectKey {
	return client.ObjectKey{Namespace: metav1.NamespaceSystem, Name: bootstraputil.BootstrapTokenSecretName(id)}
}

// createToken creates kube-system/bootstrap-token-<id> in the workload cluster:
// authentication usage only (provision's nodes get the CA in their userdata,
// so no discovery signing), the group, and expiration now + ttl.
func createToken(ctx context.Context, c client.Client, t token, group string, expires time.Time) error {
	key := tokenKey(t.ID)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace},
		Type:       bootstrapapi.SecretTypeBootstrapToken,
		Data: map[string][]byte{
			bootstrapapi.BootstrapTokenIDKey:               []byte(t.ID),
			bootstrapapi.BootstrapTokenSecretKey:           []byte(t.secret),
			bootstrapapi.BootstrapTokenExpirationKey:       []byte(expires.UTC().Format(time.RFC3339)),
			bootstrapapi.BootstrapTokenUsageAuthentication: []byte("true"),
			bootstrapapi.BootstrapTokenExtraGroupsKey:      []byte(group),
			bootstrapapi.BootstrapTokenDescriptionKey:      []byte(tokenDescription),
		},
	}
	if err := c.Create(ctx, s); err != nil {
		return fmt.Errorf("create bootstrap token %s in the workload cluster: %w", key.Name, err)
	}
	return nil
}

// extendToken sets the token's expiration; it returns a NotFound error if the
// token is gone (expired and cleaned, or deleted).
func extendToken(ctx context.Context, c client.Client, id string, expires time.Time) error {
	s := &corev1.Secret{}
	if err := c.Get(ctx, tokenKey(id), s); err != nil {
		return err
	}
	orig := s.DeepCopy()
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	s.Data[bootstrapapi.BootstrapTokenExpirationKey] = []byte(expires.UTC().Format(time.RFC3339))
	return c.Patch(ctx, s, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
}

// deleteToken deletes the token; a token already gone is fine.
func deleteToken(ctx context.Context, c client.Client, id string) error {
	key := tokenKey(id)
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}
	if err := c.Delete(ctx, s); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete bootstrap token %s in the workload cluster: %w", key.Name, err)
	}
	return nil
}
