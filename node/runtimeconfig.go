package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/pelletier/go-toml/v2"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/node/tasks"
	"github.com/provision-dev/provision/osprofiles"
)

// Container runtime configuration paths.
const (
	ContainerdConfigPath = "/etc/containerd/config.toml"
	ContainerdCertsDir   = "/etc/containerd/certs.d"
	ContainerdSocket     = "unix:///run/containerd/containerd.sock"
	CrictlConfigPath     = "/etc/crictl.yaml"
	DockerDaemonPath     = "/etc/docker/daemon.json"
)

// Task names the runtime's services restart on.
const (
	tContainerdConfig = "containerd/config"
	tDockerDaemon     = "docker/daemon-json"
)

// runtimeConfigBuilder writes the container runtime's configuration before the
// packages are installed: the package's postinst starts the service with it
// (dpkg keeps the file with --force-confold), so containerd/service need not
// restart it afterwards.
func runtimeConfigBuilder(n *Node) ([]tasks.Task, error) {
	out, err := n.containerdConfigTasks()
	if err != nil {
		return nil, err
	}
	crictl, err := renderCrictl()
	if err != nil {
		return nil, err
	}
	out = append(out, &tasks.File{TaskName: "crictl/config", Path: CrictlConfigPath, Content: crictl})
	if n.needsDocker() {
		daemon, err := renderDockerDaemon()
		if err != nil {
			return nil, err
		}
		out = append(out, &tasks.File{TaskName: tDockerDaemon, Path: DockerDaemonPath, Content: daemon})
	}
	return out, nil
}

// hostsTOMLMarker opens every hosts.toml provision writes: a stale one (of a
// host the config no longer names) is recognised by it and removed.
const hostsTOMLMarker = "# Written by provision: "

// tContainerdHostsPrune names the removal of stale hosts.toml files.
const tContainerdHostsPrune = "containerd/mirrors-prune"

// containerdConfigTasks declares containerd's config.toml (registry
// credentials included, 0600 then), one certs.d/HOST/hosts.toml per mirrored or
// configured registry host, and the removal of the hosts.toml files provision
// wrote for hosts the config no longer names. Base declares them, and join
// again: a prebaked image then pulls with the registries, mirrors and
// credentials of the userdata it joins with, not those it was baked with.
func (n *Node) containerdConfigTasks() ([]tasks.Task, error) {
	creds := n.in.registryCredentials
	if creds.err != nil {
		return nil, creds.err
	}
	cfg, err := renderContainerdConfig(n.Config.Containerd, n.containerdFormat(), creds.creds)
	if err != nil {
		return nil, err
	}
	// With credentials, config.toml holds secrets: 0600 from creation.
	out := []tasks.Task{&tasks.File{TaskName: tContainerdConfig, Path: ContainerdConfigPath, Content: cfg, Secret: len(creds.creds) > 0}}
	hosts, err := renderHostsFiles(n.Config.Containerd)
	if err != nil {
		return nil, err
	}
	keep := slices.Sorted(maps.Keys(hosts))
	for _, h := range keep {
		out = append(out, &tasks.File{TaskName: "containerd/mirror-" + h, Path: path.Join(ContainerdCertsDir, h, "hosts.toml"), Content: hosts[h]})
	}
	out = append(out, &tasks.PruneFiles{TaskName: tContainerdHostsPrune, Dir: ContainerdCertsDir, File: "hosts.toml", Marker: []byte(hostsTOMLMarker), Keep: keep})
	return out, nil
}

// tContainerdRestart names join's restart of containerd.
const tContainerdRestart = "containerd/restart"

// runtimeJoinTasks declares join's share of the runtime: the containerd
// configuration base wrote (containerdConfigTasks) and the proxy drop-in, as
// the node config now says, and one restart of containerd, before the kubelet
// starts, when config.toml or the drop-in changed. A hosts.toml change needs
// none: containerd reads certs.d at each pull (its docs/hosts.md). After a base
// with the same config nothing changes and no command runs.
func (n *Node) runtimeJoinTasks() ([]tasks.Task, error) {
	out, err := n.containerdConfigTasks()
	if err != nil {
		return nil, err
	}
	return append(out, n.containerdProxyTask(),
		&tasks.Service{TaskName: tContainerdRestart, Unit: "containerd.service", Start: true, OnlyOnChange: true,
			ReloadOn: []string{tContainerdProxy}, RestartOn: []string{tContainerdConfig, tContainerdProxy}}), nil
}

