// Package node is the imperative half of provision: it turns a node config into
// the tasks of two phases, base (install and configure, no join; usable to
// prebake an image) and join (kubelet unit, TLS bootstrap), runs them, and
// records the outcome in /var/lib/provision/status.json and marker files.
//
// Prepare (node.go) loads the config, the profile and every input file
// (inputs.go). Builders, one per concern and one file each, only declare tasks
// from those inputs; package tasks runs them (phases.go). Preview (preview.go,
// `provision node plan` and `--dry-run`) runs the same lists dry.
//
//	packages.go       packagesBuilder: mirror repositories, OS packages
//	kernel.go         cgroupBuilder: the host's cgroup version against the kubelet's;
//	                  kernelBuilder: modules and sysctls
//	swap.go           swapBuilder: swap off, fstab, swap.target masked
//	artifacts.go      artifactsBuilder: one download of internal/artifacts' rows
//	cni.go            cniBuilder: the CNI plugins extracted
//	runtimeconfig.go  runtimeConfigBuilder: containerd/crictl/docker config files
//	runtime.go        runtimeBuilder: containerd (tarball or package), crictl, docker
//	health.go         healthBuilder: provision health units and timers
//	join.go           joinBuilder: kubelet config, unit, bootstrap, healthz
//	airgap.go         the bundle install task, the base-done marker
//	status.go         status.json and the markers
//	units.go          systemd unit helpers
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/internal/download"
	"github.com/provision-dev/provision/internal/fsroot"
	"github.com/provision-dev/provision/internal/logging"
	"github.com/provision-dev/provision/internal/runner"
	"github.com/provision-dev/provision/internal/yamlsafe"
	"github.com/provision-dev/provision/node/nodeconfig"
	"github.com/provision-dev/provision/node/tasks"
	"github.com/provision-dev/provision/osprofiles"
)

// Phase is base or join.
type Phase string

const (
	Base Phase = "base"
	Join Phase = "join"
)

// Flags holds the command-line settings of `provision node`, used when there is no config file
// (and, for the join material, also with one).
type Flags struct {
	KubeletVersion string
	CloudProvider  string
	// CloudConfig is a host path copied to the node's cloud config path.
	CloudConfig string
	// Token or TokenFile give the bootstrap token; it only ever reaches the 0600
	// bootstrap kubeconfig.
	Token     string
	TokenFile string
	// CACert is a host path copied to the node's CA path.
	CACert       string
	APIServerURL string
	Arch         string
}

// Options configure a node run.
type Options struct {
	// Root is the directory standing for "/" ("" = "/").
	Root string
	// ConfigPath is a host path; empty means /etc/provision/node.yaml under Root.
	ConfigPath string
	// OSProfile overrides detection from the root's /etc/os-release.
	OSProfile string
	Flags     Flags
	Runner    runner.Runner
	Log       *slog.Logger
	// Downloader overrides the default downloader (tests: fast retries).
	Downloader *download.Downloader
	// Live overrides "the root is the running system" (default: Root is "/").
	Live *bool
	// HealthzURL and HealthzTimeout bound join's wait for the kubelet (defaults
	// KubeletHealthzURL, 60s).
	HealthzURL     string
	HealthzTimeout time.Duration
	// BinaryPath is where the provision binary lives on the node, for the health
	// units (default: the profile's BinDir + "/provision").
	BinaryPath string
	// Now is time.Now, replaceable in tests.
	Now func() time.Time
	// Bundle is a host path of an artifact bundle (`provision bundle`) base
	// verifies as a whole and installs from, with no network for artifacts.
	Bundle string
	// BundleSHA256 optionally pins the bundle file's own sha256.
	BundleSHA256 string
	// CgroupDetector replaces the detection of the running host's cgroup
	// version (default tasks.DetectCgroup: statfs of the live /sys/fs/cgroup).
	CgroupDetector tasks.CgroupDetector
}

// Node is a prepared run: config, profile and environment.
type Node struct {
	Config  v1alpha1.NodeConfig
	Profile osprofiles.Profile
	// ProfileSource says how the profile was chosen (flag, config, os-release).
	ProfileSource string
	Env           *tasks.Env
	opts          Options
	token         string
	// in are the files the builders declare tasks from, read by Prepare.
	in inputs
	// bundleSizes maps the file:// URLs of artifacts in the installed bundle
	// (node paths in the root) to their sizes (airgap.go).
	bundleSizes map[string]int64
}

