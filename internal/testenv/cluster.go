package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"
)

// APIServerPort is where kube-apiserver listens on ServerAddr.
const APIServerPort = "6443"

// BootstrapGroup is the extra group kubeadm gives its node bootstrap tokens;
// the RBAC bindings of StartCluster name it.
const BootstrapGroup = "system:bootstrappers:kubeadm:default-node-token"

// Cluster is etcd, kube-apiserver, kube-controller-manager and, if asked for,
// kube-scheduler started by the test inside its network namespace, as child
// processes stopped by PID at cleanup.
type Cluster struct {
	Version string
	// URL is the API server's https URL on ServerAddr.
	URL string
	// CACert is the cluster CA (PEM) and CACertFile a host file holding it.
	CACert     []byte
	CACertFile string
	// Client is an admin (system:masters) client dialling from inside the namespace.
	Client kubernetes.Interface
	// Config is Client's configuration (for the node proxy and log requests).
	Config *rest.Config
	// KubeDir holds the Kubernetes binaries (kubelet included).
	KubeDir string

	t     testing.TB
	ns    *NetNS
	dir   string
	procs []*process
	// admin is an admin kubeconfig (the controller-manager's credentials) for kubectl.
	admin string
}

// ClusterOptions are the optional parts of a test cluster.
type ClusterOptions struct {
	// Scheduler runs kube-scheduler (as system:kube-scheduler, the identity
	// kubeadm gives it), so that pods without a nodeName are scheduled and
	// taints and tolerations take effect. Its log is at verbosity 4, which
	// names the taint a pod does not tolerate.
	Scheduler bool
}

// SchedulerPort is where kube-scheduler serves /readyz on 127.0.0.1 in the namespace.
const SchedulerPort = "10259"

// StartCluster builds (or finds cached) the binaries of version, generates the
// PKI, starts etcd, kube-apiserver and kube-controller-manager inside ns, and
// waits until the API server is ready and the controller-manager signs: the
// bootstrapsigner has signed the cluster-info ConfigMap for a probe token.
// No scheduler runs: pods are bound by nodeName (RunPod).
func StartCluster(t testing.TB, ns *NetNS, version string) *Cluster {
	t.Helper()
	return StartClusterWith(t, ns, version, ClusterOptions{})
}

