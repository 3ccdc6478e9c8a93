package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Machine is a root booted with systemd-nspawn inside a test network namespace.
type Machine struct {
	Root *Root
	Net  *NetNS
	// Leader is the PID (in the host's PID namespace) of the container's systemd.
	Leader int
	// Started is when systemd-nspawn was started (the machine's "power on").
	Started time.Time

	t       testing.TB
	cmd     *exec.Cmd
	exited  chan struct{}
	console *syncBuffer
	unlock  func()
	stopped bool
	// cgroups are the top-level cgroup directories that existed before boot.
	cgroups map[string]bool
}

// containerEnv is the environment of commands run inside the machine.
var containerEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"LANG=C.UTF-8",
	"HOME=/root",
	"DEBIAN_FRONTEND=noninteractive",
}

// BootLock is the host-wide lock Boot holds while a machine runs. It is one
// path for the whole host, not one per $PROVISION_TEST_CACHE: two test runs
// with different caches must not run machines at once either (they share the
// host's cgroup hierarchies, and Stop removes the cgroups that appeared since boot).
const BootLock = "/run/lock/provision-test-boot.lock"

// BootTimeout bounds how long Boot waits for systemd to finish starting up.
const BootTimeout = 90 * time.Second

// Boot starts systemd in root with systemd-nspawn, joined to ns, and waits until
// `systemctl is-system-running` says running or degraded. /proc/sys stays
// read-only inside, so nothing in the machine can change the host's settings.
// Only one machine runs at a time on a host (nspawn --keep-unit shares the
// test's cgroups): Boot waits for a host-wide lock. Stop is registered with
// t.Cleanup.
func Boot(t testing.TB, root *Root, ns *NetNS) *Machine {
	t.Helper()
	return boot(t, root, ns, true)
}

// BootStarted is Boot without waiting for start-up to finish: it returns as
// soon as the machine's systemd answers, for machines whose first-boot units
// (cloud-init, provision-setup) run long or fail. Use WaitRunning to wait.
func BootStarted(t testing.TB, root *Root, ns *NetNS) *Machine {
	t.Helper()
	return boot(t, root, ns, false)
}

func boot(t testing.TB, root *Root, ns *NetNS, wait bool) *Machine {
	t.Helper()
	Require(t)
	unlock := lockFile(t, BootLock)
	done := Phase(t, "boot")
	cgroups := cgroupTops()
	cmd := exec.Command("systemd-nspawn",
		"-D", root.Dir,
		"--machine="+ns.Name,
		"--register=no", "--keep-unit", "--console=pipe", "--capability=all",
		"--network-namespace-path="+ns.Path,
		"--resolv-conf=off", "--timezone=off",
		"-b")
	cmd.Env = append(os.Environ(), "SYSTEMD_SECCOMP=0")
	// Make sure SYSTEMD_NSPAWN_API_VFS_WRITABLE from the caller's environment
	// cannot make /proc/sys writable.
	cmd.Env = append(cmd.Env, "SYSTEMD_NSPAWN_API_VFS_WRITABLE=0")
	console := &syncBuffer{}
	cmd.Stdout = console
	cmd.Stderr = console
	// If the test binary dies without its cleanups (a -timeout panic), the
	// kernel sends systemd-nspawn SIGTERM: a clean poweroff of the machine.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		unlock()
		t.Fatalf("start systemd-nspawn: %v", err)
	}
	m := &Machine{Root: root, Net: ns, Started: started, t: t, cmd: cmd, exited: make(chan struct{}), console: console, unlock: unlock, cgroups: cgroups}
	go func() {
		cmd.Wait()
		close(m.exited)
	}()
	t.Cleanup(m.Stop)
	if err := m.waitLeader(30 * time.Second); err != nil {
		t.Fatalf("boot: %v\nconsole:\n%s", err, lastLines(console.String(), 40))
	}
	if !wait {
		if err := m.waitSystemd(30 * time.Second); err != nil {
			t.Fatalf("boot: %v\nconsole:\n%s", err, lastLines(console.String(), 20))
		}
		done()
		t.Logf("machine %s started (leader pid %d)", ns.Name, m.Leader)
		return m
	}
	state, err := m.waitRunning(BootTimeout)
	if err != nil {
		t.Fatalf("boot: %v\njournal:\n%s\nconsole:\n%s", err, lastLines(m.Journal(), 60), lastLines(console.String(), 20))
	}
	done()
	t.Logf("machine %s booted (leader pid %d): %s", ns.Name, m.Leader, state)
	return m
}