// containerdFormat is what the node's containerd config must look like.
type containerdFormat struct {
	// Version is the config version: 4 for containerd 2.3+, 3 for 2.0-2.2,
	// 2 for 1.x (containerd's RELEASES.md, "Daemon Configuration"). 3 and 4
	// differ only in the server settings (grpc, ttrpc, debug, metrics) provision
	// does not set; a containerd reads older versions by migrating them in
	// memory at each start, with a warning.
	Version int
	// CNIBinDirs: containerd 2.1+ takes cni.bin_dirs (bin_dir is deprecated in
	// 2.1 and removed in 2.4); 2.0 and 1.x take bin_dir.
	CNIBinDirs bool
	// Runc is the runc binary of a tarball install (BinaryName); "" means PATH's.
	Runc string
	// InContainer: a container lacks CAP_SYS_RESOURCE, so containerd may not
	// lower oom_score_adj (restrict_oom_score_adj).
	InContainer bool
}

// containerdFormat picks the config format for the node's containerd. A tarball
// install knows its version (containerd.version, the URL's, or the default):
// version 4 for 2.3+, 3 for 2.0-2.2. A package or an OS image gets version 2, which 1.x reads
// and 2.x migrates in memory at each start: the config is written before the
// package is installed (dpkg keeps it, so postinst starts containerd with it),
// when the package's version is not known yet, and Debian 12, Debian 13 and
// Ubuntu's LTS releases ship 1.x.
func (n *Node) containerdFormat() containerdFormat {
	f := containerdFormat{Version: 2, InContainer: n.Env.InContainer}
	if n.Profile.Runtime != osprofiles.RuntimeTarball {
		return f
	}
	f.Runc = n.binPath(artifacts.MustGet(artifacts.Runc).File)
	v := n.tarballContainerd()
	switch major, minor := majorMinor(v); {
	case major > 2 || major == 2 && minor >= 3:
		f.Version, f.CNIBinDirs = 4, true
	case major == 2:
		f.Version, f.CNIBinDirs = 3, minor >= 1
	}
	return f
}

// tarballContainerd is the containerd version of a tarball install (v1alpha1's TarballVersion).
func (n *Node) tarballContainerd() string {
	return n.Config.Containerd.TarballVersion(n.Config.Artifacts.Get(artifacts.Containerd).URL)
}

// renderContainerdConfig builds containerd's config.toml as a tree: version 3
// or 4 (plugins io.containerd.cri.v1.images and io.containerd.cri.v1.runtime)
// for containerd 2.x, version 2 (io.containerd.grpc.v1.cri) for 1.x.
//
// creds become the CRI's registry.configs."HOST".auth (containerd's
// docs/cri/registry.md: deprecated, but kept until a secret management
// alternative exists), keyed by the host the CRI contacts (docker.io's is
// registry-1.docker.io): for a pull through a mirror, the mirror's host.
func renderContainerdConfig(c v1alpha1.Containerd, f containerdFormat, creds v1alpha1.RegistryCredentials) ([]byte, error) {
	sandbox := c.SandboxImage
	if sandbox == "" {
		return nil, errNoSandboxImage
	}
	runcOptions := map[string]any{"SystemdCgroup": true}
	if f.Runc != "" {
		runcOptions["BinaryName"] = f.Runc
	}
	runtimes := map[string]any{
		"default_runtime_name": "runc",
		"runtimes": map[string]any{
			"runc": map[string]any{"runtime_type": "io.containerd.runc.v2", "options": runcOptions},
		},
	}
	cni := map[string]any{"conf_dir": CNIConfDir}
	if f.CNIBinDirs {
		cni["bin_dirs"] = []string{CNIBinDir}
	} else {
		cni["bin_dir"] = CNIBinDir
	}
	registry := map[string]any{"config_path": ContainerdCertsDir}
	if len(creds) > 0 {
		configs := map[string]any{}
		for _, h := range slices.Sorted(maps.Keys(creds)) { // sorted: registry-1.docker.io's own entry wins over docker.io's
			a := creds[h]
			auth := map[string]any{}
			if a.IdentityToken != "" {
				auth["identitytoken"] = a.IdentityToken
			} else {
				auth["username"], auth["password"] = a.Username, a.Password
			}
			configs[contactedHost(h)] = map[string]any{"auth": auth}
		}
		registry["configs"] = configs
	}
	var tree map[string]any
	switch f.Version {
	case 3, 4:
		runtime := map[string]any{"containerd": runtimes, "cni": cni}
		if f.InContainer {
			runtime["restrict_oom_score_adj"] = true
		}
		tree = map[string]any{"version": f.Version, "plugins": map[string]any{
			"io.containerd.cri.v1.images":  map[string]any{"pinned_images": map[string]any{"sandbox": sandbox}, "registry": registry},
			"io.containerd.cri.v1.runtime": runtime,
		}}
	case 2:
		cri := map[string]any{"sandbox_image": sandbox, "containerd": runtimes, "registry": registry, "cni": cni}
		if f.InContainer {
			cri["restrict_oom_score_adj"] = true
		}
		tree = map[string]any{"version": 2, "plugins": map[string]any{"io.containerd.grpc.v1.cri": cri}}
	default:
		return nil, fmt.Errorf("containerd config version %d: provision writes 2 (containerd 1.x), 3 (2.0-2.2) or 4 (2.3+)", f.Version)
	}
	out, err := toml.Marshal(tree)
	if err != nil {
		return nil, fmt.Errorf("marshal containerd config: %w", err)
	}
	return append([]byte("# Written by provision.\n"), out...), nil
}