// StartClusterWith is StartCluster with options; with opts.Scheduler it also
// starts kube-scheduler and waits until it is ready.
func StartClusterWith(t testing.TB, ns *NetNS, version string, opts ClusterOptions) *Cluster {
	t.Helper()
	Require(t)
	kubeDir, etcdBin := KubeBinaries(t, version)
	done := Phase(t, "cluster start")
	defer done()
	dir := t.TempDir()
	c := &Cluster{Version: version, URL: "https://" + net.JoinHostPort(ServerAddr, APIServerPort), KubeDir: kubeDir, t: t, ns: ns, dir: dir}
	t.Cleanup(c.stop)

	ca := newCA(t, "provision-e2e-ca")
	c.CACert = ca.certPEM()
	caFile, caKey := ca.write(t, dir, "ca")
	c.CACertFile = caFile
	serving := ca.issue(t, "kube-apiserver", nil,
		[]net.IP{net.ParseIP(ServerAddr), net.ParseIP("10.96.0.1"), net.ParseIP("127.0.0.1")},
		[]string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"})
	servingCrt, servingKey := serving.write(t, dir, "apiserver")
	kubeletClientCrt, kubeletClientKey := ca.issue(t, "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, nil).write(t, dir, "apiserver-kubelet-client")
	admin := ca.issue(t, "provision-e2e-admin", []string{"system:masters"}, nil, nil)
	saPub, saKey := writeServiceAccountKeys(t, dir)

	etcdData := filepath.Join(dir, "etcd")
	c.start(t, "etcd", etcdBin,
		"--name=e2e", "--data-dir="+etcdData, "--unsafe-no-fsync",
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=e2e=http://127.0.0.1:2380", "--log-level=warn")
	c.start(t, "kube-apiserver", filepath.Join(kubeDir, "kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:2379",
		"--bind-address="+ServerAddr, "--advertise-address="+ServerAddr, "--secure-port="+APIServerPort,
		"--tls-cert-file="+servingCrt, "--tls-private-key-file="+servingKey,
		"--client-ca-file="+caFile,
		"--kubelet-client-certificate="+kubeletClientCrt, "--kubelet-client-key="+kubeletClientKey,
		// Reach kubelets (logs, exec, node proxy) by the Node's InternalIP: no
		// DNS resolves node names inside the test namespace.
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+saPub, "--service-account-signing-key-file="+saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--enable-bootstrap-token-auth",
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--profiling=false")

	cfg := &rest.Config{
		Host:            c.URL,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.CACert, CertData: admin.certPEM(), KeyData: keyPEM(t, admin.key)},
		Dial:            ns.DialContext,
		QPS:             100,
		Burst:           200,
		Timeout:         30 * time.Second,
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Client = client
	c.Config = cfg
	c.waitReady(t, cfg)

	c.admin = filepath.Join(dir, "controller-manager.conf")
	kcmKubeconfig := filepath.Join(dir, "controller-manager.conf")
	if err := clientcmd.WriteToFile(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"e2e": {Server: c.URL, CertificateAuthorityData: c.CACert}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"admin": {ClientCertificateData: admin.certPEM(), ClientKeyData: keyPEM(t, admin.key)}},
		Contexts:       map[string]*clientcmdapi.Context{"e2e": {Cluster: "e2e", AuthInfo: "admin"}},
		CurrentContext: "e2e",
	}, kcmKubeconfig); err != nil {
		t.Fatal(err)
	}
	c.start(t, "kube-controller-manager", filepath.Join(kubeDir, "kube-controller-manager"),
		"--kubeconfig="+kcmKubeconfig,
		"--controllers=*,bootstrapsigner,tokencleaner",
		"--cluster-signing-cert-file="+caFile, "--cluster-signing-key-file="+caKey,
		"--use-service-account-credentials=true",
		"--root-ca-file="+caFile,
		"--service-account-private-key-file="+saKey,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--profiling=false")
	var schedulerCA *x509.CertPool
	if opts.Scheduler {
		schedulerCA = c.startScheduler(t, ca)
	}

	c.setupBootstrapRBAC(t)
	c.waitControllerManager(t)
	if opts.Scheduler {
		c.waitScheduler(t, schedulerCA)
	}
	return c
}

// startScheduler starts kube-scheduler with a client certificate for
// system:kube-scheduler (bound to its role by the API server's bootstrap RBAC,
// as kubeadm's scheduler.conf is) and a serving certificate of the cluster CA
// for its /readyz, which it returns the pool to verify.
func (c *Cluster) startScheduler(t testing.TB, ca certKey) *x509.CertPool {
	t.Helper()
	client := ca.issue(t, "system:kube-scheduler", nil, nil, nil)
	servingCrt, servingKey := ca.issue(t, "kube-scheduler", nil, []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"}).write(t, c.dir, "scheduler-serving")
	kubeconfig := filepath.Join(c.dir, "scheduler.conf")
	// clientcmd writes the kubeconfig (it holds the client key) 0600.
	if err := clientcmd.WriteToFile(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"e2e": {Server: c.URL, CertificateAuthorityData: c.CACert}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"system:kube-scheduler": {ClientCertificateData: client.certPEM(), ClientKeyData: keyPEM(t, client.key)}},
		Contexts:       map[string]*clientcmdapi.Context{"e2e": {Cluster: "e2e", AuthInfo: "system:kube-scheduler"}},
		CurrentContext: "e2e",
	}, kubeconfig); err != nil {
		t.Fatal(err)
	}
	// The configuration file, not the deprecated --kubeconfig and --leader-elect flags.
	config := filepath.Join(c.dir, "scheduler.yaml")
	cfg, err := yaml.Marshal(map[string]any{
		"apiVersion":       "kubescheduler.config.k8s.io/v1",
		"kind":             "KubeSchedulerConfiguration",
		"clientConnection": map[string]any{"kubeconfig": kubeconfig},
		"leaderElection":   map[string]any{"leaderElect": false},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	c.start(t, "kube-scheduler", filepath.Join(c.KubeDir, "kube-scheduler"),
		"--config="+config,
		"--bind-address=127.0.0.1", "--secure-port="+SchedulerPort,
		"--tls-cert-file="+servingCrt, "--tls-private-key-file="+servingKey,
		"-v=4")
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// waitScheduler polls kube-scheduler's /readyz (anonymous: an always-allowed
// path) every 100 ms for up to 90 s.
func (c *Cluster) waitScheduler(t testing.TB, pool *x509.CertPool) {
	t.Helper()
	done := Phase(t, "kube-scheduler ready")
	defer done()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext:     c.ns.DialContext,
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12},
	}}
	defer hc.CloseIdleConnections()
	c.waitReadyz(t, "kube-scheduler", hc, "https://"+net.JoinHostPort("127.0.0.1", SchedulerPort)+"/readyz")
}

// start runs argv inside the cluster's namespace with its output in dir/NAME.log.
func (c *Cluster) start(t testing.TB, name string, argv ...string) {
	t.Helper()
	c.procs = append(c.procs, startProcess(t, name, c.ns, filepath.Join(c.dir, name+".log"), nil, argv...))
}

// stop stops the processes in reverse order.
func (c *Cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop(c.t)
	}
}

// Logs returns the tail of a component's log (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler).
func (c *Cluster) Logs(name string, lines int) string {
	data, err := os.ReadFile(filepath.Join(c.dir, name+".log"))
	if err != nil {
		return err.Error()
	}
	return lastLines(string(data), lines)
}

// LogLines returns the lines of a component's log that contain every one of subs.
func (c *Cluster) LogLines(name string, subs ...string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(c.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(l, s)
		}
		if all {
			out = append(out, l)
		}
	}
	return out, nil
}

// checkAlive fails the test if a component has exited.
func (c *Cluster) checkAlive(t testing.TB) {
	t.Helper()
	for _, p := range c.procs {
		select {
		case <-p.exited:
			t.Fatalf("cluster: %s exited: %v\n%s", p.name, p.cmd.ProcessState, c.Logs(p.name, 40))
		default:
		}
	}
}

// waitReady polls /readyz every 100 ms.
func (c *Cluster) waitReady(t testing.TB, cfg *rest.Config) {
	t.Helper()
	done := Phase(t, "kube-apiserver ready")
	defer done()
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.waitReadyz(t, "kube-apiserver", &http.Client{Transport: rt, Timeout: 5 * time.Second}, c.URL+"/readyz")
}

// waitReadyz polls component name's /readyz at url every 100 ms for up to
// 90 s, failing early if a cluster process exited.
func (c *Cluster) waitReadyz(t testing.TB, name string, hc *http.Client, url string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		c.checkAlive(t)
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 90s: %s\n%s", name, last, c.Logs(name, 40))
}

// setupBootstrapRBAC creates the bindings kubeadm creates for node bootstrap:
// bootstrap tokens may create node-client CSRs, which are auto-approved, and
// nodes may renew their own client certificates.
func (c *Cluster) setupBootstrapRBAC(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, b := range map[string][2]string{
		"kubeadm:kubelet-bootstrap":                     {"system:node-bootstrapper", BootstrapGroup},
		"kubeadm:node-autoapprove-bootstrap":            {"system:certificates.k8s.io:certificatesigningrequests:nodeclient", BootstrapGroup},
		"kubeadm:node-autoapprove-certificate-rotation": {"system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", "system:nodes"},
	} {
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: b[0]},
			Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "Group", Name: b[1]}},
		}
		if _, err := c.Client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create ClusterRoleBinding %s: %v", name, err)
		}
	}
	// cluster-info, as kubeadm publishes it; the bootstrapsigner signs it per token.
	kc, err := clientcmd.Write(clientcmdapi.Config{
		Clusters: map[string]*clientcmdapi.Cluster{"": {Server: c.URL, CertificateAuthorityData: c.CACert}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cluster-info", Namespace: "kube-public"}, Data: map[string]string{"kubeconfig": string(kc)}}
	if _, err := c.Client.CoreV1().ConfigMaps("kube-public").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create cluster-info: %v", err)
	}
}

// waitControllerManager waits until kube-controller-manager's controllers run:
// a probe token's signature appears in cluster-info (bootstrapsigner), then the
// probe token is deleted. It takes about 5 s after start.
func (c *Cluster) waitControllerManager(t testing.TB) {
	t.Helper()
	done := Phase(t, "kube-controller-manager signing")
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	id := c.CreateToken(t, time.Hour)[:6]
	key := "jws-kubeconfig-" + id
	for {
		c.checkAlive(t)
		cm, err := c.Client.CoreV1().ConfigMaps("kube-public").Get(ctx, "cluster-info", metav1.GetOptions{})
		if err == nil && cm.Data[key] != "" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("kube-controller-manager did not sign cluster-info within 90s (%v)\n%s", err, c.Logs("kube-controller-manager", 40))
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := c.Client.CoreV1().Secrets("kube-system").Delete(ctx, "bootstrap-token-"+id, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete probe token: %v", err)
	}
}

// NewTokenValue returns a random bootstrap token [a-z0-9]{6}.[a-z0-9]{16}
// that is not (yet) known to any cluster.
func NewTokenValue(t testing.TB) string {
	t.Helper()
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 23)
	for i := range b {
		if i == 6 {
			b[i] = '.'
			continue
		}
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			t.Fatal(err)
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}

// CreateToken creates a bootstrap token as kubeadm does (Secret
// kube-system/bootstrap-token-ID with authentication and signing usages and the
// kubeadm node group) expiring after ttl, and returns it. A negative ttl
// creates an already expired token.
func (c *Cluster) CreateToken(t testing.TB, ttl time.Duration) string {
	t.Helper()
	tok := NewTokenValue(t)
	id, secret, _ := strings.Cut(tok, ".")
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-" + id, Namespace: "kube-system"},
		Type:       corev1.SecretTypeBootstrapToken,
		StringData: map[string]string{
			"description":                    "provision e2e node token",
			"token-id":                       id,
			"token-secret":                   secret,
			"expiration":                     time.Now().Add(ttl).UTC().Format(time.RFC3339),
			"usage-bootstrap-authentication": "true",
			"usage-bootstrap-signing":        "true",
			"auth-extra-groups":              BootstrapGroup,
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Client.CoreV1().Secrets("kube-system").Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create bootstrap token secret: %v", err)
	}
	return tok
}

// NodeTimes are when the test saw a Node registered and Ready.
type NodeTimes struct {
	mu         sync.Mutex
	Registered time.Time
	Ready      time.Time
	Node       *corev1.Node
	ready      chan struct{}
	registered chan struct{}
}

// WatchNode watches the Node name from now until cleanup and records when it
// is registered and when it first reports Ready=True.
func (c *Cluster) WatchNode(t testing.TB, name string) *NodeTimes {
	t.Helper()
	nt := &NodeTimes{ready: make(chan struct{}), registered: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	t.Cleanup(func() { cancel(); <-stopped })
	go func() {
		defer close(stopped)
		sel := fields.OneTermEqualSelector("metadata.name", name).String()
		for ctx.Err() == nil {
			w, err := c.Client.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{FieldSelector: sel})
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				node, ok := ev.Object.(*corev1.Node)
				if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
					continue
				}
				if nt.observe(node) {
					w.Stop()
					return
				}
			}
		}
	}()
	return nt
}