// waitLeader finds the container's init: the child of systemd-nspawn running systemd.
func (m *Machine) waitLeader(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	pid := m.cmd.Process.Pid
	for time.Now().Before(deadline) {
		select {
		case <-m.exited:
			return fmt.Errorf("systemd-nspawn exited: %v", m.cmd.ProcessState)
		default:
		}
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		for _, f := range strings.Fields(string(data)) {
			child, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", child)); strings.TrimSpace(string(comm)) == "systemd" {
				m.Leader = child
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no systemd child of systemd-nspawn (pid %d) after %v", pid, timeout)
}

// waitSystemd polls until the machine's systemd answers `systemctl is-system-running`.
func (m *Machine) waitSystemd(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-m.exited:
			return fmt.Errorf("systemd-nspawn exited: %v", m.cmd.ProcessState)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, _ := m.Output(ctx, "systemctl", "is-system-running")
		cancel()
		switch strings.TrimSpace(out) {
		case "initializing", "starting", "running", "degraded", "maintenance":
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("systemd in the machine not answering after %v", timeout)
}

// WaitRunning waits until start-up has finished (running or degraded) and
// returns the state, with the failed units when degraded.
func (m *Machine) WaitRunning(timeout time.Duration) (string, error) {
	return m.waitRunning(timeout)
}

// waitRunning polls `systemctl is-system-running` until running or degraded.
func (m *Machine) waitRunning(timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	state := ""
	for time.Now().Before(deadline) {
		select {
		case <-m.exited:
			return "", fmt.Errorf("systemd-nspawn exited: %v", m.cmd.ProcessState)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, _ := m.Output(ctx, "systemctl", "is-system-running")
		cancel()
		state = strings.TrimSpace(out)
		switch state {
		case "running":
			return state, nil
		case "degraded":
			failed, _ := m.Output(context.Background(), "systemctl", "--failed", "--no-legend", "--plain")
			return state + " (failed units: " + strings.Join(strings.Fields(failed), " ") + ")", nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", fmt.Errorf("system not running after %v (last state %q)", timeout, state)
}

// Command returns a command that runs argv inside the machine (all of its
// namespaces, its root and working directory) with a minimal environment.
func (m *Machine) Command(ctx context.Context, argv ...string) *exec.Cmd {
	args := append([]string{"-t", strconv.Itoa(m.Leader), "-a", "-r", "-w", "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = containerEnv
	return cmd
}

// Result is a finished command run inside the machine.
type Result struct {
	Stdout, Stderr string
	ExitCode       int
	Duration       time.Duration
}

// Exec runs argv inside the machine and returns its output and exit code. err
// is set only when the command could not be run (or ctx ended), not for a
// non-zero exit code.
func (m *Machine) Exec(ctx context.Context, argv ...string) (Result, error) {
	cmd := m.Command(ctx, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String(), Duration: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok && ctx.Err() == nil {
		r.ExitCode = ee.ExitCode()
		err = nil
	}
	return r, err
}

// Output runs argv inside the machine; a non-zero exit is an error naming the
// argv and carrying its stderr.
func (m *Machine) Output(ctx context.Context, argv ...string) (string, error) {
	r, err := m.Exec(ctx, argv...)
	if err == nil && r.ExitCode != 0 {
		err = fmt.Errorf("exit %d", r.ExitCode)
	}
	if err != nil {
		return r.Stdout, fmt.Errorf("in machine: %s: %w\n%s", strings.Join(argv, " "), err, lastLines(r.Stderr+r.Stdout, 40))
	}
	return r.Stdout, nil
}

// MustRun runs argv inside the machine and fails the test unless it exits 0.
func (m *Machine) MustRun(t testing.TB, timeout time.Duration, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := m.Output(ctx, argv...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Journal returns the machine's journal of this boot.
func (m *Machine) Journal() string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := m.Exec(ctx, "journalctl", "--no-pager", "-b", "-o", "short-monotonic")
	if err != nil {
		return "journal unavailable: " + err.Error()
	}
	return r.Stdout
}

// Console returns what systemd-nspawn printed.
func (m *Machine) Console() string { return m.console.String() }

// Stop shuts the machine down: SIGTERM to systemd-nspawn (a clean poweroff),
// then, if it has not exited in time, SIGKILL to the container's init and to
// systemd-nspawn, by PID. It is registered with t.Cleanup by Boot and may be
// called earlier.
func (m *Machine) Stop() {
	if m.stopped {
		return
	}
	m.stopped = true
	defer m.unlock()
	done := Phase(m.t, "stop")
	defer done()
	defer func() {
		// After a SIGKILL the container's last processes (journald in the
		// kernel's exit path) leave their cgroups a moment later: retry, bounded.
		left := removeNewCgroups(m.cgroups)
		for deadline := time.Now().Add(10 * time.Second); len(left) > 0 && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
			left = removeNewCgroups(m.cgroups)
		}
		if len(left) > 0 {
			m.t.Errorf("stop: cgroups left on the host:\n  %s", strings.Join(left, "\n  "))
		}
	}()
	pid := m.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		m.t.Logf("stop: SIGTERM systemd-nspawn pid %d: %v", pid, err)
	}
	select {
	case <-m.exited:
		return
	case <-time.After(15 * time.Second):
	}
	// A clean poweroff is not what the tests assert (their checks ran before Stop):
	// systemd in nspawn occasionally leaves journald hanging at shutdown (seen about
	// once in ten boots). Power it off by PID instead; the host stays clean (the
	// cgroup check above and the SIGKILL wait below still fail the test).
	m.t.Logf("stop: systemd-nspawn pid %d still running 15s after SIGTERM: killing init pid %d and nspawn by PID; its processes:\n%s", pid, m.Leader, strings.Join(descendants(pid), "\n"))
	if m.Leader > 0 {
		syscall.Kill(m.Leader, syscall.SIGKILL)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		m.t.Errorf("stop: systemd-nspawn pid %d did not exit after SIGKILL", pid)
	}
}

// PowerCut stops the machine as a power cut would: SIGKILL to the container's
// init by PID, which kills every process of the machine's PID namespace at
// once (no unit is stopped, nothing is flushed or unmounted by the machine);
// systemd-nspawn then exits. The root's files stay as they were at that
// instant (the root is on tmpfs: what the machine wrote is kept, as on a disk
// whose write cache survived). The host-wide lock is released, so the same
// root can be booted again.
func (m *Machine) PowerCut() {
	m.t.Helper()
	if m.stopped {
		return
	}
	m.stopped = true
	defer m.unlock()
	defer func() {
		if left := removeNewCgroups(m.cgroups); len(left) > 0 {
			m.t.Errorf("power cut: cgroups left on the host:\n  %s", strings.Join(left, "\n  "))
		}
	}()
	pid := m.cmd.Process.Pid
	if err := syscall.Kill(m.Leader, syscall.SIGKILL); err != nil {
		m.t.Errorf("power cut: SIGKILL init pid %d: %v", m.Leader, err)
	}
	select {
	case <-m.exited:
		return
	case <-time.After(30 * time.Second):
	}
	m.t.Errorf("power cut: systemd-nspawn pid %d still running 30s after its init was killed: killing it by PID", pid)
	syscall.Kill(pid, syscall.SIGKILL)
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		m.t.Errorf("power cut: systemd-nspawn pid %d did not exit after SIGKILL", pid)
	}
}

// syncBuffer is a bytes.Buffer safe for a writing process and a reading test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// descendants lists the processes below pid (pid and command line), from /proc.
func descendants(pid int) []string {
	var out []string
	var walk func(p int, depth int)
	walk = func(p int, depth int) {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p, p))
		for _, f := range strings.Fields(string(data)) {
			child, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", child))
			out = append(out, fmt.Sprintf("%s%d %s", strings.Repeat("  ", depth), child, strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " ")))
			walk(child, depth+1)
		}
	}
	walk(pid, 0)
	return out
}
