package node

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/node/tasks"
	"github.com/provision-dev/provision/osprofiles"
)

// Task names of the runtime (containerd/service restarts on them).
const (
	tContainerdUnit   = "containerd/unit"
	tContainerdBin    = "containerd/binaries"
	tContainerdDropIn = "containerd/config-dropin"
	tContainerdProxy  = "containerd/proxy-dropin"
)

// ContainerdUnitPath is the unit provision writes for a tarball install;
// ContainerdDropInPath the drop-in that points an OS image's containerd at
// provision's config.
const (
	ContainerdUnitPath   = "/etc/systemd/system/containerd.service"
	ContainerdDropInPath = "/etc/systemd/system/containerd.service.d/10-provision.conf"
	// ContainerdProxyDropInPath gives containerd (whichever unit runs it) the
	// proxy settings' environment file, for image pulls.
	ContainerdProxyDropInPath = "/etc/systemd/system/containerd.service.d/20-provision-proxy.conf"
)

func runtimeBuilder(n *Node) ([]tasks.Task, error) {
	var out []tasks.Task
	restartOn := []string{tContainerdConfig}
	reloadOn := []string{}
	switch n.Profile.Runtime {
	case osprofiles.RuntimeTarball:
		out = append(out,
			tasks.NeedsOnly(&tasks.Extract{TaskName: tContainerdBin, Archive: n.artifactPath(artifacts.Containerd), Dest: n.Profile.BinDir, StripPrefix: "bin/"}, tArtifacts),
			&tasks.File{TaskName: tContainerdUnit, Path: ContainerdUnitPath, Content: containerdUnit(n.binPath("containerd"))})
		restartOn = append(restartOn, tContainerdBin, tArtifacts, tContainerdUnit)
		reloadOn = append(reloadOn, tContainerdUnit)
	case osprofiles.RuntimeBuiltin:
		// Flatcar's unit runs `containerd --config ${CONTAINERD_CONFIG}` with
		// CONTAINERD_CONFIG=/usr/share/containerd/config.toml: the drop-in
		// Flatcar documents for a custom config points it at provision's. (Fedora
		// CoreOS's unit reads /etc/containerd/config.toml already; the variable
		// is unused there.)
		out = append(out, &tasks.File{TaskName: tContainerdDropIn, Path: ContainerdDropInPath, Content: containerdConfigDropIn()})
		restartOn = append(restartOn, tContainerdDropIn)
		reloadOn = append(reloadOn, tContainerdDropIn)
	}
	out = append(out, n.containerdProxyTask())
	restartOn = append(restartOn, tContainerdProxy)
	reloadOn = append(reloadOn, tContainerdProxy)
	out = append(out,
		&tasks.Service{TaskName: "containerd/service", Unit: "containerd.service", Start: true, ReloadOn: reloadOn, RestartOn: restartOn},
		n.containerdVersionCheck(),
		tasks.NeedsOnly(&tasks.Extract{TaskName: "crictl/binary", Archive: n.artifactPath(artifacts.Crictl), Dest: n.Profile.BinDir, Only: []string{"crictl"}}, tArtifacts))
	if n.needsDocker() {
		out = append(out, &tasks.Service{TaskName: "docker/service", Unit: "docker.service", Start: true, RestartOn: []string{tDockerDaemon}})
	}
	return out, nil
}