// observe records the node's state; it reports whether it is Ready.
func (nt *NodeTimes) observe(node *corev1.Node) bool {
	now := time.Now()
	nt.mu.Lock()
	defer nt.mu.Unlock()
	nt.Node = node.DeepCopy()
	if nt.Registered.IsZero() {
		nt.Registered = now
		close(nt.registered)
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
			nt.Ready = now
			close(nt.ready)
			return true
		}
	}
	return false
}

// WaitReady waits for the Node to be Ready and returns it.
func (nt *NodeTimes) WaitReady(ctx context.Context) (*corev1.Node, error) {
	select {
	case <-nt.ready:
		nt.mu.Lock()
		defer nt.mu.Unlock()
		return nt.Node, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Seen reports whether the Node was ever registered.
func (nt *NodeTimes) Seen() bool {
	select {
	case <-nt.registered:
		return true
	default:
		return false
	}
}

// NodeClientCSRs returns the kubelet client CSRs (signer
// kubernetes.io/kube-apiserver-client-kubelet) in the cluster.
func (c *Cluster) NodeClientCSRs(ctx context.Context) ([]certificatesv1.CertificateSigningRequest, error) {
	list, err := c.Client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []certificatesv1.CertificateSigningRequest
	for _, csr := range list.Items {
		if csr.Spec.SignerName == certificatesv1.KubeAPIServerClientKubeletSignerName {
			out = append(out, csr)
		}
	}
	return out, nil
}

// CSRApproved reports whether csr is approved and its certificate issued.
func CSRApproved(csr certificatesv1.CertificateSigningRequest) bool {
	approved := false
	for _, cond := range csr.Status.Conditions {
		if cond.Type == certificatesv1.CertificateApproved && cond.Status == corev1.ConditionTrue {
			approved = true
		}
	}
	return approved && len(csr.Status.Certificate) > 0
}

// PausePod is the test pod RunPod creates: image (already in the node's
// containerd, never pulled) with no service account token, on node, or, with
// node "", left to the scheduler.
func PausePod(name, node, image string) *corev1.Pod {
	return PullPod(name, node, image, corev1.PullNever)
}

// PullPod is PausePod with the container's image pull policy.
func PullPod(name, node, image string, pull corev1.PullPolicy) *corev1.Pod {
	no := false
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:                     node,
			AutomountServiceAccountToken: &no,
			Containers: []corev1.Container{{Name: "c", Image: image, ImagePullPolicy: pull,
				Env: []corev1.EnvVar{{Name: "PAUSE_HTTP", Value: ":8080"}}}}, // the test pause answers HTTP there
		},
	}
}

