package node

import (
	"fmt"
	"os"
	"path"

	"github.com/provision-dev/provision/internal/fsroot"
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
	// resolvConf is the kubelet's resolvConf: ResolvedResolvConf where
	// systemd-resolved manages the root's /etc/resolv.conf, else "" (the
	// kubelet's default, /etc/resolv.conf).
	resolvConf string
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
	if systemdResolved(root) {
		n.in.resolvConf = ResolvedResolvConf
	}
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

// systemd-resolved's files: the stub resolver's resolv.conf (nameserver
// 127.0.0.53) and the one listing the upstream servers.
const (
	ResolvedStubResolvConf = "/run/systemd/resolve/stub-resolv.conf"
	ResolvedResolvConf     = "/run/systemd/resolve/resolv.conf"
)

// systemdResolved reports whether systemd-resolved manages the root's DNS, as
// kubeadm decides it: /etc/resolv.conf links to the stub resolver (Ubuntu,
// Flatcar, Fedora CoreOS), or resolved runs (its upstream resolv.conf exists
// under /run, a tmpfs only a running resolved writes). The kubelet must then
// hand pods the upstream servers: 127.0.0.53 inside a pod is the pod itself
// (CoreDNS loops on it).
func systemdResolved(root fsroot.Root) bool {
	if target, err := root.Readlink("/etc/resolv.conf"); err == nil {
		if !path.IsAbs(target) {
			target = path.Join("/etc", target)
		}
		if path.Clean(target) == ResolvedStubResolvConf {
			return true
		}
	}
	return root.Exists(ResolvedResolvConf)
}
