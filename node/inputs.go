package node

import (
	"fmt"
	"os"
	"path"

	"github.com/provision-dev/provision/node/bundle"
)

// inputs are the files the builders declare tasks from. Prepare reads them once
// (readInputs), so builders do no I/O. A read error is kept and returned by the
// builder that needs the input: it fails that phase's build (recorded in
// status.json), and only that phase.
type inputs struct {
	// caCert and cloudConfig are the --ca-cert and --cloud-config files.
	caCert, cloudConfig input
	// joined says the kubelet's kubeconfig exists (a TLS bootstrap happened before).
	joined bool
	// apiServer is the API server's URL: the config's, else the kubelet's
	// kubeconfig's, else the bootstrap kubeconfig's ("" when none is known yet,
	// as in an image build).
	apiServer string
	// bundle is where base's artifacts may come from.
	bundle bundleInput
}

// input is one file read from the host.
type input struct {
	data []byte
	err  error
}

// bundleInput is the manifest of the bundle base installs from: --bundle, or
// one installed in BundleDir by an earlier base (installed).
type bundleInput struct {
	present   bool
	installed bool
	manifest  bundle.Manifest
	err       error
}

// readInputs reads every input of the builders (see inputs).
func (n *Node) readInputs() {
	s := n.opts.Flags
	n.in.caCert = readInput("--ca-cert", s.CACert)
	n.in.cloudConfig = readInput("--cloud-config", s.CloudConfig)
	root := n.Env.Root
	n.in.joined = root.Exists(n.Config.Kubernetes.KubeconfigPath)
	n.in.apiServer = apiServerOf(root, n.Config.Kubernetes)
	installed := path.Join(BundleDir, bundle.ManifestName)
	switch {
	case n.opts.Bundle != "":
		m, _, err := bundle.ReadManifest(n.opts.Bundle)
		n.in.bundle = bundleInput{present: true, manifest: m, err: err}
	case root.Exists(installed):
		data, err := root.ReadFile(installed)
		var m bundle.Manifest
		if err == nil {
			m, err = bundle.ParseManifest(data)
		}
		n.in.bundle = bundleInput{present: true, installed: true, manifest: m, err: err}
	}
}

// readInput reads host file p, given by flag ("" reads nothing).
func readInput(flag, p string) input {
	if p == "" {
		return input{}
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return input{err: fmt.Errorf("%s: %w", flag, err)}
	}
	return input{data: data}
}
