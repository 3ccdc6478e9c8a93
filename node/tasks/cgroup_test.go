package tasks

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/provision-dev/provision/internal/runner"
)

func detector(v CgroupVersion, err error) CgroupDetector {
	return func() (CgroupVersion, error) { return v, err }
}

// TestCgroupCheck: with an injected detector, the check passes (unchanged) on
// cgroup v2 and wherever the kubelet accepts v1, fails on v1 when the kubelet
// refuses it (naming the host's version, the kubelet and both ways out),
// records what it found, and runs only on the running system.
func TestCgroupCheck(t *testing.T) {
	tests := []struct {
		name     string
		live     bool
		detect   CgroupDetector
		failOnV1 bool
		optedOut bool
		result   Result
		want     []string // in the detail, or the error when result is Failed
		recorded CgroupVersion
	}{
		{"v2, kubelet refuses v1", true, detector(2, nil), true, false, Unchanged, []string{"cgroup v2"}, 2},
		{"v1, kubelet refuses v1", true, detector(1, nil), true, false, Failed,
			[]string{"this host runs cgroup v1", "kubelet v1.35.4 refuses to start on cgroup v1 (its failCgroupV1 defaults to true in 1.35)",
				"systemd.unified_cgroup_hierarchy=1", "kubernetes.failCgroupV1: false"}, 1},
		{"v1, opted out", true, detector(1, nil), false, true, Unchanged, []string{"cgroup v1", "failCgroupV1: false", "maintenance mode"}, 1},
		{"v1, old kubelet", true, detector(1, nil), false, false, Unchanged, []string{"cgroup v1 (kubelet v1.35.4 runs on it)"}, 1},
		{"detector fails", true, detector(0, errors.New("statfs /sys/fs/cgroup: no such file or directory")), true, false, Failed,
			[]string{"detect the host's cgroup version: statfs /sys/fs/cgroup"}, 0},
		{"not the running system", false, detector(1, nil), true, false, Skipped, []string{"root is not the running system"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, dry := range []bool{true, false} {
				e := newEnv(t, "debian-12", tt.live, &runner.Fake{})
				c := &CgroupCheck{TaskName: "kernel/cgroup", Detect: tt.detect, Kubelet: "v1.35.4",
					FailOnV1: tt.failOnV1, Why: "its failCgroupV1 defaults to true in 1.35", OptedOut: tt.optedOut}
				sts, err := Execute(context.Background(), e, []Task{c}, dry)
				if len(sts) != 1 {
					t.Fatalf("statuses %+v, %v", sts, err)
				}
				if sts[0].Result != tt.result || (err != nil) != (tt.result == Failed) {
					t.Fatalf("dry=%v: %+v, %v; want %s", dry, sts[0], err, tt.result)
				}
				for _, w := range tt.want {
					if !strings.Contains(sts[0].Detail, w) {
						t.Errorf("dry=%v: detail %q does not say %q", dry, sts[0].Detail, w)
					}
				}
				if got := e.Cgroup(); got != tt.recorded {
					t.Errorf("dry=%v: recorded cgroup %q, want %q", dry, got, tt.recorded)
				}
			}
		})
	}
}

// TestDetectCgroup: the live detection agrees with the file system type the
// kernel lists for /sys/fs/cgroup in /proc/self/mountinfo.
func TestDetectCgroup(t *testing.T) {
	v, err := DetectCgroup()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	fstype := ""
	for _, line := range strings.Split(string(data), "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == CgroupRoot {
			if _, after, ok := strings.Cut(line, " - "); ok {
				fstype = strings.Fields(after)[0] // the last mount on the path wins
			}
		}
	}
	want := map[string]CgroupVersion{"cgroup2": 2}[fstype]
	if want == 0 {
		want = 1
	}
	if v != want {
		t.Errorf("DetectCgroup = %s, want %s (%s is %q in mountinfo)", v, want, CgroupRoot, fstype)
	}
	t.Logf("this machine: cgroup %s (%s)", v, fstype)
}
