package node

import (
	"github.com/coreos/go-systemd/v22/unit"

	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/node/tasks"
	"github.com/provision-dev/provision/osprofiles"
)

// Task names of the tarball runtime (containerd/service restarts on them).
const (
	tContainerdUnit = "containerd/unit"
	tContainerdBin  = "containerd/binaries"
)

func runtimeBuilder(n *Node) ([]tasks.Task, error) {
	var out []tasks.Task
	restartOn := []string{tContainerdConfig}
	reloadOn := []string{}
	if n.Profile.Runtime == osprofiles.RuntimeTarball {
		out = append(out,
			tasks.NeedsOnly(&tasks.Extract{TaskName: tContainerdBin, Archive: n.artifactPath(artifacts.Containerd), Dest: n.Profile.BinDir, StripPrefix: "bin/"}, tArtifacts),
			&tasks.File{TaskName: tContainerdUnit, Path: "/etc/systemd/system/containerd.service", Content: containerdUnit(n.binPath("containerd"))})
		restartOn = append(restartOn, tContainerdBin, tArtifacts, tContainerdUnit)
		reloadOn = append(reloadOn, tContainerdUnit)
	}
	out = append(out,
		&tasks.Service{TaskName: "containerd/service", Unit: "containerd.service", Start: true, ReloadOn: reloadOn, RestartOn: restartOn},
		tasks.NeedsOnly(&tasks.Extract{TaskName: "crictl/binary", Archive: n.artifactPath(artifacts.Crictl), Dest: n.Profile.BinDir, Only: []string{"crictl"}}, tArtifacts))
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