// RunPod creates a pod of image on node (bypassing the scheduler, which the
// test cluster runs only when asked) with no service account token, and waits
// until it is Running. The image must already be in the node's containerd.
func (c *Cluster) RunPod(ctx context.Context, node, name, image string) (*corev1.Pod, error) {
	return c.StartPod(ctx, PausePod(name, node, image))
}

// RunPodPull is RunPod with the container's image pull policy.
func (c *Cluster) RunPodPull(ctx context.Context, node, name, image string, pull corev1.PullPolicy) (*corev1.Pod, error) {
	return c.StartPod(ctx, PullPod(name, node, image, pull))
}

// StartPod creates pod in its namespace (an existing one of the same name is
// kept) and waits until it is Running.
func (c *Cluster) StartPod(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	ns, name := pod.Namespace, pod.Name
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	var last *corev1.Pod
	for {
		w, err := c.Client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			if ctx.Err() != nil {
				return last, fmt.Errorf("pod %s not running: %w (last status %s)", name, ctx.Err(), podState(last))
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			last = p
			if p.Status.Phase == corev1.PodRunning {
				w.Stop()
				return p, nil
			}
			if p.Status.Phase == corev1.PodFailed {
				w.Stop()
				return p, errors.New("pod failed: " + podState(p))
			}
		}
		if ctx.Err() != nil {
			return last, fmt.Errorf("pod %s not running: %w (last status %s)", name, ctx.Err(), podState(last))
		}
	}
}

