package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/provision-dev/provision/api/v1alpha1"
	bootstrapv1 "github.com/provision-dev/provision/capi/api/v1alpha1"
	"github.com/provision-dev/provision/capi/internal/userdata"
)

// The ConfigMaps and Secrets spec.containerd.registries references are read
// past the cache (APIReader): the manager caches only Cluster API's labelled
// Secrets, never every Secret or ConfigMap of the management cluster.
//
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get

// errRegistryReference is a referenced object or key that is missing: the
// config waits for it (the objects are not watched: looked at again after
// waitRequeue). Its message names the object and key, never a value.
type errRegistryReference struct{ error }

// registryInputs reads, for each host of spec.containerd.registries, the CA
// of caCertFrom and the credentials of credentialsSecretRef from the config's
// namespace. The values are secrets: no error, log or status quotes them.
func registryInputs(ctx context.Context, r client.Reader, cfg *bootstrapv1.ProvisionConfig) (map[string]userdata.RegistryInputs, error) {
	regs := cfg.Spec.Containerd.Registries
	if len(regs) == 0 {
		return nil, nil
	}
	out := map[string]userdata.RegistryInputs{}
	var missing []error
	for _, h := range slices.Sorted(maps.Keys(regs)) {
		reg, field := regs[h], "spec.containerd.registries["+h+"]"
		var in userdata.RegistryInputs
		if src := reg.CACertFrom; src != nil {
			var ca []byte
			var err error
			switch {
			case src.ConfigMapKeyRef != nil:
				ca, err = configMapKey(ctx, r, cfg.Namespace, *src.ConfigMapKeyRef)
			case src.SecretKeyRef != nil:
				ca, err = secretKeys(ctx, r, cfg.Namespace, src.SecretKeyRef.Name, src.SecretKeyRef.Key)
			default:
				err = errRegistryReference{errors.New("names neither configMapKeyRef nor secretKeyRef")}
			}
			if err != nil {
				missing = append(missing, fmt.Errorf("%s.caCertFrom: %w", field, err))
			}
			in.CACert = string(ca)
		}
		if ref := reg.CredentialsSecretRef; ref != nil {
			user, pass, token := ref.Keys()
			var vals []byte
			var err error
			if token != "" {
				vals, err = secretKeys(ctx, r, cfg.Namespace, ref.Name, token)
				in.Auth.IdentityToken = string(vals)
			} else {
				var s *corev1.Secret
				s, err = getSecret(ctx, r, cfg.Namespace, ref.Name)
				if err == nil {
					var u, p []byte
					u, err = key(s.Data, "Secret", ref.Name, user)
					if err == nil {
						p, err = key(s.Data, "Secret", ref.Name, pass)
					}
					in.Auth.Username, in.Auth.Password = string(u), string(p)
				}
			}
			if err != nil {
				missing = append(missing, fmt.Errorf("%s.credentialsSecretRef: %w", field, err))
			}
		}
		out[h] = in
	}
	if len(missing) == 0 {
		return out, nil
	}
	err := errors.Join(missing...)
	for _, e := range missing {
		if !errors.As(e, new(errRegistryReference)) {
			return nil, err // an API error: retried with backoff
		}
	}
	return nil, errRegistryReference{err}
}

func getSecret(ctx context.Context, r client.Reader, ns, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s)
	switch {
	case apierrors.IsNotFound(err):
		return nil, errRegistryReference{fmt.Errorf("secret %s not found", name)}
	case err != nil:
		return nil, fmt.Errorf("get Secret %s: %w", name, err)
	}
	return s, nil
}

// secretKeys reads key k of Secret name.
func secretKeys(ctx context.Context, r client.Reader, ns, name, k string) ([]byte, error) {
	s, err := getSecret(ctx, r, ns, name)
	if err != nil {
		return nil, err
	}
	return key(s.Data, "Secret", name, k)
}

// configMapKey reads key ref.Key of ConfigMap ref.Name (data, else binaryData).
func configMapKey(ctx context.Context, r client.Reader, ns string, ref bootstrapv1.KeyRef) ([]byte, error) {
	cm := &corev1.ConfigMap{}
	err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, cm)
	switch {
	case apierrors.IsNotFound(err):
		return nil, errRegistryReference{fmt.Errorf("ConfigMap %s not found", ref.Name)}
	case err != nil:
		return nil, fmt.Errorf("get ConfigMap %s: %w", ref.Name, err)
	}
	if v, ok := cm.Data[ref.Key]; ok {
		return key(map[string][]byte{ref.Key: []byte(v)}, "ConfigMap", ref.Name, ref.Key)
	}
	return key(cm.BinaryData, "ConfigMap", ref.Name, ref.Key)
}

// key is data[k], refused when missing or empty; the error names the object
// and the key, never a value.
func key(data map[string][]byte, kind, name, k string) ([]byte, error) {
	v, ok := data[k]
	if !ok || len(v) == 0 {
		return nil, errRegistryReference{fmt.Errorf("%s %s has no key %s (or it is empty)", kind, name, k)}
	}
	if len(v) > v1alpha1.MaxFileSize {
		return nil, errRegistryReference{fmt.Errorf("%s %s key %s is larger than %d bytes", kind, name, k, v1alpha1.MaxFileSize)}
	}
	return v, nil
}
