package node

import (
	"time"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/fsroot"
	"github.com/provision-dev/provision/internal/kubeconfig"
	"github.com/provision-dev/provision/node/tasks"
)

// In-place upgrade: changing kubernetes.version (and the kubelet's artifact) in
// the node config and re-running `provision node` downloads the new kubelet and
// crictl (base), rewrites only the files that differ, and restarts the kubelet
// once (kubelet/service restarts a kubelet whose running binary was replaced,
// together with any config change). Before anything is downloaded, the new
// version is checked against the API server's (tVersionSkew): a kubelet newer
// than the API server, or older than the skew upstream allows, is refused.

const tVersionSkew = "kubelet/version-skew"

// skewTimeout bounds the wait for an API server that does not answer yet.
const skewTimeout = 10 * time.Second

// skewTask checks the kubelet version against the API server's, when the API
// server is known ("" in an image build: nothing to check) and, in base, only
// on a node that joined before (an upgrade; a first base may run offline).
func (n *Node) skewTask(p Phase) []tasks.Task {
	if n.in.apiServer == "" || (p == Base && !n.in.joined) {
		return nil
	}
	k := n.Config.Kubernetes
	return []tasks.Task{&tasks.VersionSkew{TaskName: tVersionSkew, APIServerURL: n.in.apiServer, KubeletVersion: k.Version,
		CAPath: k.CACertPath, ClientCertPath: KubeletClientCertPath, Timeout: skewTimeout, Poll: 500 * time.Millisecond}}
}

// upgradeBuilder is base's first builder: the skew check of an upgrade.
func upgradeBuilder(n *Node) ([]tasks.Task, error) { return n.skewTask(Base), nil }

// apiServerOf returns the API server's URL: the config's, else the one of the
// kubelet's kubeconfig (a joined node), else the bootstrap kubeconfig's.
func apiServerOf(root fsroot.Root, k v1alpha1.Kubernetes) string {
	if k.APIServerURL != "" {
		return k.APIServerURL
	}
	for _, p := range []string{k.KubeconfigPath, k.BootstrapKubeconfigPath} {
		data, err := root.ReadFile(p)
		if err != nil {
			continue
		}
		if s, err := kubeconfig.Server(data); err == nil {
			return s
		}
	}
	return ""
}
