package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"strings"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/node/bundle"
	"github.com/provision-dev/provision/node/tasks"
)

// Airgap paths, under the root.
const (
	// BundleDir is where base extracts a verified bundle (manifest.json, artifacts/).
	BundleDir = StateDir + "/bundle"
	// BaseDoneMarker is written by a successful base: the image is prebaked for
	// the kubelet version, OS profile and arch it records (JSON, BaseDone).
	BaseDoneMarker = StateDir + "/base-done"
)

const tBundle = "bundle/install"

// BaseDone is the content of BaseDoneMarker.
type BaseDone struct {
	KubeletVersion string `json:"kubeletVersion"`
	OSProfile      string `json:"osProfile"`
	Arch           string `json:"arch"`
	// Bundle is the file name of the bundle base installed from (--bundle), if any.
	Bundle   string `json:"bundle,omitempty"`
	Finished string `json:"finished"`
}

// bundleExpect is what this node requires of a bundle.
func (n *Node) bundleExpect() bundle.Expect {
	pinned := map[string]string{}
	for name, a := range n.Config.Artifacts {
		pinned[name] = a.SHA256
	}
	return bundle.Expect{
		KubeletVersion: n.Config.Kubernetes.Version,
		OSProfile:      n.Profile,
		Arch:           n.arch(),
		Pinned:         pinned,
	}
}

// bundleArtifacts decides where base's artifacts come from, from the bundle
// manifest Prepare read (inputs.go). With --bundle, the manifest is checked
// against the node now (a bundle for another node fails the build, before any
// task runs), a task verifies and extracts the whole bundle, and the artifacts
// point at BundleDir with the manifest's hashes. Without --bundle, a bundle
// already installed in BundleDir that matches the node is used the same way (a
// prebaked image re-running base stays offline); one that does not match is
// ignored. Otherwise the config's sources are used.
func (n *Node) bundleArtifacts() (pre []tasks.Task, arts v1alpha1.Artifacts, provision *v1alpha1.Artifact, err error) {
	arts = n.Config.Artifacts
	b := n.in.bundle
	switch {
	case !b.present:
		return nil, arts, nil, nil
	case !b.installed:
		if b.err != nil {
			return nil, arts, nil, b.err
		}
		if err := b.manifest.Check(n.bundleExpect()); err != nil {
			return nil, arts, nil, &bundle.RefusedError{Bundle: n.opts.Bundle, Problems: strings.Split(err.Error(), "\n")}
		}
		pre = append(pre, &bundleInstall{File: n.opts.Bundle, Dir: BundleDir, Opts: bundle.Options{Expect: ptr(n.bundleExpect()), SHA256: n.opts.BundleSHA256}})
	default:
		err := b.err
		if err == nil {
			err = b.manifest.Check(n.bundleExpect())
		}
		if err != nil {
			n.opts.Log.Info("ignoring the installed bundle: it does not match this node", "dir", BundleDir, "reason", oneLine(err.Error()))
			return nil, arts, nil, nil
		}
		n.opts.Log.Info("artifacts from the installed bundle", "dir", BundleDir, "kubelet", b.manifest.KubeletVersion)
	}
	n.bundleSizes = map[string]int64{}
	src := func(name string) v1alpha1.Artifact {
		e, ok := b.manifest.Get(name)
		if !ok {
			return v1alpha1.Artifact{}
		}
		// A node path, read inside the root (markBundleSources), never a host path.
		u := url.URL{Scheme: "file", Path: path.Join(BundleDir, e.File)}
		n.bundleSizes[u.String()] = e.Size
		return v1alpha1.Artifact{URL: u.String(), SHA256: e.SHA256}
	}
	arts = v1alpha1.Artifacts{}
	for _, a := range artifacts.Configurable() {
		if s := src(a.Name); s.URL != "" {
			arts[a.Name] = s
		}
	}
	if p := src(artifacts.Provision); p.URL != "" && n.opts.Bundle != "" {
		provision = &p // only from an explicit --bundle: never replace a binary the userdata just installed
	}
	return pre, arts, provision, nil
}

