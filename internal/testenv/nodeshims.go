package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// Test-environment shims for running containerd and a real kubelet inside a
// systemd-nspawn root (see /work/shared/e2e-environment.md). None of this is
// what provision does on a node: it stands in for what a VM's kernel and init
// give a real machine, and it is installed by the test, never by provision.
const (
	// ShimUnit runs shimScript once at boot, before containerd and kubelet.
	ShimUnit   = "e2e-node-shims.service"
	shimScript = "/usr/local/sbin/e2e-node-shims"
	// PauseImportUnit imports the pause image into containerd's k8s.io
	// namespace when the kubelet is started (and at most once).
	PauseImportUnit = "e2e-pause-import.service"
	// PauseTarPath is the pause image inside the root.
	PauseTarPath = "/var/lib/provision-e2e/pause.tar"
	// PauseImportedMarker exists once the pause image is imported.
	PauseImportedMarker = "/var/lib/provision-e2e/pause-imported"
	// CNIConfigPath is the bridge + host-local CNI config of the test node.
	CNIConfigPath = "/etc/cni/net.d/10-e2e-bridge.conflist"
	// PodSubnet is the host-local range of the test node's pods.
	PodSubnet = "10.244.0.0/24"
)

// shim script, run as root inside the machine at boot:
//   - systemd-nspawn mounts the cgroup hierarchies read-only: containerd and
//     kubelet create cgroups, so they are remounted read-write;
//   - /dev/kmsg is missing and kubelet's OOM watcher opens it;
//   - /proc/sys stays read-only (so nothing inside can change the host's
//     kernel settings) but kubelet refuses to start unless it can set six
//     kernel tunables: where the host's value differs, a file holding
//     kubelet's value is bind-mounted over the entry inside the machine only.
//     The host's settings are untouched.
const shimScriptText = `#!/bin/sh
# provision e2e test-environment shims (internal/testenv/nodeshims.go). Test only.
set -eu
for d in /sys/fs/cgroup /sys/fs/cgroup/*; do
	if mountpoint -q "$d"; then
		mount -o remount,bind,rw "$d" || echo "e2e-node-shims: cannot remount $d rw" >&2
	fi
done
[ -e /dev/kmsg ] || mknod -m 0600 /dev/kmsg c 1 11
mkdir -p /run/e2e-sysctl
while read -r key want; do
	p=/proc/sys/$(echo "$key" | tr . /)
	[ "$(cat "$p")" = "$want" ] && continue
	f=/run/e2e-sysctl/$key
	echo "$want" >"$f"
	mount --bind "$f" "$p"
	echo "e2e-node-shims: $key reads $want inside the machine (host value unchanged)"
done <<EOF
vm.overcommit_memory 1
vm.panic_on_oom 0
kernel.panic 10
kernel.panic_on_oops 1
kernel.keys.root_maxkeys 1000000
kernel.keys.root_maxbytes 25000000
EOF
`

const shimUnitText = `# provision e2e test-environment shims (internal/testenv/nodeshims.go). Test only.
[Unit]
Description=provision e2e: container shims for containerd and kubelet (test only)
DefaultDependencies=no
After=local-fs.target
Before=containerd.service kubelet.service multi-user.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=` + shimScript + `

[Install]
WantedBy=multi-user.target
`

const pauseImportUnitText = `# provision e2e: import the locally built pause image (internal/testenv/nodeshims.go).
# No registry is reachable from the test machines. Test only.
[Unit]
Description=provision e2e: import the pause image into containerd (test only)
Requires=containerd.service
After=containerd.service
ConditionPathExists=!` + PauseImportedMarker + `

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/ctr -n k8s.io images import ` + PauseTarPath + `
ExecStartPost=/usr/bin/touch ` + PauseImportedMarker + `

[Install]
WantedBy=kubelet.service
`

// cniConfig is a bridge + host-local network. isGateway stays false: the
// bridge plugin would otherwise enable net.ipv4.ip_forward, and /proc/sys is
// read-only in the machine. Pods talk to each other, which is all the test needs.
const cniConfig = `{
  "cniVersion": "1.0.0",
  "name": "e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": false,
      "ipMasq": false,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "` + PodSubnet + `"}]]}
    }
  ]
}
`

// InstallNodeShims writes the test-environment shims into the root before it
// boots: the shim unit (enabled), the CNI config, and the pause image with its
// import unit (wanted by kubelet.service).
func InstallNodeShims(t testing.TB, root *Root, pauseTar string) {
	t.Helper()
	root.WriteFile(t, shimScript, []byte(shimScriptText), 0o755)
	root.WriteFile(t, "/etc/systemd/system/"+ShimUnit, []byte(shimUnitText), 0o644)
	root.Symlink(t, "/etc/systemd/system/"+ShimUnit, "/etc/systemd/system/multi-user.target.wants/"+ShimUnit)
	root.WriteFile(t, CNIConfigPath, []byte(cniConfig), 0o644)
	root.CopyFile(t, pauseTar, PauseTarPath, 0o644)
	root.WriteFile(t, "/etc/systemd/system/"+PauseImportUnit, []byte(pauseImportUnitText), 0o644)
	root.Symlink(t, "/etc/systemd/system/"+PauseImportUnit, "/etc/systemd/system/kubelet.service.wants/"+PauseImportUnit)
}

// Symlink creates the symlink p inside the root pointing at target (a path
// inside the root), creating p's parents.
func (r *Root) Symlink(t testing.TB, target, p string) {
	t.Helper()
	hp := r.Path(p)
	if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
		t.Fatalf("root: %v", err)
	}
	os.Remove(hp)
	if err := os.Symlink(target, hp); err != nil {
		t.Fatalf("root: %v", err)
	}
}
