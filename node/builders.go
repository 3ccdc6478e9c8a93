package node

import (
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/internal/kubeconfig"
	"github.com/provision-dev/provision/node/tasks"
	"github.com/provision-dev/provision/osprofiles"
)

// Task names other tasks refer to (restart/reload triggers).
const (
	tArtifacts        = "artifacts/download"
	tContainerdUnit   = "containerd/unit"
	tContainerdConfig = "containerd/config"
	tContainerdBin    = "containerd/binaries"
	tRunc             = "containerd/runc"
	tDockerDaemon     = "docker/daemon-json"
	tKubeletBinary    = "kubelet/binary"
	tKubeletConfig    = "kubelet/config"
	tKubeletUnit      = "kubelet/unit"
	tKubeletDropIn    = "kubelet/dropin"
	tBootstrap        = "kubelet/bootstrap-kubeconfig"
	tCACert           = "kubelet/ca-cert"
	tCloudConfig      = "kubelet/cloud-config"
)

// builder declares the tasks of one concern.
type builder func(n *Node) ([]tasks.Task, error)

func (n *Node) baseTasks() ([]tasks.Task, error) {
	return n.build(runtimeConfigBuilder, packagesBuilder, kernelBuilder, swapBuilder, artifactsBuilder, cniBuilder, runtimeBuilder, healthBuilder)
}

func (n *Node) joinTasks() ([]tasks.Task, error) {
	if err := n.checkBaseDone(); err != nil {
		return nil, err
	}
	return n.build(joinBuilder)
}

func (n *Node) build(bs ...builder) ([]tasks.Task, error) {
	var out []tasks.Task
	for _, b := range bs {
		ts, err := b(n)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	return out, nil
}

func (n *Node) needsDocker() bool {
	return n.Profile.NeedsDocker(kubeletMinor(n.Config.Kubernetes.Version))
}

func (n *Node) binPath(name string) string { return path.Join(n.Profile.BinDir, name) }

// provisionPath is where the provision binary lives on the node.
func (n *Node) provisionPath() string {
	if n.opts.BinaryPath != "" {
		return n.opts.BinaryPath
	}
	return n.binPath("provision")
}

// packagesBuilder: mirror repositories and the OS packages (none where /usr is immutable).
func packagesBuilder(n *Node) ([]tasks.Task, error) {
	p := n.Profile
	if p.PackageManager == osprofiles.NoPackages {
		return nil, nil
	}
	var out []tasks.Task
	exclusiveRepo := ""
	switch {
	case p.IsDebianFamily() && n.Config.Packages.Apt != nil:
		a := n.Config.Packages.Apt
		data, err := renderAptSource(a)
		if err != nil {
			return nil, fmt.Errorf("packages.apt: %w", err)
		}
		out = append(out, &tasks.File{TaskName: "packages/apt-source", Path: AptSourcePath, Content: data})
		if a.Exclusive {
			out = append(out, &tasks.DisableOthers{TaskName: "packages/apt-exclusive", Dir: "/etc/apt/sources.list.d",
				Suffixes: []string{".list", ".sources"}, Keep: path.Base(AptSourcePath), Extra: []string{"/etc/apt/sources.list"}})
		}
	case p.IsRHELFamily() && n.Config.Packages.Yum != nil:
		y := n.Config.Packages.Yum
		data, err := renderYumRepo(y)
		if err != nil {
			return nil, fmt.Errorf("packages.yum: %w", err)
		}
		out = append(out, &tasks.File{TaskName: "packages/yum-repo", Path: YumRepoPath, Content: data})
		if y.Exclusive {
			exclusiveRepo = YumRepoID
			out = append(out, &tasks.DisableOthers{TaskName: "packages/yum-exclusive", Dir: "/etc/yum.repos.d",
				Suffixes: []string{".repo"}, Keep: path.Base(YumRepoPath)})
		}
	}
	names := append([]string(nil), p.Packages...)
	if p.Runtime == osprofiles.RuntimePackage && p.ContainerdPackage != "" {
		names = append(names, p.ContainerdPackage)
	}
	if n.needsDocker() && p.DockerPackage != "" {
		names = append(names, p.DockerPackage)
	}
	out = append(out, &tasks.Packages{TaskName: "packages/install", Names: names, ExclusiveRepo: exclusiveRepo})
	return out, nil
}

func kernelBuilder(n *Node) ([]tasks.Task, error) {
	return []tasks.Task{
		&tasks.File{TaskName: "kernel/modules-config", Path: ModulesPath, Content: renderModules()},
		&tasks.File{TaskName: "kernel/sysctl-config", Path: SysctlPath, Content: renderSysctl()},
		&tasks.Modprobe{TaskName: "kernel/modules-load", Modules: Modules},
		&tasks.SysctlApply{TaskName: "kernel/sysctl-apply", File: SysctlPath, Values: Sysctls},
	}, nil
}

func swapBuilder(n *Node) ([]tasks.Task, error) {
	return []tasks.Task{
		&tasks.SwapOff{TaskName: "swap/off"},
		&tasks.EditFile{TaskName: "swap/fstab", Path: "/etc/fstab", Edit: tasks.CommentSwap, What: "comment out swap entries"},
		&tasks.Symlink{TaskName: "swap/mask-swap-target", Path: "/etc/systemd/system/swap.target", Target: "/dev/null"},
	}, nil
}

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
		list = append(list, tasks.Artifact{URL: src.URL, SHA256: src.SHA256, Path: n.artifactPath(a.Name), Mode: a.Mode()})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: required on %s", strings.Join(missing, ", "), n.Profile.Name)
	}
	if provision != nil {
		a := artifacts.MustGet(artifacts.Provision)
		list = append(list, tasks.Artifact{URL: provision.URL, SHA256: provision.SHA256, Path: n.artifactPath(a.Name), Mode: a.Mode()})
	}
	// The downloads need only what prepares their sources (an airgap bundle), not
	// the packages or kernel settings before them: they run during the install.
	var after []string
	for _, t := range pre {
		after = append(after, t.Name())
	}
	return append(pre, tasks.After(&tasks.Download{TaskName: tArtifacts, Artifacts: list}, after...)), nil
}

