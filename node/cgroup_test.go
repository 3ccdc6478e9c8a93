package node

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/internal/kubeversions"
	"github.com/provision-dev/provision/node/tasks"
)

func cgroupHost(v tasks.CgroupVersion) tasks.CgroupDetector {
	return func() (tasks.CgroupVersion, error) { return v, nil }
}

// TestBaseRefusesCgroupV1: on a cgroup v1 host, base with a kubelet that
// refuses cgroup v1 fails at its first task, before any package or download,
// naming the host's cgroup version, the kubelet and the fix; status.json
// records the version. failCgroupV1: false (or an older kubelet) passes.
func TestBaseRefusesCgroupV1(t *testing.T) {
	f := false
	tests := []struct {
		name         string
		version      string
		failCgroupV1 *bool
		host         tasks.CgroupVersion
		fails        bool
	}{
		{"1.35 on v1", "v1.35.4", nil, 1, true},
		{"1.37 on v1", "v1.37.2", nil, 1, true},
		{"1.35 on v1, opted out", "v1.35.4", &f, 1, false},
		{"1.34 on v1", "v1.34.0", nil, 1, false},
		{"1.37 on v2", "v1.37.2", nil, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newArtifactServer(t)
			cfg := testConfig(srv, "ubuntu-18.04")
			cfg.Kubernetes.Version, cfg.Kubernetes.FailCgroupV1 = tt.version, tt.failCgroupV1
			root := testRoot(t, "ubuntu-18.04", &cfg)
			host := newFakeHost("")
			opts := testOptions(root, host, true, nil)
			opts.CgroupDetector = cgroupHost(tt.host)
			n := prepare(t, opts)
			err := n.Run(context.Background(), Base)
			st := readStatus(t, root)
			if st.Host == nil || st.Host.CgroupVersion != tt.host.String() || st.Host.OSProfile != "ubuntu-18.04" || st.Host.ProfileSource != "config osProfile" {
				t.Errorf("status.json host = %+v, want cgroup %s, profile ubuntu-18.04 from the config", st.Host, tt.host)
			}
			if !tt.fails {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var te *tasks.TaskError
			if !errors.As(err, &te) || te.Task != tCgroup {
				t.Fatalf("err = %v, want task %s failed", err, tCgroup)
			}
			for _, w := range []string{"this host runs cgroup v1", "kubelet " + tt.version + " refuses to start on cgroup v1",
				"systemd.unified_cgroup_hierarchy=1", "kubernetes.failCgroupV1: false"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if calls := host.Calls(); len(calls) > 0 && strings.Contains(strings.Join(calls, "\n"), "install") {
				t.Errorf("packages installed before the check failed: %v", calls)
			}
			if srv.Total() != 0 {
				t.Errorf("%d downloads before the check failed", srv.Total())
			}
			marker, _ := os.ReadFile(filepath.Join(root, FailedMarker))
			if !strings.Contains(string(marker), "task: "+tCgroup) {
				t.Errorf("failed marker:\n%s", marker)
			}
		})
	}
}

// TestPlanShowsCgroupCheck: `provision node plan` shows the check, and on a
// host the kubelet refuses, the failure with its reason.
func TestPlanShowsCgroupCheck(t *testing.T) {
	for _, host := range []tasks.CgroupVersion{1, 2} {
		srv := newArtifactServer(t)
		cfg := testConfig(srv, "debian-13")
		cfg.Kubernetes.Version = "v1.37.2"
		root := testRoot(t, "debian-13", &cfg)
		opts := testOptions(root, newFakeHost(""), true, nil)
		opts.CgroupDetector = cgroupHost(host)
		n := prepare(t, opts)
		entries, err := n.Preview(context.Background(), Base, Join)
		var out bytes.Buffer
		n.WritePreview(&out, entries)
		first := strings.Split(out.String(), "\n")[2]
		if host == 2 {
			if err != nil || !strings.Contains(first, "no-change") || !strings.Contains(first, "kernel/cgroup") || !strings.Contains(first, "cgroup v2") {
				t.Errorf("v2 host: %v\n%s", err, out.String())
			}
			continue
		}
		if err == nil || !strings.Contains(first, "fail") || !strings.Contains(first, "this host runs cgroup v1, and kubelet v1.37.2 refuses") {
			t.Errorf("v1 host: %v\n%s", err, out.String())
		}
		if _, err := os.Stat(filepath.Join(root, StatusPath)); err == nil {
			t.Errorf("plan wrote a status file")
		}
	}
}

// TestJoinChecksCgroup: join checks the host too (a prebaked image's base ran
// elsewhere), before the kubelet is configured or started.
func TestJoinChecksCgroup(t *testing.T) {
	srv := newArtifactServer(t)
	cfg := testConfig(srv, "debian-12")
	cfg.Kubernetes.Version = "v1.36.3"
	root := testRoot(t, "debian-12", &cfg)
	host := newFakeHost("")
	opts := testOptions(root, host, true, nil)
	opts.Flags.Token = testToken
	opts.CgroupDetector = cgroupHost(1)
	n := prepare(t, opts)
	list, err := n.Tasks(Join)
	if err != nil || len(list) == 0 || list[0].Name() != tCgroup {
		t.Fatalf("join tasks: %v, %v", list, err)
	}
	_, err = tasks.Execute(context.Background(), n.Env, list, false)
	if err == nil || !strings.Contains(err.Error(), "kubelet v1.36.3 refuses to start on cgroup v1") {
		t.Fatalf("join on cgroup v1: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, KubeletConfigPath)); err == nil {
		t.Errorf("join wrote the kubelet config on a host the kubelet refuses")
	}
}

// TestKubeletConfigFailCgroupV1: failCgroupV1 is rendered only when the node
// config sets it and the kubelet has the field (1.31+).
func TestKubeletConfigFailCgroupV1(t *testing.T) {
	f, tr := false, true
	tests := []struct {
		version string
		set     *bool
		want    string // "" = absent
	}{
		{"v1.35.4", nil, ""},
		{"v1.37.2", &f, "failCgroupV1: false"},
		{"v1.31.4", &tr, "failCgroupV1: true"},
		{"v1.30.14", &f, ""},
		{"v1.23.17", &tr, ""},
	}
	for _, tt := range tests {
		k := v1alpha1.Kubernetes{Version: tt.version, FailCgroupV1: tt.set}
		k.SetDefaults()
		out, err := renderKubeletConfig(k, kubeversions.MustFor(tt.version), "")
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Contains(string(out), "failCgroupV1")
		if got != (tt.want != "") || !strings.Contains(string(out), tt.want) {
			t.Errorf("%s failCgroupV1=%v: want %q in\n%s", tt.version, tt.set, tt.want, out)
		}
	}
}
