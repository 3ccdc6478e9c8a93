package node

import (
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/node/tasks"
)

// CNI directories containerd's config names.
const (
	CNIBinDir  = "/opt/cni/bin"
	CNIConfDir = "/etc/cni/net.d"
)

func cniBuilder(n *Node) ([]tasks.Task, error) {
	return []tasks.Task{tasks.NeedsOnly(&tasks.Extract{TaskName: "cni/plugins", Archive: n.artifactPath(artifacts.CNIPlugins), Dest: CNIBinDir}, tArtifacts)}, nil
}
