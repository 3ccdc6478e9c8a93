package node

import (
	"context"
	"errors"
	"fmt"
	"path"
	"runtime"
	"time"

	"github.com/provision-dev/provision/internal/kubeversions"
	"github.com/provision-dev/provision/node/tasks"
)

// Builders (one per concern, one file each) only declare tasks, from the inputs
// Prepare loaded (inputs.go); package tasks runs them.

// Tasks returns the tasks of a phase.
func (n *Node) Tasks(p Phase) ([]tasks.Task, error) {
	switch p {
	case Base:
		return n.baseTasks()
	case Join:
		return n.joinTasks()
	}
	return nil, fmt.Errorf("unknown phase %q: base or join", p)
}

// Run runs a phase for real and records status and markers. The returned error
// names the failed task.
func (n *Node) Run(ctx context.Context, p Phase) error {
	var err error
	if p == Join {
		err = n.checkBaseDone() // join would start the wrong kubelet on a root prebaked for another node
	}
	var list []tasks.Task
	if err == nil {
		list, err = n.Tasks(p)
	}
	if err != nil {
		return n.record(p, n.opts.Now(), nil, &tasks.TaskError{Task: "build", Err: err})
	}
	start := n.opts.Now()
	sts, err := tasks.Execute(ctx, n.Env, list, false)
	n.opts.Log.Info("phase done", "phase", p, "tasks", len(sts), "changed", tasks.CountChanged(sts), "failed", err != nil, "duration", n.opts.Now().Sub(start).Round(time.Millisecond))
	return n.record(p, start, sts, err)
}

// builder declares the tasks of one concern.
type builder func(n *Node) ([]tasks.Task, error)

func (n *Node) baseTasks() ([]tasks.Task, error) {
	return n.build(cgroupBuilder, upgradeBuilder, runtimeConfigBuilder, packagesBuilder, kernelBuilder, swapBuilder, artifactsBuilder, cniBuilder, runtimeBuilder, healthBuilder)
}

func (n *Node) joinTasks() ([]tasks.Task, error) {
	return n.build(cgroupBuilder, joinBuilder)
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
	return n.Profile.NeedsDocker(n.Release().Dockershim())
}

// errNoSandboxImage: the node config's defaults (SetDefaults) set the kubelet
// minor's pause image; a renderer never guesses one.
var errNoSandboxImage = errors.New("containerd: the node config has no sandbox image (its defaults set the kubelet minor's pause image)")

// Release is the kubelet version's row of internal/kubeversions: what that
// kubelet minor needs (flags, config fields, defaults). The config's version was
// validated against the table when it was loaded.
func (n *Node) Release() kubeversions.Release {
	return kubeversions.MustFor(n.Config.Kubernetes.Version)
}

func (n *Node) binPath(name string) string { return path.Join(n.Profile.BinDir, name) }

// provisionPath is where the provision binary lives on the node.
func (n *Node) provisionPath() string {
	if n.opts.BinaryPath != "" {
		return n.opts.BinaryPath
	}
	return n.binPath("provision")
}

func (n *Node) arch() string {
	if n.Config.Arch != "" {
		return n.Config.Arch
	}
	return runtime.GOARCH
}