// Prepare loads the config (or builds it from the flags), picks the OS profile and
// sets up the environment tasks run in.
func Prepare(ctx context.Context, opts Options) (*Node, error) {
	root, err := fsroot.New(opts.Root)
	if err != nil {
		return nil, err
	}
	if opts.Log == nil {
		opts.Log = logging.Discard()
	}
	if opts.Runner == nil {
		opts.Runner = runner.Exec{Log: opts.Log}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cfg, err := loadConfig(root, opts)
	if err != nil {
		return nil, err
	}
	n := &Node{Config: cfg, opts: opts}
	switch {
	case opts.OSProfile != "":
		n.Profile, err = osprofiles.Get(opts.OSProfile)
		n.ProfileSource = "--os"
	case cfg.OSProfile != "":
		n.Profile, err = osprofiles.Get(cfg.OSProfile)
		n.ProfileSource = "config osProfile"
	default:
		var data []byte
		data, err = root.ReadFile("/etc/os-release")
		if err != nil {
			return nil, fmt.Errorf("detect OS: %w (pass --os to choose a profile: %s)", err, strings.Join(osprofiles.Names(), ", "))
		}
		n.Profile, err = osprofiles.Detect(data)
		n.ProfileSource = "/etc/os-release"
	}
	if err != nil {
		return nil, err
	}
	// Where containerd comes from depends on the profile, known only now.
	if err := cfg.ValidateProfile("", n.Profile).Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", n.Profile.Name, err)
	}
	n.Profile = n.Profile.WithRuntime(cfg.Containerd.Install)
	if err := n.readToken(); err != nil {
		return nil, err
	}
	live := root.IsHost()
	if opts.Live != nil {
		live = *opts.Live
	}
	if live && root.IsHost() && cfg.Arch != "" && cfg.Arch != runtime.GOARCH {
		return nil, fmt.Errorf("arch: the config is for %s but this machine is %s", cfg.Arch, runtime.GOARCH)
	}
	if err := loadProxyEnv(root, cfg.Proxy, live && root.IsHost()); err != nil {
		return nil, err
	}
	dl := opts.Downloader
	if dl == nil {
		dl = &download.Downloader{Log: opts.Log}
	}
	n.Env = &tasks.Env{Root: root, Runner: opts.Runner, Profile: n.Profile, Live: live, Downloader: dl, Log: opts.Log}
	if live {
		var virt string
		n.Env.InContainer, virt = tasks.DetectContainer(ctx, n.Env)
		if n.Env.InContainer {
			opts.Log.Info("running in a container: kernel-level actions are written to config and skipped", "virt", virt)
		}
	}
	n.readInputs()
	return n, nil
}

// loadConfig reads the node config (or builds it from the flags when there is
// none) and merges the command-line flags; every value, from the file or a flag, is
// validated before anything uses it.
func loadConfig(root fsroot.Root, opts Options) (v1alpha1.NodeConfig, error) {
	path, explicit := opts.ConfigPath, opts.ConfigPath != ""
	if !explicit {
		path = root.Path(v1alpha1.NodeConfigPath)
	}
	var cfg v1alpha1.NodeConfig
	var err error
	if explicit {
		cfg, err = nodeconfig.Load(path)
	} else {
		cfg, err = loadInRoot(root)
	}
	switch {
	case err == nil:
		return mergeFlags(cfg, opts.Flags, path)
	case explicit || !errors.Is(err, fs.ErrNotExist):
		return cfg, err
	}
	return configFromFlags(opts.Flags, path)
}

// mergeFlags applies the command-line flags to a config file: a flag that contradicts
// the file is refused; --apiserver-url fills in a file without one.
func mergeFlags(cfg v1alpha1.NodeConfig, s Flags, path string) (v1alpha1.NodeConfig, error) {
	var conflicts []string
	if s.KubeletVersion != "" && s.KubeletVersion != cfg.Kubernetes.Version {
		conflicts = append(conflicts, "--kubelet-version")
	}
	if s.CloudProvider != "" && s.CloudProvider != cfg.Kubernetes.CloudProvider {
		conflicts = append(conflicts, "--cloud-provider")
	}
	if len(conflicts) > 0 {
		return cfg, fmt.Errorf("%s conflict with the config file %s: edit the file or drop the flags", strings.Join(conflicts, ", "), path)
	}
	if s.APIServerURL != "" && cfg.Kubernetes.APIServerURL == "" {
		cfg.Kubernetes.APIServerURL = s.APIServerURL
	}
	return cfg, flagErrors(cfg.Validate(""))
}