// majorMinor returns MAJOR and MINOR of a containerd version [v]MAJOR.MINOR.PATCH
// (validated; 0, 0 if not).
func majorMinor(v string) (major, minor int) {
	fmt.Sscanf(strings.TrimPrefix(v, "v"), "%d.%d", &major, &minor)
	return major, minor
}

// registryServer is the upstream endpoint of a registry host in hosts.toml.
func registryServer(host string) string {
	return "https://" + contactedHost(host)
}

// contactedHost is the host containerd contacts for registry host h: Docker
// Hub's registry for docker.io, else h.
func contactedHost(h string) string {
	if h == "docker.io" {
		return "registry-1.docker.io"
	}
	return h
}

// tlsSettings are hosts.toml's TLS keys for registry host h: ca and
// skip_verify as containerd.registries[h] says (none when absent).
func tlsSettings(regs map[string]v1alpha1.Registry, h string, into map[string]any) map[string]any {
	if r, ok := regs[h]; ok {
		if r.CAPath != "" {
			into["ca"] = r.CAPath
		}
		if r.SkipVerify {
			into["skip_verify"] = true
		}
	}
	return into
}

// mirrorHost is the host[:port] of a mirror URL (validated), "" if it has none.
func mirrorHost(m string) string {
	if u, err := url.Parse(m); err == nil {
		return u.Host
	}
	return ""
}

// renderHostsFiles builds every certs.d/<host>/hosts.toml, by host: one per
// upstream namespace of registryMirrors (its mirrors, each with the TLS
// settings containerd.registries gives its host, and the namespace's own for
// the server), and one per other registries host (its server's TLS settings).
func renderHostsFiles(c v1alpha1.Containerd) (map[string][]byte, error) {
	out := map[string][]byte{}
	for h, mirrors := range c.RegistryMirrors {
		data, err := renderHostsTOML(h, mirrors, c.Registries)
		if err != nil {
			return nil, fmt.Errorf("hosts.toml of %s: %w", h, err)
		}
		out[h] = data
	}
	for h := range c.Registries {
		if _, ok := out[h]; ok {
			continue
		}
		data, err := renderHostsTOML(h, nil, c.Registries)
		if err != nil {
			return nil, fmt.Errorf("hosts.toml of %s: %w", h, err)
		}
		out[h] = data
	}
	return out, nil
}

// renderHostsTOML builds certs.d/<host>/hosts.toml: mirrors are tried in order,
// so each [host."..."] table is marshalled on its own and appended in order.
func renderHostsTOML(host string, mirrors []string, regs map[string]v1alpha1.Registry) ([]byte, error) {
	var b bytes.Buffer
	if len(mirrors) > 0 {
		b.WriteString(hostsTOMLMarker + "mirrors of " + host + ", tried in order.\n")
	} else {
		b.WriteString(hostsTOMLMarker + "TLS settings of " + host + ".\n")
	}
	head, err := toml.Marshal(tlsSettings(regs, host, map[string]any{"server": registryServer(host)}))
	if err != nil {
		return nil, err
	}
	b.Write(head)
	for _, m := range mirrors {
		entry := tlsSettings(regs, mirrorHost(m), map[string]any{"capabilities": []string{"pull", "resolve"}})
		t, err := toml.Marshal(map[string]any{"host": map[string]any{m: entry}})
		if err != nil {
			return nil, err
		}
		// go-toml opens each document with the implicit parent table [host]; a
		// second [host] would redefine it (invalid TOML), so only the mirror's
		// own [host.'URL'] table is kept.
		b.WriteString("\n")
		b.Write(bytes.TrimPrefix(t, []byte("[host]\n")))
	}
	var check map[string]any
	if err := toml.Unmarshal(b.Bytes(), &check); err != nil {
		return nil, fmt.Errorf("rendered hosts.toml does not parse: %w", err)
	}
	return b.Bytes(), nil
}

type crictlConfig struct {
	RuntimeEndpoint string `json:"runtime-endpoint"`
	ImageEndpoint   string `json:"image-endpoint"`
	Timeout         int    `json:"timeout"`
}

func renderCrictl() ([]byte, error) {
	return yaml.Marshal(crictlConfig{RuntimeEndpoint: ContainerdSocket, ImageEndpoint: ContainerdSocket, Timeout: 10})
}

// renderDockerDaemon builds /etc/docker/daemon.json (indented, final newline).
func renderDockerDaemon() ([]byte, error) {
	out, err := json.MarshalIndent(map[string]any{"exec-opts": []string{"native.cgroupdriver=systemd"}, "log-driver": "json-file", "log-opts": map[string]string{"max-size": "100m"}}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal docker daemon.json: %w", err)
	}
	return append(out, '\n'), nil
}
