package controller

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// WorkloadClients hands out one client per workload cluster, built from the
// Secret <cluster>-kubeconfig (key value) and rebuilt when that Secret changes.
type WorkloadClients struct {
	// Secrets reads the management cluster's Secrets (the manager's cache).
	Secrets client.Reader
	// APIReader reads past the cache (a Secret without the cluster-name label).
	APIReader client.Reader
	// QPS and Burst bound each workload client's requests.
	QPS   float32
	Burst int
	// WrapTransport, if set, wraps each workload client's transport (tests count requests).
	WrapTransport func(http.RoundTripper) http.RoundTripper

	mu      sync.Mutex
	clients map[types.NamespacedName]workloadClient
}

type workloadClient struct {
	resourceVersion string
	client          client.Client
}

// errClusterSecret is a missing or unusable <cluster>-kubeconfig or <cluster>-ca:
// the config waits for it.
type errClusterSecret struct{ err error }

func (e errClusterSecret) Error() string { return e.err.Error() }
func (e errClusterSecret) Unwrap() error { return e.err }

// Get returns the client of the workload cluster cluster.
func (w *WorkloadClients) Get(ctx context.Context, cluster types.NamespacedName) (client.Client, error) {
	s, err := clusterSecret(ctx, w.Secrets, w.APIReader, cluster, "kubeconfig")
	if err != nil {
		return nil, err
	}
	key := types.NamespacedName{Namespace: cluster.Namespace, Name: cluster.Name}
	w.mu.Lock()
	defer w.mu.Unlock()
	if c, ok := w.clients[key]; ok && c.resourceVersion == s.ResourceVersion {
		return c.client, nil
	}
	value := s.Data["value"]
	if len(value) == 0 {
		return nil, errClusterSecret{fmt.Errorf("secret %s has no key value", s.Name)}
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(value)
	if err != nil {
		// not wrapped: a parser's message may quote the document, credentials included
		return nil, errClusterSecret{fmt.Errorf("secret %s: value is not a usable kubeconfig", s.Name)}
	}
	cfg.QPS, cfg.Burst, cfg.Timeout = w.QPS, w.Burst, 30*time.Second
	cfg.UserAgent = "provision-bootstrap-controller"
	if w.WrapTransport != nil {
		cfg.Wrap(w.WrapTransport)
	}
	c, err := client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		return nil, fmt.Errorf("client for workload cluster %s: %w", key, err)
	}
	if w.clients == nil {
		w.clients = map[types.NamespacedName]workloadClient{}
	}
	w.clients[key] = workloadClient{resourceVersion: s.ResourceVersion, client: c}
	return c, nil
}

// clusterSecret reads the Cluster API Secret <cluster>-<purpose>: from the cache
// (Cluster API labels its Secrets with the cluster name), else from the API server.
func clusterSecret(ctx context.Context, cached, direct client.Reader, cluster types.NamespacedName, purpose string) (*corev1.Secret, error) {
	key := client.ObjectKey{Namespace: cluster.Namespace, Name: cluster.Name + "-" + purpose}
	s := &corev1.Secret{}
	err := getCachedOrDirect(ctx, cached, direct, key, s)
	switch {
	case apierrors.IsNotFound(err):
		return nil, errClusterSecret{fmt.Errorf("secret %s not found", key.Name)}
	case err != nil:
		return nil, fmt.Errorf("get secret %s: %w", key.Name, err)
	}
	return s, nil
}

// getCachedOrDirect reads key into obj from the cache, else (not found there:
// the cache may select by label) from the API server when direct is given.
func getCachedOrDirect(ctx context.Context, cached, direct client.Reader, key client.ObjectKey, obj client.Object) error {
	err := cached.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) && direct != nil {
		err = direct.Get(ctx, key, obj)
	}
	return err
}
