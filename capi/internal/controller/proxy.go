package controller

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bootstrapv1 "github.com/provision-dev/provision/capi/api/v1alpha1"
	"github.com/provision-dev/provision/capi/internal/userdata"
)

// errProxySecret is a proxy Secret (or key) that is missing or empty: the
// config waits for it. Its message names the Secret and key, never a value.
type errProxySecret struct{ error }

// proxyURLs reads the proxy URLs spec.proxy refers to, from Secrets in the
// config's namespace (past the cache: they carry no cluster-name label). The
// URLs may carry credentials: they go only into the userdata, never into an
// error, the status or a log line.
func (r *Reconciler) proxyURLs(ctx context.Context, cfg *bootstrapv1.ProvisionConfig, in *userdata.Cluster) error {
	p := cfg.Spec.Proxy
	if p == nil {
		return nil
	}
	for _, f := range []struct {
		field string
		src   *bootstrapv1.ProxyURLSource
		dst   *string
	}{{"spec.proxy.httpProxy", p.HTTPProxy, &in.HTTPProxy}, {"spec.proxy.httpsProxy", p.HTTPSProxy, &in.HTTPSProxy}} {
		if f.src == nil {
			continue
		}
		v, err := secretValue(ctx, r.Client, r.APIReader, cfg.Namespace, f.src.SecretKeyRef)
		if err != nil {
			return fmt.Errorf("%s: %w", f.field, err)
		}
		*f.dst = v
	}
	return nil
}

// secretValue reads one key of a Secret, trimmed: from the cache if the
// Secret is cached, else from the API server.
func secretValue(ctx context.Context, cached, direct client.Reader, namespace string, ref bootstrapv1.SecretKeySelector) (string, error) {
	key := client.ObjectKey{Namespace: namespace, Name: ref.Name}
	s := &corev1.Secret{}
	err := getCachedOrDirect(ctx, cached, direct, key, s)
	switch {
	case apierrors.IsNotFound(err):
		return "", errProxySecret{fmt.Errorf("secret %s not found", ref.Name)}
	case err != nil:
		return "", fmt.Errorf("get secret %s: %w", ref.Name, err)
	}
	v := strings.TrimSpace(string(s.Data[ref.Key]))
	if v == "" {
		return "", errProxySecret{fmt.Errorf("secret %s has no key %s, or it is empty", ref.Name, ref.Key)}
	}
	return v, nil
}
