package node

import (
	"fmt"
	"strings"

	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/node/tasks"
)

// tArtifacts is the one download task of base (extract tasks depend on it).
const tArtifacts = "artifacts/download"

// CacheDir is where downloaded archives wait to be extracted (internal/artifacts).
const CacheDir = artifacts.CacheDir

// artifactPath is where artifact name lands on the node (internal/artifacts).
func (n *Node) artifactPath(name string) string {
	if name == artifacts.Provision {
		return n.provisionPath()
	}
	return artifacts.MustGet(name).NodePath(n.Profile.BinDir)
}

// artifactsBuilder declares one parallel download of every artifact the profile
// needs (internal/artifacts), from the config's sources or, airgapped, from a
// verified bundle (airgap.go).
func artifactsBuilder(n *Node) ([]tasks.Task, error) {
	pre, srcs, provision, err := n.bundleArtifacts()
	if err != nil {
		return nil, err
	}
	var list []tasks.Artifact
	var missing []string
	for _, a := range artifacts.Required(n.Profile) {
		src := srcs.Get(a.Name)
		if src.URL == "" {
			missing = append(missing, "artifacts."+a.Name+".url")
			continue
		}
		list = append(list, tasks.Artifact{URL: src.URL, SHA256: src.SHA256, ChecksumURL: a.ChecksumURL(src.URL), Path: n.artifactPath(a.Name), Mode: a.Mode()})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: required on %s", strings.Join(missing, ", "), n.Profile.Name)
	}
	if provision != nil {
		a := artifacts.MustGet(artifacts.Provision)
		list = append(list, tasks.Artifact{URL: provision.URL, SHA256: provision.SHA256, Path: n.artifactPath(a.Name), Mode: a.Mode()})
	}
	n.markBundleSources(list)
	// The downloads need only the checks (nothing is fetched for a host or an API
	// server that refuses the kubelet) and what prepares their sources (an airgap
	// bundle), not the packages or kernel settings before them: they run during
	// the install.
	after := []string{tCgroup}
	for _, t := range n.skewTask(Base) {
		after = append(after, t.Name()) // an upgrade's new kubelet only once the API server allows it
	}
	for _, t := range pre {
		after = append(after, t.Name())
	}
	return append(pre, tasks.NeedsOnly(&tasks.Download{TaskName: tArtifacts, Artifacts: list}, after...)), nil
}
