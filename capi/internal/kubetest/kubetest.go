// Package kubetest starts a real kube-apiserver and etcd for the bootstrap
// provider's tests with controller-runtime's envtest: the binaries are the
// ones hack/build-kube.sh builds from the Go module proxy into provision's
// test cache (envtest's own download host is never used), Cluster API's CRDs
// come from the module cache (sigs.k8s.io/cluster-api at CAPIVersion), and
// provision's CRDs and manifests from capi/config. A missing binary or CRD is
// an error: the tests fail, they never skip.
package kubetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/provision-dev/provision/capi/internal/controller"
	"github.com/provision-dev/provision/internal/testenv"
)

const (
	// KubeVersion is the API server's version: the e2e cluster's.
	KubeVersion = "v1.37.2"
	// CAPIVersion is the Cluster API release whose CRDs are installed; its api
	// module is the one capi/go.mod requires.
	CAPIVersion = "v1.14.2"
	// ControllerNamespace and ControllerServiceAccount are the controller's
	// identity in capi/config.
	ControllerNamespace      = "provision-bootstrap-system"
	ControllerServiceAccount = "provision-bootstrap-controller"
)

// Env is a running API server with every CRD and provision's manifests installed.
type Env struct {
	env *envtest.Environment
	// Admin is the API server's admin config; Client its client (no cache).
	Admin  *rest.Config
	Client client.Client
	// AdminKubeconfig is the admin kubeconfig: a test's "workload cluster"
	// (<cluster>-kubeconfig) is this same API server.
	AdminKubeconfig []byte
	// Controller is the config of the controller's ServiceAccount, bound by
	// capi/config/rbac: tests run the controller with exactly those rights.
	Controller *rest.Config
	// Kubectl is the kubectl of KubeVersion.
	Kubectl string
	// Root is the repository's root.
	Root string
}

// Start starts etcd and kube-apiserver, installs the CRDs and applies
// capi/config/default.
func Start() (*Env, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	if err := binaries(root); err != nil {
		return nil, err
	}
	crds, err := capiCRDs()
	if err != nil {
		return nil, err
	}
	e := &Env{Root: root, Kubectl: os.Getenv("TEST_ASSET_KUBECTL")}
	e.env = &envtest.Environment{
		CRDDirectoryPaths:     append(crds, filepath.Join(root, "capi", "config", "crd", "bases")),
		ErrorIfCRDPathMissing: true,
	}
	// The kubelet's TLS bootstrap authenticates with bootstrap tokens: the
	// tests check that the minted token authenticates.
	e.env.ControlPlane.GetAPIServer().Configure().Append("enable-bootstrap-token-auth", "true")
	if e.Admin, err = e.env.Start(); err != nil {
		return nil, fmt.Errorf("envtest: start kube-apiserver %s and etcd: %w", KubeVersion, err)
	}
	e.AdminKubeconfig = e.env.KubeConfig
	scheme, err := controller.Scheme()
	if err == nil {
		err = apiextensionsv1.AddToScheme(scheme) // tests read the CRDs' contract labels
	}
	if err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	if e.Client, err = client.New(e.Admin, client.Options{Scheme: scheme}); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	if err := e.applyManifests(); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	if e.Controller, err = e.serviceAccountConfig(ControllerNamespace, ControllerServiceAccount); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	return e, nil
}

// Stop stops the API server and etcd.
func (e *Env) Stop() error { return e.env.Stop() }

// Kubeconfig returns a kubeconfig for cfg (client certificate or bearer token).
func Kubeconfig(cfg *rest.Config) ([]byte, error) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "user"}
	kc.CurrentContext = "envtest"
	return clientcmd.Write(*kc)
}

// applyManifests applies `kubectl kustomize capi/config/default` (CRDs, RBAC,
// the Deployment) to the API server, which validates every object.
func (e *Env) applyManifests() error {
	kc, err := Kubeconfig(e.Admin)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kcPath := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kcPath, kc, 0o600); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Kubectl, "--kubeconfig", kcPath, "apply", "--server-side", "--force-conflicts", "-k", filepath.Join(e.Root, "capi", "config", "default"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl apply -k capi/config/default: %w\n%s", err, out)
	}
	return nil
}

// serviceAccountConfig returns a config authenticating as the ServiceAccount
// with a one-hour token (TokenRequest).
func (e *Env) serviceAccountConfig(ns, name string) (*rest.Config, error) {
	cs, err := kubernetes.NewForConfig(e.Admin)
	if err != nil {
		return nil, err
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token for ServiceAccount %s/%s: %w", ns, name, err)
	}
	cfg := rest.AnonymousClientConfig(e.Admin)
	cfg.BearerToken = tr.Status.Token
	return cfg, nil
}

// repoRoot is the directory holding hack/build-kube.sh, above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "build-kube.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("hack/build-kube.sh not found above the working directory")
		}
		dir = parent
	}
}

// binaries runs hack/build-kube.sh KubeVersion, which builds kube-apiserver,
// kubectl and etcd into the test cache once and checks their versions on
// every later run, and points envtest at them (TEST_ASSET_*).
func binaries(root string) error {
	cache := os.Getenv("PROVISION_TEST_CACHE")
	if cache == "" {
		cache = testenv.DefaultCacheDir
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "hack", "build-kube.sh"), KubeVersion)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PROVISION_TEST_CACHE="+cache, "ETCD_VERSION="+testenv.EtcdVersion, "CRICTL_VERSION="+testenv.CrictlVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("hack/build-kube.sh %s: %w\n%s", KubeVersion, err, out)
	}
	assets := map[string]string{
		"TEST_ASSET_KUBE_APISERVER": filepath.Join(cache, "kube", KubeVersion, "kube-apiserver"),
		"TEST_ASSET_KUBECTL":        filepath.Join(cache, "kube", KubeVersion, "kubectl"),
		"TEST_ASSET_ETCD":           filepath.Join(cache, "etcd", testenv.EtcdVersion, "etcd"),
	}
	for k, p := range assets {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s: %w (hack/build-kube.sh should have built it)", k, err)
		}
		os.Setenv(k, p)
	}
	return nil
}

// capiCRDs returns Cluster API's Cluster, Machine, MachinePool and MachineDeployment CRDs from
// the module cache (downloaded through the Go module proxy if missing).
func capiCRDs() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", "sigs.k8s.io/cluster-api@"+CAPIVersion)
	cmd.Dir = os.TempDir() // outside any module: no go.mod is read or changed
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go mod download sigs.k8s.io/cluster-api@%s: %w\n%s%s", CAPIVersion, err, out, stderr.Bytes())
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return nil, fmt.Errorf("go mod download sigs.k8s.io/cluster-api@%s: no directory (%v %s)", CAPIVersion, err, mod.Error)
	}
	var files []string
	for _, n := range []string{"clusters", "machines", "machinepools", "machinedeployments"} {
		p := filepath.Join(mod.Dir, "core", "config", "crd", "bases", "cluster.x-k8s.io_"+n+".yaml")
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("the Cluster API CRD: %w", err)
		}
		files = append(files, p)
	}
	return files, nil
}
