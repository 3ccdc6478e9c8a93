package tasks

import (
	"context"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// CgroupVersion is a host's cgroup hierarchy: 1 (legacy or hybrid) or 2
// (unified); 0 is unknown.
type CgroupVersion int

// String is "v1" or "v2" ("" when unknown).
func (v CgroupVersion) String() string {
	if v == 0 {
		return ""
	}
	return "v" + strconv.Itoa(int(v))
}

// CgroupDetector reports the running system's cgroup version.
type CgroupDetector func() (CgroupVersion, error)

// CgroupRoot is where the kernel's cgroup hierarchy is mounted.
const CgroupRoot = "/sys/fs/cgroup"

// DetectCgroup is the CgroupDetector of the running system, as the kubelet
// decides it (runc's IsCgroup2UnifiedMode): statfs(2) of /sys/fs/cgroup, the
// live one, never a --root's copy; a cgroup2 file system (CGROUP2_SUPER_MAGIC)
// is v2, anything else (the tmpfs of the v1 and hybrid layouts) v1.
func DetectCgroup() (CgroupVersion, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(CgroupRoot, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", CgroupRoot, err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return 2, nil
	}
	return 1, nil
}

// CgroupCheck detects the running host's cgroup version, records it (Env.Cgroup,
// status.json) and fails, before anything is installed or started, when the
// kubelet would refuse it: a kubelet with failCgroupV1 on a cgroup v1 host
// exits at start and systemd restarts it in a loop. It changes nothing.
type CgroupCheck struct {
	TaskName string
	// Detect reports the running host's cgroup version; nil is DetectCgroup.
	Detect CgroupDetector
	// Kubelet is the kubelet's version, for the messages.
	Kubelet string
	// FailOnV1 says the kubelet refuses cgroup v1 (failCgroupV1 in effect), and
	// Why how (its default, or the config's setting).
	FailOnV1 bool
	Why      string
	// OptedOut says the config sets failCgroupV1: false.
	OptedOut bool
}

func (t *CgroupCheck) Name() string { return t.TaskName }

func (t *CgroupCheck) Run(ctx context.Context, e *Env, dry bool) (Outcome, error) {
	if !e.Live {
		return skipped("root is not the running system: the cgroup version is checked on the node itself")
	}
	detect := t.Detect
	if detect == nil {
		detect = DetectCgroup
	}
	v, err := detect()
	if err != nil {
		return Outcome{}, fmt.Errorf("detect the host's cgroup version: %w", err)
	}
	e.setCgroup(v)
	switch {
	case v != 1:
		return unchanged("cgroup %s", v)
	case t.FailOnV1:
		return Outcome{}, fmt.Errorf("this host runs cgroup v1, and kubelet %s refuses to start on cgroup v1 (%s): "+
			"boot the host with cgroup v2 (kernel command line systemd.unified_cgroup_hierarchy=1), "+
			"or set kubernetes.failCgroupV1: false in the node config to run the kubelet on cgroup v1", t.Kubelet, t.Why)
	case t.OptedOut:
		return unchanged("cgroup v1: kubelet %s runs on it with failCgroupV1: false (cgroup v1 is in maintenance mode upstream)", t.Kubelet)
	}
	return unchanged("cgroup v1 (kubelet %s runs on it)", t.Kubelet)
}

// Cgroup returns the running host's cgroup version a CgroupCheck detected in
// this run, or 0.
func (e *Env) Cgroup() CgroupVersion {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cgroup
}

func (e *Env) setCgroup(v CgroupVersion) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cgroup = v
}
