package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/kubeversions"
	"github.com/provision-dev/provision/node/tasks"
)

// StateDir holds provision's state on the node: status, markers, the installed bundle.
const StateDir = "/var/lib/provision"

// Status file and markers, under the root.
const (
	StatusPath   = StateDir + "/status.json"
	DoneMarker   = StateDir + "/done"
	FailedMarker = StateDir + "/failed"
)

// Status is /var/lib/provision/status.json: the last run of each phase, and
// what provision's version table says about the kubelet version it ran for.
type Status struct {
	Phases map[Phase]PhaseStatus `json:"phases"`
	// KubeletSupport is written by every run (the last run's kubelet version).
	KubeletSupport *KubeletSupport `json:"kubeletSupport,omitempty"`
	// Host is what the last run found out about the machine.
	Host *HostStatus `json:"host,omitempty"`
}

// KubeletSupport is the kubelet version's support status (internal/kubeversions):
// a legacy minor is reported here and on stderr, never silently.
type KubeletSupport struct {
	// Version is the node config's kubernetes.version.
	Version string `json:"version"`
	// Support is "supported" or "legacy" (end of life upstream; rendered, not tested).
	Support kubeversions.Support `json:"support"`
	// EOL is the minor's upstream end-of-life date (YYYY-MM-DD).
	EOL string `json:"eol"`
	// Warning is the message for a legacy minor.
	Warning string `json:"warning,omitempty"`
}

// KubeletSupport says whether the node's kubelet version is supported.
func (n *Node) KubeletSupport() KubeletSupport {
	r := n.Release()
	return KubeletSupport{Version: n.Config.Kubernetes.Version, Support: r.Support, EOL: r.EOL, Warning: r.Warning()}
}

// Warnings are what `provision node` reports on stderr before it runs: an
// unsupported (legacy) kubelet minor; a tarball containerd older than the
// kubelet minor's minimum (a package's is reported by containerd/version once
// installed).
func (n *Node) Warnings() []string {
	var out []string
	if w := n.Release().Warning(); w != "" {
		out = append(out, w)
	}
	if w := n.tarballContainerdWarning(); w != "" {
		out = append(out, w)
	}
	return out
}

// HostStatus is what a run found out about the machine.
type HostStatus struct {
	// OSProfile is the OS profile the run used; ProfileSource how it was
	// chosen (--os, config osProfile, /etc/os-release).
	OSProfile     string `json:"osProfile"`
	ProfileSource string `json:"profileSource"`
	// CgroupVersion is the running host's cgroup hierarchy, "v1" or "v2";
	// absent when the run did not check it (the root is not the running system).
	CgroupVersion string `json:"cgroupVersion,omitempty"`
}

// PhaseStatus is one phase's run.
type PhaseStatus struct {
	// Result is "success" or "failed".
	Result   string `json:"result"`
	Started  string `json:"started"`
	Finished string `json:"finished"`
	// Error is the failure, naming the task (never a secret).
	Error string         `json:"error,omitempty"`
	Tasks []tasks.Status `json:"tasks"`
}

// ReadStatus reads the status file under root dir (a missing file is an empty status).
func ReadStatus(n *Node) (Status, error) {
	st := Status{Phases: map[Phase]PhaseStatus{}}
	data, err := n.Env.Root.ReadFile(StatusPath)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return Status{Phases: map[Phase]PhaseStatus{}}, nil // a corrupt status is replaced
	}
	if st.Phases == nil {
		st.Phases = map[Phase]PhaseStatus{}
	}
	return st, nil
}

// record writes the phase's status and the markers: "failed" (task and error) on
// failure; on success the stale "failed" is removed and, after join, "done" written.
func (n *Node) record(p Phase, start time.Time, sts []tasks.Status, runErr error) error {
	now := n.opts.Now()
	ps := PhaseStatus{Result: "success", Started: start.UTC().Format(time.RFC3339), Finished: now.UTC().Format(time.RFC3339), Tasks: sts}
	if ps.Tasks == nil {
		ps.Tasks = []tasks.Status{}
	}
	if runErr != nil {
		ps.Result = "failed"
		ps.Error = runErr.Error()
	}
	st, err := ReadStatus(n)
	if err != nil {
		return errors.Join(runErr, err)
	}
	st.Phases[p] = ps
	ks := n.KubeletSupport()
	st.KubeletSupport = &ks
	st.Host = &HostStatus{OSProfile: n.Profile.Name, ProfileSource: n.ProfileSource, CgroupVersion: n.Env.Cgroup().String()}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return errors.Join(runErr, err)
	}
	root := n.Env.Root
	if _, err := root.WriteFile(StatusPath, append(data, '\n'), 0o644); err != nil {
		return errors.Join(runErr, fmt.Errorf("write status: %w", err))
	}
	if runErr != nil {
		task := "unknown"
		var te *tasks.TaskError
		if errors.As(runErr, &te) {
			task = te.Task
		}
		marker := fmt.Sprintf("phase: %s\ntask: %s\nerror: %s\ntime: %s\n", p, task, oneLine(runErr.Error()), ps.Finished)
		if _, err := root.WriteFile(FailedMarker, []byte(marker), 0o644); err != nil {
			return errors.Join(runErr, err)
		}
		if p == Base { // a failed base leaves the root not known to be prebaked
			if err := root.Remove(BaseDoneMarker); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return errors.Join(runErr, err)
			}
		}
		return runErr
	}
	if err := root.Remove(FailedMarker); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if p == Base {
		if err := n.writeBaseDone(ps.Finished); err != nil {
			return err
		}
	}
	if p == Join {
		if _, err := root.WriteFile(DoneMarker, []byte("joined: "+ps.Finished+"\n"), 0o644); err != nil {
			return err
		}
		if n.Config.BootstrapSentinel {
			if _, err := root.WriteFile(v1alpha1.BootstrapSentinelPath, []byte("joined: "+ps.Finished+"\n"), 0o644); err != nil {
				return fmt.Errorf("cluster API bootstrap sentinel: %w", err)
			}
		}
	}
	return nil
}

func oneLine(s string) string {
	out := []byte(s)
	for i, c := range out {
		if c == '\n' || c == '\r' {
			out[i] = ' '
		}
	}
	return string(out)
}