func cniBuilder(n *Node) ([]tasks.Task, error) {
	return []tasks.Task{tasks.After(&tasks.Extract{TaskName: "cni/plugins", Archive: n.artifactPath(artifacts.CNIPlugins), Dest: CNIBinDir}, tArtifacts)}, nil
}

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

func runtimeBuilder(n *Node) ([]tasks.Task, error) {
	var out []tasks.Task
	restartOn := []string{tContainerdConfig}
	reloadOn := []string{}
	if n.Profile.Runtime == osprofiles.RuntimeTarball {
		out = append(out,
			tasks.After(&tasks.Extract{TaskName: tContainerdBin, Archive: n.artifactPath(artifacts.Containerd), Dest: n.Profile.BinDir, StripPrefix: "bin/"}, tArtifacts),
			&tasks.File{TaskName: tContainerdUnit, Path: "/etc/systemd/system/containerd.service", Content: containerdUnit(n.binPath("containerd"))})
		restartOn = append(restartOn, tContainerdBin, tArtifacts, tContainerdUnit)
		reloadOn = append(reloadOn, tContainerdUnit)
	}
	out = append(out,
		&tasks.Service{TaskName: "containerd/service", Unit: "containerd.service", Start: true, ReloadOn: reloadOn, RestartOn: restartOn},
		tasks.After(&tasks.Extract{TaskName: "crictl/binary", Archive: n.artifactPath(artifacts.Crictl), Dest: n.Profile.BinDir, Only: []string{"crictl"}}, tArtifacts))
	if n.needsDocker() {
		out = append(out, &tasks.Service{TaskName: "docker/service", Unit: "docker.service", Start: true, RestartOn: []string{tDockerDaemon}})
	}
	return out, nil
}