// configFromFlags builds the config from the command-line flags (no config file).
func configFromFlags(s Flags, path string) (v1alpha1.NodeConfig, error) {
	if s.KubeletVersion == "" {
		return v1alpha1.NodeConfig{}, fmt.Errorf("no node config at %s and no --kubelet-version: run `provision generate` or pass the node flags (--kubelet-version, --apiserver-url, --token or --token-file, --ca-cert)", path)
	}
	if msg := validation.KubeletVersion(s.KubeletVersion); msg != "" {
		// Checked first: the default artifacts follow the version's minor.
		var es validation.Errors
		es.Add("kubernetes.version", "%s", msg)
		return v1alpha1.NodeConfig{}, flagErrors(es)
	}
	arch := s.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	cfg := nodeconfig.New(s.KubeletVersion, arch)
	cfg.Kubernetes.CloudProvider = s.CloudProvider
	cfg.Kubernetes.APIServerURL = s.APIServerURL
	if s.CloudConfig != "" {
		cfg.Kubernetes.CloudConfigPath = v1alpha1.CloudConfigPath
	}
	return cfg, flagErrors(cfg.Validate(""))
}

// configFlags names the flag behind each config field the flags set.
var configFlags = map[string]string{
	"kubernetes.version":       "--kubelet-version",
	"kubernetes.apiServerURL":  "--apiserver-url",
	"kubernetes.cloudProvider": "--cloud-provider",
}

// flagErrors names the command-line flag in each error (a file's own errors were
// reported by Load already); nil when es is empty.
func flagErrors(es validation.Errors) error {
	for i := range es {
		es[i].Flag = configFlags[es[i].Field]
	}
	return es.Err()
}

func (n *Node) readToken() error {
	s := n.opts.Flags
	if s.Token != "" && s.TokenFile != "" {
		return errors.New("--token and --token-file: give only one")
	}
	tok := s.Token
	if s.TokenFile != "" {
		data, err := os.ReadFile(s.TokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		tok = strings.TrimSpace(string(data))
	}
	if tok == "" {
		return nil
	}
	if !validation.ValidBootstrapToken(tok) {
		return errors.New("bootstrap token: must have the form [a-z0-9]{6}.[a-z0-9]{16} (value not shown)")
	}
	if n.Config.Kubernetes.APIServerURL == "" {
		return errors.New("--token needs --apiserver-url (or kubernetes.apiServerURL in the config) to build the bootstrap kubeconfig")
	}
	n.token = tok
	return nil
}

// loadInRoot reads the node config at its default path inside the root (a
// symlink there is resolved in the root, never on the machine outside).
func loadInRoot(root fsroot.Root) (v1alpha1.NodeConfig, error) {
	f, err := root.Open(v1alpha1.NodeConfigPath)
	if err != nil {
		return v1alpha1.NodeConfig{}, fmt.Errorf("read node config: %w", err)
	}
	defer f.Close()
	// No more than yamlsafe's limit + 1 byte, as nodeconfig.Load: Parse refuses a larger one.
	data, err := io.ReadAll(io.LimitReader(f, yamlsafe.MaxBytes+1))
	if err != nil {
		return v1alpha1.NodeConfig{}, fmt.Errorf("read node config: %w", err)
	}
	c, err := nodeconfig.Parse(data)
	if err != nil {
		return v1alpha1.NodeConfig{}, fmt.Errorf("%s: %w", root.Path(v1alpha1.NodeConfigPath), err)
	}
	return c, nil
}

// loadProxyEnv reads the proxy settings' environment file, if the config names
// one, and on the live host puts them into provision's environment: its
// downloader (http.ProxyFromEnvironment) and every command it runs (apt, dnf,
// which read http_proxy/https_proxy/no_proxy) use the proxy. Errors name the
// file and line, never a value (a proxy URL may carry credentials).
func loadProxyEnv(root fsroot.Root, p v1alpha1.NodeProxy, apply bool) error {
	if p.EnvironmentFile == "" {
		return nil
	}
	data, err := root.ReadFile(p.EnvironmentFile)
	if err != nil {
		return fmt.Errorf("proxy.environmentFile: %w", err)
	}
	kvs, err := v1alpha1.ParseProxyEnv(data)
	if err != nil {
		return fmt.Errorf("proxy.environmentFile %s: %w", p.EnvironmentFile, err)
	}
	if !apply {
		return nil
	}
	for _, kv := range kvs {
		if err := os.Setenv(kv[0], kv[1]); err != nil {
			return fmt.Errorf("proxy.environmentFile %s: set %s: %w", p.EnvironmentFile, kv[0], err)
		}
	}
	return nil
}