// containerdProxyTask declares containerd's proxy drop-in, or its removal
// when the config has no proxy (a prebaked image joining without the proxy it
// was baked with).
func (n *Node) containerdProxyTask() tasks.Task {
	if f := n.Config.Proxy.EnvironmentFile; f != "" {
		return &tasks.File{TaskName: tContainerdProxy, Path: ContainerdProxyDropInPath, Content: proxyDropIn(f)}
	}
	return &tasks.Absent{TaskName: tContainerdProxy, Path: ContainerdProxyDropInPath}
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

// proxyDropIn is a drop-in that reads the proxy settings' environment file
// (which may hold credentials: the unit reads it, no value is copied here).
func proxyDropIn(envFile string) []byte {
	return serializeUnit([]*unit.UnitOption{
		unit.NewUnitOption("Service", "EnvironmentFile", envFile),
	})
}

// containerdConfigDropIn sets CONTAINERD_CONFIG, which the OS image's unit
// passes to `containerd --config`, to provision's config.
func containerdConfigDropIn() []byte {
	return serializeUnit([]*unit.UnitOption{
		unit.NewUnitOption("Service", "Environment", "CONTAINERD_CONFIG="+ContainerdConfigPath),
	})
}

// containerdVersionCheck declares the check of the installed containerd's
// version against the kubelet's minimum (internal/kubeversions).
func (n *Node) containerdVersionCheck() tasks.Task {
	c := &containerdVersion{Bin: "containerd"}
	if n.Profile.Runtime == osprofiles.RuntimeTarball {
		c.Bin, c.Want = n.binPath("containerd"), n.tarballContainerd()
	}
	r := n.Release()
	c.Kubelet, c.Min = r.String(), r.MinContainerd
	return c
}

// tarballContainerdWarning is the warning for a tarball containerd older than
// the kubelet minor's minimum, known before anything runs ("" otherwise).
func (n *Node) tarballContainerdWarning() string {
	if n.Profile.Runtime != osprofiles.RuntimeTarball {
		return ""
	}
	r := n.Release()
	return minContainerdWarning(n.tarballContainerd(), "from the tarball", r.MinContainerd, r.String(), true)
}

// minContainerdWarning says that containerd version is older than min, the
// minimum for kubelet minor kubelet, and what to do about it on a tarball or a
// package node ("" when it is not older, or min is unknown).
func minContainerdWarning(version, how, min, kubelet string, tarball bool) string {
	if min == "" || compareVersions(version, min) >= 0 {
		return ""
	}
	fix := "use containerd.install: tarball or a newer package"
	if tarball {
		fix = "point artifacts.containerd at a newer release (and containerd.version, if set)"
	}
	return fmt.Sprintf("warning: containerd %s (%s) is older than %s, the minimum for kubelet %s: %s", version, how, min, kubelet, fix)
}

// tContainerdVersion names the version check.
const tContainerdVersion = "containerd/version"

// containerdVersion reads the installed containerd's version (`containerd
// --version`) and reports, in its detail and the log, a containerd older than
// the kubelet's minimum or other than the tarball's: a warning, not a failure
// (the kubelet may still run; status.json records it).
type containerdVersion struct {
	// Bin is the containerd binary (a path for a tarball install, else found on PATH).
	Bin string
	// Want is the tarball's version ("" for a package or an OS image's).
	Want string
	// Kubelet ("1.MINOR") and Min are the kubelet's minor and its minimum
	// containerd (internal/kubeversions).
	Kubelet, Min string
}

func (t *containerdVersion) Name() string { return tContainerdVersion }

// containerdVersionRE finds the version in `containerd --version`:
// "containerd github.com/containerd/containerd/v2 v2.3.7 REV" or Debian's
// "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+b1".
var containerdVersionRE = regexp.MustCompile(`^containerd \S+ v?([0-9]+\.[0-9]+\.[0-9]+)`)

func (t *containerdVersion) Run(ctx context.Context, e *tasks.Env, dry bool) (tasks.Outcome, error) {
	if dry || !e.Live {
		if t.Want != "" {
			return t.report(e, t.Want, "from the tarball")
		}
		if !e.Live {
			return tasks.Outcome{Result: tasks.Skipped, Detail: "root is not the running system: containerd --version not run"}, nil
		}
		return tasks.Outcome{Result: tasks.Unchanged, Detail: "would check containerd --version" + t.needs()}, nil
	}
	res, err := e.Exec(ctx, nil, t.Bin, "--version")
	if err != nil {
		return tasks.Outcome{}, fmt.Errorf("%s --version: %w", t.Bin, err)
	}
	out := strings.TrimSpace(string(res.Stdout))
	m := containerdVersionRE.FindStringSubmatch(out)
	if m == nil {
		return tasks.Outcome{Result: tasks.Unchanged, Detail: fmt.Sprintf("%s --version printed %q: version not checked", t.Bin, firstLine(out))}, nil
	}
	if t.Want != "" && m[1] != t.Want {
		warn := fmt.Sprintf("warning: %s is containerd %s, but the node config says the tarball holds %s (containerd.version or artifacts.containerd.url): the config format follows the latter", t.Bin, m[1], t.Want)
		if e.Log != nil {
			e.Log.Warn(warn)
		}
		return tasks.Outcome{Result: tasks.Unchanged, Detail: warn}, nil
	}
	return t.report(e, m[1], "installed")
}

// report compares version with the kubelet's minimum.
func (t *containerdVersion) report(e *tasks.Env, version, how string) (tasks.Outcome, error) {
	if warn := minContainerdWarning(version, how, t.Min, t.Kubelet, t.Want != ""); warn != "" {
		if e.Log != nil {
			e.Log.Warn(warn)
		}
		return tasks.Outcome{Result: tasks.Unchanged, Detail: warn}, nil
	}
	return tasks.Outcome{Result: tasks.Unchanged, Detail: fmt.Sprintf("containerd %s (%s)%s", version, how, t.needs())}, nil
}

func (t *containerdVersion) needs() string {
	if t.Min == "" {
		return ""
	}
	return fmt.Sprintf("; kubelet %s needs %s or newer", t.Kubelet, t.Min)
}

// compareVersions compares two MAJOR.MINOR.PATCH versions (a leading "v" and
// anything after PATCH ignored) numerically: -1, 0 or 1.
func compareVersions(a, b string) int {
	pa, pb := versionParts(a), versionParts(b)
	for i := range pa {
		if pa[i] != pb[i] {
			if pa[i] < pb[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func versionParts(v string) [3]int {
	var out [3]int
	for i, f := range strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3) {
		end := 0
		for end < len(f) && f[end] >= '0' && f[end] <= '9' {
			end++
		}
		out[i], _ = strconv.Atoi(f[:end])
	}
	return out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	if len(line) > 120 {
		line = line[:120] + "..."
	}
	return line
}
