package tasks

import (
	"context"

	"path"
	"sort"
	"strings"
)

// SysctlApply loads the kernel parameters of File (sysctl -p) when the running
// kernel's values (under /proc/sys) differ from Values.
type SysctlApply struct {
	TaskName string
	File     string
	Values   map[string]string
}

func (t *SysctlApply) Name() string { return t.TaskName }

func (t *SysctlApply) Run(ctx context.Context, e *Env, dry bool) (Outcome, error) {
	if why := e.KernelSkip(); why != "" {
		return skipped("%s: parameters written to %s, applied at next boot", why, t.File)
	}
	keys := make([]string, 0, len(t.Values))
	for k := range t.Values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var differ []string
	for _, k := range keys {
		cur, err := e.Root.ReadFile(path.Join("/proc/sys", strings.ReplaceAll(k, ".", "/")))
		if err != nil || strings.TrimSpace(string(cur)) != t.Values[k] {
			differ = append(differ, k)
		}
	}
	if len(differ) == 0 {
		return unchanged("kernel parameters already set")
	}
	if !dry {
		if _, err := e.Exec(ctx, nil, "sysctl", "-p", e.Root.Path(t.File)); err != nil {
			return Outcome{}, err
		}
	}
	return changed("apply %s (%s)", t.File, strings.Join(differ, ", "))
}

// Modprobe loads kernel modules not present under /sys/module.
type Modprobe struct {
	TaskName string
	Modules  []string
}

func (t *Modprobe) Name() string { return t.TaskName }

func (t *Modprobe) Run(ctx context.Context, e *Env, dry bool) (Outcome, error) {
	if why := e.KernelSkip(); why != "" {
		return skipped("%s: modules listed in /etc/modules-load.d, loaded at next boot", why)
	}
	var missing []string
	for _, m := range t.Modules {
		if !e.Root.Exists(path.Join("/sys/module", m)) {
			missing = append(missing, m)
		}
	}
	if len(missing) == 0 {
		return unchanged("modules loaded: %s", strings.Join(t.Modules, ", "))
	}
	if !dry {
		for _, m := range missing {
			if _, err := e.Exec(ctx, nil, "modprobe", m); err != nil {
				return Outcome{}, err
			}
		}
	}
	return changed("modprobe %s", strings.Join(missing, " "))
}

// SwapOff turns off active swap (listed in /proc/swaps).
type SwapOff struct {
	TaskName string
}

func (t *SwapOff) Name() string { return t.TaskName }

func (t *SwapOff) Run(ctx context.Context, e *Env, dry bool) (Outcome, error) {
	if why := e.KernelSkip(); why != "" {
		return skipped("%s: swap disabled in /etc/fstab and swap.target masked", why)
	}
	data, err := e.Root.ReadFile("/proc/swaps")
	if err != nil {
		return unchanged("no /proc/swaps: no swap")
	}
	var active []string
	for i, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); i > 0 && len(f) > 0 {
			active = append(active, f[0])
		}
	}
	if len(active) == 0 {
		return unchanged("no active swap")
	}
	if !dry {
		if _, err := e.Exec(ctx, nil, "swapoff", "-a"); err != nil {
			return Outcome{}, err
		}
	}
	return changed("swapoff %s", strings.Join(active, " "))
}

// CommentSwap comments out the swap entries of an fstab.
func CommentSwap(fstab []byte) []byte {
	lines := strings.SplitAfter(string(fstab), "\n")
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) >= 3 && !strings.HasPrefix(f[0], "#") && f[2] == "swap" {
			lines[i] = "# disabled by provision (kubelet needs swap off): " + l
		}
	}
	return []byte(strings.Join(lines, ""))
}

// DetectContainer asks systemd-detect-virt whether this runs in a container.
func DetectContainer(ctx context.Context, e *Env) (bool, string) {
	res, err := e.Exec(ctx, nil, "systemd-detect-virt", "--container")
	out := strings.TrimSpace(string(res.Stdout))
	if err != nil || out == "" || out == "none" {
		return false, "none"
	}
	return true, out
}
