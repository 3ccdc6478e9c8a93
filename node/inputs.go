package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"

	"github.com/provision-dev/provision/api/v1alpha1"
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
	// registryCredentials is containerd.credentialsFile's contents, parsed
	// (nil without one); err says why it cannot be used.
	registryCredentials credentialsInput
}

// credentialsInput is the registry credentials file, read from the root.
type credentialsInput struct {
	creds v1alpha1.RegistryCredentials
	err   error
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
	n.in.registryCredentials = readRegistryCredentials(root, n.Config.Containerd.CredentialsFile)
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

// readRegistryCredentials reads the registry credentials file p ("" reads
// nothing) from the root: it must exist, be readable by its owner only, and
// parse (v1alpha1.ParseRegistryCredentials). Errors name the file and the
// host, never a credential.
func readRegistryCredentials(root fsroot.Root, p string) credentialsInput {
	if p == "" {
		return credentialsInput{}
	}
	fail := func(format string, a ...any) credentialsInput {
		return credentialsInput{err: fmt.Errorf("containerd.credentialsFile %s: "+format, append([]any{p}, a...)...)}
	}
	fi, err := root.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail("does not exist: the node config names it for the registry credentials (generate writes it, 0600)")
	case err != nil:
		return fail("%v", err)
	case !fi.Mode().IsRegular():
		return fail("is not a regular file")
	case fi.Mode().Perm()&0o077 != 0:
		return fail("is accessible by group or others (mode %04o): it holds registry credentials; chmod 0600 it", fi.Mode().Perm())
	case fi.Size() > v1alpha1.MaxFileSize:
		return fail("is larger than %d bytes", v1alpha1.MaxFileSize)
	}
	data, err := root.ReadFile(p)
	if err != nil {
		return fail("%v", err)
	}
	creds, err := v1alpha1.ParseRegistryCredentials(data)
	if err != nil {
		return fail("%v", err)
	}
	return credentialsInput{creds: creds}
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
