package testenv

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// process is a server the test runs as a child process (a cluster component,
// the registry), stopped by its PID.
type process struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

// startProcess runs argv, inside ns unless it is nil (ip netns exec execs the
// binary, so the PID is the binary's own), with env added to the test's
// environment and its output in logPath.
func startProcess(t testing.TB, name string, ns *NetNS, logPath string, env []string, argv ...string) *process {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ns != nil {
		argv = append([]string{"ip", "netns", "exec", ns.Name}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	// If the test binary dies without its cleanups, the kernel kills the child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	t.Logf("started %s (pid %d, log %s)", name, cmd.Process.Pid, logPath)
	return p
}

// stop sends SIGTERM by PID and SIGKILL after 10 s; a process that has
// already exited is left alone.
func (p *process) stop(t testing.TB) {
	select {
	case <-p.exited:
		return
	default:
	}
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Logf("%s (pid %d) still running 10s after SIGTERM: SIGKILL", p.name, p.cmd.Process.Pid)
		syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// alive reports whether the process is still running.
func (p *process) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}