func podState(p *corev1.Pod) string {
	if p == nil {
		return "none"
	}
	s := string(p.Status.Phase)
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			s += fmt.Sprintf(" (%s: %s %s)", cs.Name, w.Reason, w.Message)
		}
	}
	for _, cond := range p.Status.Conditions {
		if cond.Status != corev1.ConditionTrue && cond.Message != "" {
			s += fmt.Sprintf(" [%s: %s]", cond.Type, cond.Message)
		}
	}
	return s
}

// Kubectl runs the cluster's own kubectl, as an admin, inside the namespace
// (kubectl exec, port-forward: the streaming paths through the API server to
// the kubelet), and returns its output.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	argv := append([]string{"netns", "exec", c.ns.Name, filepath.Join(c.KubeDir, "kubectl"), "--kubeconfig", c.admin}, args...)
	out, err := exec.CommandContext(ctx, "ip", argv...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// PortForward runs `kubectl port-forward pod/NAME :PORT` inside the namespace
// and returns the local address it forwards from (inside the namespace: dial it
// with the namespace's DialContext). The process is stopped by its PID when the
// test ends.
func (c *Cluster) PortForward(t testing.TB, pod string, port int) string {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", c.ns.Name, filepath.Join(c.KubeDir, "kubectl"), "--kubeconfig", c.admin,
		"port-forward", "--address", "127.0.0.1", "pod/"+pod, fmt.Sprintf(":%d", port))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("kubectl port-forward: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// "Forwarding from 127.0.0.1:PORT -> 8080"
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("kubectl port-forward exited: %s", stderr.String())
			}
			if rest, found := strings.CutPrefix(l, "Forwarding from "); found {
				addr, _, _ := strings.Cut(rest, " ")
				go func() {
					for range lines { // keep draining
					}
				}()
				return addr
			}
		case <-timeout:
			t.Fatalf("kubectl port-forward: no forwarding within 30s: %s", stderr.String())
		}
	}
}
