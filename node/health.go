package node

import (
	"github.com/coreos/go-systemd/v22/unit"

	"github.com/provision-dev/provision/node/tasks"
)

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
			tasks.Independent(&tasks.File{TaskName: svcTask, Path: base + ".service", Content: svc}),
			tasks.Independent(&tasks.File{TaskName: tmrTask, Path: base + ".timer", Content: tmr}),
			tasks.NeedsOnly(&tasks.Service{TaskName: "health/" + c.name + "-enable", Unit: "provision-health-" + c.name + ".timer", Start: true,
				ReloadOn: []string{svcTask, tmrTask}, RestartOn: []string{tmrTask}}, svcTask, tmrTask))
	}
	return out, nil
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
