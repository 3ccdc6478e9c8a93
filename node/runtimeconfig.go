package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"sort"

	"sigs.k8s.io/yaml"

	"github.com/pelletier/go-toml/v2"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/node/tasks"
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
	cfg, err := renderContainerdConfig(n.Config.Containerd, n.Env.InContainer)
	if err != nil {
		return nil, err
	}
	out := []tasks.Task{&tasks.File{TaskName: tContainerdConfig, Path: ContainerdConfigPath, Content: cfg}}
	hosts := make([]string, 0, len(n.Config.Containerd.RegistryMirrors))
	for h := range n.Config.Containerd.RegistryMirrors {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		data, err := renderHostsTOML(h, n.Config.Containerd.RegistryMirrors[h])
		if err != nil {
			return nil, err
		}
		name := "containerd/mirror-" + h
		out = append(out, &tasks.File{TaskName: name, Path: path.Join(ContainerdCertsDir, h, "hosts.toml"), Content: data})
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

// renderContainerdConfig builds containerd's config.toml (version 2) as a tree.
func renderContainerdConfig(c v1alpha1.Containerd, inContainer bool) ([]byte, error) {
	sandbox := c.SandboxImage
	if sandbox == "" {
		return nil, errNoSandboxImage
	}
	cri := map[string]any{
		"sandbox_image": sandbox,
		"containerd": map[string]any{
			"default_runtime_name": "runc",
			"runtimes": map[string]any{
				"runc": map[string]any{
					"runtime_type": "io.containerd.runc.v2",
					"options":      map[string]any{"SystemdCgroup": true},
				},
			},
		},
		"registry": map[string]any{"config_path": ContainerdCertsDir},
		"cni":      map[string]any{"bin_dir": CNIBinDir, "conf_dir": CNIConfDir},
	}
	if inContainer {
		// A container lacks CAP_SYS_RESOURCE: containerd may not lower oom_score_adj.
		cri["restrict_oom_score_adj"] = true
	}
	tree := map[string]any{
		"version": 2,
		"plugins": map[string]any{"io.containerd.grpc.v1.cri": cri},
	}
	out, err := toml.Marshal(tree)
	if err != nil {
		return nil, fmt.Errorf("marshal containerd config: %w", err)
	}
	return append([]byte("# Written by provision.\n"), out...), nil
}

// registryServer is the upstream endpoint of a registry host in hosts.toml.
func registryServer(host string) string {
	if host == "docker.io" {
		return "https://registry-1.docker.io"
	}
	return "https://" + host
}

// renderHostsTOML builds certs.d/<host>/hosts.toml: mirrors are tried in order,
// so each [host."..."] table is marshalled on its own and appended in order.
func renderHostsTOML(host string, mirrors []string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# Written by provision: mirrors of " + host + ", tried in order.\n")
	head, err := toml.Marshal(map[string]any{"server": registryServer(host)})
	if err != nil {
		return nil, err
	}
	b.Write(head)
	for _, m := range mirrors {
		t, err := toml.Marshal(map[string]any{"host": map[string]any{m: map[string]any{"capabilities": []string{"pull", "resolve"}}}})
		if err != nil {
			return nil, err
		}
		b.WriteString("\n")
		b.Write(t)
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
