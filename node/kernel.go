package node

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/provision-dev/provision/node/tasks"
)

// Kernel settings files provision writes.
const (
	SysctlPath  = "/etc/sysctl.d/99-provision-kubernetes.conf"
	ModulesPath = "/etc/modules-load.d/provision-kubernetes.conf"
)

// Sysctls are the kernel parameters kubelet and most CNI plugins need.
var Sysctls = map[string]string{
	"net.bridge.bridge-nf-call-iptables":  "1",
	"net.bridge.bridge-nf-call-ip6tables": "1",
	"net.ipv4.ip_forward":                 "1",
}

// Modules are the kernel modules containerd and bridged CNI need.
var Modules = []string{"overlay", "br_netfilter"}

// tCgroup checks the running host's cgroup version: the first task of base
// and of join (a prebaked image's base did not run on the node's host).
const tCgroup = "kernel/cgroup"

// cgroupBuilder declares the cgroup check: fail early, naming the fix, where
// the kubelet would refuse the host's cgroup v1 (kubeversions: failCgroupV1).
func cgroupBuilder(n *Node) ([]tasks.Task, error) {
	k := n.Config.Kubernetes
	rel := n.Release()
	why := fmt.Sprintf("its failCgroupV1 defaults to true in %s", rel)
	if k.FailCgroupV1 != nil {
		why = "kubernetes.failCgroupV1: true is set"
	}
	return []tasks.Task{&tasks.CgroupCheck{TaskName: tCgroup, Detect: n.opts.CgroupDetector, Kubelet: k.Version,
		FailOnV1: rel.FailsOnCgroupV1(k.FailCgroupV1), Why: why, OptedOut: k.FailCgroupV1 != nil && !*k.FailCgroupV1}}, nil
}

func kernelBuilder(n *Node) ([]tasks.Task, error) {
	return []tasks.Task{
		&tasks.File{TaskName: "kernel/modules-config", Path: ModulesPath, Content: renderModules()},
		&tasks.File{TaskName: "kernel/sysctl-config", Path: SysctlPath, Content: renderSysctl()},
		&tasks.Modprobe{TaskName: "kernel/modules-load", Modules: Modules},
		&tasks.SysctlApply{TaskName: "kernel/sysctl-apply", File: SysctlPath, Values: Sysctls},
	}, nil
}

func renderSysctl() []byte {
	keys := make([]string, 0, len(Sysctls))
	for k := range Sysctls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("# Written by provision: kernel parameters for Kubernetes.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, Sysctls[k])
	}
	return b.Bytes()
}

func renderModules() []byte {
	return []byte("# Written by provision: kernel modules for Kubernetes.\n" + strings.Join(Modules, "\n") + "\n")
}