// markBundleSources makes the artifacts that come from the installed bundle
// read their file:// URL inside the root, bounded by the manifest's size.
func (n *Node) markBundleSources(list []tasks.Artifact) {
	for i, a := range list {
		if size, ok := n.bundleSizes[a.URL]; ok {
			list[i].InRoot, list[i].Size = true, size
		}
	}
}

// bundleInstall verifies a whole bundle and extracts it to Dir (see bundle.Install).
type bundleInstall struct {
	File string
	Dir  string
	Opts bundle.Options
}

func (t *bundleInstall) Name() string { return tBundle }

func (t *bundleInstall) Run(_ context.Context, e *tasks.Env, dry bool) (tasks.Outcome, error) {
	if dry {
		if bundle.IsInstalled(t.File, e.Root, t.Dir) {
			return tasks.Outcome{Result: tasks.Unchanged, Detail: fmt.Sprintf("%s holds %s (verified again on apply)", t.Dir, path.Base(t.File))}, nil
		}
		return tasks.Outcome{Result: tasks.Changed, Detail: fmt.Sprintf("verify %s and extract it to %s", path.Base(t.File), t.Dir)}, nil
	}
	m, changed, err := bundle.Install(t.File, e.Root, t.Dir, t.Opts)
	if err != nil {
		return tasks.Outcome{}, err
	}
	detail := fmt.Sprintf("verified %d artifacts (%d bytes) of %s", len(m.Artifacts), m.TotalSize(), path.Base(t.File))
	if !changed {
		return tasks.Outcome{Result: tasks.Unchanged, Detail: detail + "; " + t.Dir + " already holds it"}, nil
	}
	return tasks.Outcome{Result: tasks.Changed, Detail: detail + ", extracted to " + t.Dir}, nil
}

// writeBaseDone records a successful base (BaseDoneMarker).
func (n *Node) writeBaseDone(finished string) error {
	bd := BaseDone{KubeletVersion: n.Config.Kubernetes.Version, OSProfile: n.Profile.Name, Arch: n.arch(), Finished: finished}
	if n.opts.Bundle != "" {
		bd.Bundle = path.Base(n.opts.Bundle)
	}
	data, err := json.MarshalIndent(bd, "", "  ")
	if err != nil {
		return err
	}
	_, err = n.Env.Root.WriteFile(BaseDoneMarker, append(data, '\n'), 0o644)
	return err
}

// checkBaseDone refuses to join a prebaked root whose base was done for another
// kubelet version, OS profile or arch (join would start the wrong kubelet). A
// root without the marker is left to join's own checks. Run checks it before
// join; Preview only when base is not previewed first (base rewrites the marker).
func (n *Node) checkBaseDone() error {
	data, err := n.Env.Root.ReadFile(BaseDoneMarker)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var bd BaseDone
	if err := json.Unmarshal(data, &bd); err != nil {
		return fmt.Errorf("%s: %w (remove it and run `provision node base`)", BaseDoneMarker, err)
	}
	var diffs []string
	if bd.KubeletVersion != n.Config.Kubernetes.Version {
		diffs = append(diffs, fmt.Sprintf("kubelet %s, the node config asks for %s", bd.KubeletVersion, n.Config.Kubernetes.Version))
	}
	if bd.OSProfile != n.Profile.Name {
		diffs = append(diffs, fmt.Sprintf("OS profile %s, this node is %s", bd.OSProfile, n.Profile.Name))
	}
	if bd.Arch != n.arch() {
		diffs = append(diffs, fmt.Sprintf("arch %s, this node is %s", bd.Arch, n.arch()))
	}
	if len(diffs) > 0 {
		return fmt.Errorf("%s: base was done for another node (%s): run `provision node base` (with --bundle for this version when offline) before join, or rebuild the image",
			BaseDoneMarker, strings.Join(diffs, "; "))
	}
	return nil
}