func containerdUnit(bin string) []byte {
	return serializeUnit([]*unit.UnitOption{
		unit.NewUnitOption("Unit", "Description", "containerd container runtime"),
		unit.NewUnitOption("Unit", "Documentation", "https://containerd.io"),
		unit.NewUnitOption("Unit", "After", "network.target local-fs.target"),
		unit.NewUnitOption("Service", "ExecStartPre", "-/sbin/modprobe overlay"),
		unit.NewUnitOption("Service", "ExecStart", execLine([]string{bin})),
		unit.NewUnitOption("Service", "Type", "notify"),
		unit.NewUnitOption("Service", "Delegate", "yes"),
		unit.NewUnitOption("Service", "KillMode", "process"),
		unit.NewUnitOption("Service", "Restart", "always"),
		unit.NewUnitOption("Service", "RestartSec", "5"),
		unit.NewUnitOption("Service", "LimitNPROC", "infinity"),
		unit.NewUnitOption("Service", "LimitCORE", "infinity"),
		unit.NewUnitOption("Service", "TasksMax", "infinity"),
		unit.NewUnitOption("Service", "OOMScoreAdjust", "-999"),
		unit.NewUnitOption("Install", "WantedBy", "multi-user.target"),
	})
}

// Health check units: a oneshot `provision health NAME` every 30 s from a timer.
func healthUnits(provisionBin, name, after string, extra ...string) (service, timer []byte) {
	service = serializeUnit([]*unit.UnitOption{
		unit.NewUnitOption("Unit", "Description", "provision health check of "+name),
		unit.NewUnitOption("Unit", "After", after),
		unit.NewUnitOption("Service", "Type", "oneshot"),
		unit.NewUnitOption("Service", "ExecStart", execLine(append([]string{provisionBin, "health", name}, extra...))),
	})
	timer = serializeUnit([]*unit.UnitOption{
		unit.NewUnitOption("Unit", "Description", "Run the provision health check of "+name+" every 30s"),
		unit.NewUnitOption("Timer", "OnBootSec", "2min"),
		unit.NewUnitOption("Timer", "OnUnitActiveSec", "30s"),
		unit.NewUnitOption("Timer", "AccuracySec", "5s"),
		unit.NewUnitOption("Install", "WantedBy", "timers.target"),
	})
	return service, timer
}

func healthBuilder(n *Node) ([]tasks.Task, error) {
	bin := n.provisionPath()
	var out []tasks.Task
	for _, c := range []struct {
		name, after string
		extra       []string
	}{
		{"kubelet", "kubelet.service", nil},
		{"containerd", "containerd.service", []string{"--crictl", n.binPath("crictl")}},
	} {
		svc, tmr := healthUnits(bin, c.name, c.after, c.extra...)
		base := "/etc/systemd/system/provision-health-" + c.name
		svcTask, tmrTask := "health/"+c.name+"-service", "health/"+c.name+"-timer"
		// The health units need nothing else of base (a check skips a service that is
		// not enabled yet), so they are written and enabled during the package install.
		out = append(out,
			tasks.After(&tasks.File{TaskName: svcTask, Path: base + ".service", Content: svc}),
			tasks.After(&tasks.File{TaskName: tmrTask, Path: base + ".timer", Content: tmr}),
			tasks.After(&tasks.Service{TaskName: "health/" + c.name + "-enable", Unit: "provision-health-" + c.name + ".timer", Start: true,
				ReloadOn: []string{svcTask, tmrTask}, RestartOn: []string{tmrTask}}, svcTask, tmrTask))
	}
	return out, nil
}

// kubeletArgs returns the kubelet's command line.
func (n *Node) kubeletArgs() []string {
	k := n.Config.Kubernetes
	minor := kubeletMinor(k.Version)
	args := []string{n.binPath("kubelet"),
		"--bootstrap-kubeconfig=" + k.BootstrapKubeconfigPath,
		"--kubeconfig=" + k.KubeconfigPath,
		"--config=" + KubeletConfigPath,
	}
	if !n.needsDocker() && minor < 27 {
		if minor < 24 {
			args = append(args, "--container-runtime=remote")
		}
		args = append(args, "--container-runtime-endpoint="+ContainerdSocket)
	}
	if k.CloudProvider != "" {
		args = append(args, "--cloud-provider="+k.CloudProvider)
		if k.CloudProvider != "external" && k.CloudConfigPath != "" {
			args = append(args, "--cloud-config="+k.CloudConfigPath)
		}
	}
	if k.NodeIP != "" {
		args = append(args, "--node-ip="+k.NodeIP)
	}
	return args
}

func (n *Node) kubeletUnit() []byte {
	return serializeUnit([]*unit.UnitOption{
		unit.NewUnitOption("Unit", "Description", "kubelet: The Kubernetes Node Agent"),
		unit.NewUnitOption("Unit", "Documentation", "https://kubernetes.io/docs/"),
		unit.NewUnitOption("Unit", "Wants", "network-online.target"),
		unit.NewUnitOption("Unit", "After", "network-online.target containerd.service"),
		unit.NewUnitOption("Unit", "StartLimitIntervalSec", "0"),
		unit.NewUnitOption("Service", "ExecStart", execLine([]string{n.binPath("kubelet")})),
		unit.NewUnitOption("Service", "Restart", "always"),
		unit.NewUnitOption("Service", "RestartSec", "5"),
		unit.NewUnitOption("Install", "WantedBy", "multi-user.target"),
	})
}

func (n *Node) kubeletDropIn() []byte {
	return serializeUnit([]*unit.UnitOption{
		unit.NewUnitOption("Service", "ExecStart", ""),
		unit.NewUnitOption("Service", "ExecStart", execLine(n.kubeletArgs())),
	})
}

func joinBuilder(n *Node) ([]tasks.Task, error) {
	k := n.Config.Kubernetes
	s := n.opts.Seed
	out := []tasks.Task{&tasks.RequireFile{TaskName: "kubelet/binary-present", Path: n.binPath("kubelet"), Hint: "run `provision node base` first"}}
	if s.CACert != "" {
		ca, err := os.ReadFile(s.CACert)
		if err != nil {
			return nil, fmt.Errorf("--ca-cert: %w", err)
		}
		out = append(out, &tasks.File{TaskName: tCACert, Path: k.CACertPath, Content: ca})
	}
	if s.CloudConfig != "" {
		cc, err := os.ReadFile(s.CloudConfig)
		if err != nil {
			return nil, fmt.Errorf("--cloud-config: %w", err)
		}
		out = append(out, &tasks.File{TaskName: tCloudConfig, Path: k.CloudConfigPath, Content: cc, Secret: true})
	}
	if n.token != "" {
		kc, err := kubeconfig.Build(kubeconfig.Bootstrap{Server: k.APIServerURL, CAPath: k.CACertPath, Token: n.token})
		if err != nil {
			return nil, err
		}
		out = append(out, &tasks.File{TaskName: tBootstrap, Path: k.BootstrapKubeconfigPath, Content: kc, Secret: true})
	} else if !n.Env.Root.Exists(k.KubeconfigPath) {
		out = append(out, &tasks.RequireFile{TaskName: tBootstrap, Path: k.BootstrapKubeconfigPath,
			Hint: "it is written by the generated userdata; or pass --token/--token-file with --apiserver-url and --ca-cert"})
	}
	out = append(out, &tasks.RequireFile{TaskName: "kubelet/ca-present", Path: k.CACertPath, Hint: "pass --ca-cert or let the userdata write it"})
	kcfg, err := renderKubeletConfig(k)
	if err != nil {
		return nil, err
	}
	url := n.opts.HealthzURL
	if url == "" {
		url = KubeletHealthzURL
	}
	timeout := n.opts.HealthzTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	out = append(out,
		&tasks.File{TaskName: tKubeletConfig, Path: KubeletConfigPath, Content: kcfg},
		&tasks.File{TaskName: tKubeletUnit, Path: KubeletUnitPath, Content: n.kubeletUnit()},
		&tasks.File{TaskName: tKubeletDropIn, Path: KubeletDropInPath, Content: n.kubeletDropIn()},
		&tasks.Service{TaskName: "kubelet/service", Unit: "kubelet.service", Start: true,
			ReloadOn:  []string{tKubeletUnit, tKubeletDropIn},
			RestartOn: []string{tKubeletUnit, tKubeletDropIn, tKubeletConfig, tBootstrap, tCACert, tCloudConfig}},
		// The kubelet serves healthz only after its TLS bootstrap: wait for that
		// first, failing fast with the kubelet's error when the token is refused.
		&tasks.KubeletBootstrap{TaskName: "kubelet/tls-bootstrap", CertPath: KubeletClientCertPath, Unit: "kubelet.service",
			Timeout: timeout, Grace: bootstrapRefusalGrace, Poll: 200 * time.Millisecond},
		&tasks.WaitHTTP{TaskName: "kubelet/healthz", URL: url, Timeout: timeout, Poll: 200 * time.Millisecond},
	)
	return out, nil
}
