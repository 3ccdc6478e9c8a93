package tasks

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/internal/fsroot"
	"github.com/provision-dev/provision/internal/runner"
	"github.com/provision-dev/provision/osprofiles"
)

// Packages installs the missing ones of Names with the profile's package manager.
type Packages struct {
	TaskName string
	Names    []string
	// ExclusiveRepo, for yum/dnf, limits the commands to this repository id.
	ExclusiveRepo string
	// LockTimeout bounds the wait for another apt/dpkg to finish (default 5 min).
	LockTimeout time.Duration
}

func (t *Packages) Name() string { return t.TaskName }

func (t *Packages) Run(ctx context.Context, e *Env, dry bool) (Outcome, error) {
	switch e.Profile.PackageManager {
	case osprofiles.Apt:
		return t.apt(ctx, e, dry)
	case osprofiles.Yum, osprofiles.Dnf:
		return t.rpm(ctx, e, dry)
	}
	return skipped("profile %s has no package manager", e.Profile.Name)
}

// DpkgMissing returns the packages of names dpkg does not list as installed.
func DpkgMissing(ctx context.Context, e *Env, names []string) ([]string, error) {
	argv := e.InRoot(append([]string{"dpkg-query", "-W", "-f=${Package}\t${db:Status-Abbrev}\n"}, names...)...)
	res, err := e.Exec(ctx, nil, argv...)
	if err != nil && runner.ExitCode(err) != 1 { // 1: some package unknown to dpkg
		return nil, err
	}
	installed := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(res.Stdout)))
	for sc.Scan() {
		name, status, _ := strings.Cut(sc.Text(), "\t")
		name, _, _ = strings.Cut(name, ":") // arch-qualified names
		if strings.HasPrefix(status, "ii") {
			installed[name] = true
		}
	}
	var missing []string
	for _, n := range names {
		if !installed[n] {
			missing = append(missing, n)
		}
	}
	return missing, nil
}

var aptEnv = []string{"DEBIAN_FRONTEND=noninteractive", "NEEDRESTART_MODE=a", "APT_LISTCHANGES_FRONTEND=none"}

func (t *Packages) apt(ctx context.Context, e *Env, dry bool) (Outcome, error) {
	missing, err := DpkgMissing(ctx, e, t.Names)
	if err != nil {
		return Outcome{}, err
	}
	if len(missing) == 0 {
		return unchanged("installed: %s", strings.Join(t.Names, " "))
	}
	if dry {
		return changed("apt-get install %s", strings.Join(missing, " "))
	}
	timeout := t.LockTimeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	if err := WaitForLock(ctx, e, DpkgFrontendLock, timeout); err != nil {
		return Outcome{}, err
	}
	lockOpt := fmt.Sprintf("DPkg::Lock::Timeout=%d", int(timeout.Seconds()))
	recovered := ""
	if dpkgInterrupted(e) {
		// A power cut or kill during an earlier install: apt refuses to run until the
		// half-installed packages are configured.
		if _, err := e.Exec(ctx, aptEnv, e.InRoot("dpkg", "--force-confdef", "--force-confold", "--configure", "-a")...); err != nil {
			return Outcome{}, fmt.Errorf("recovering an interrupted dpkg run: %w", err)
		}
		recovered = " (recovered an interrupted dpkg run with dpkg --configure -a)"
	}
	if _, err := e.Exec(ctx, aptEnv, e.InRoot("apt-get", "-o", lockOpt, "-q", "update")...); err != nil {
		return Outcome{}, err
	}
	argv := []string{"apt-get", "-o", lockOpt, "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
		"-q", "-y", "--no-install-recommends", "install"}
	if _, err := e.Exec(ctx, aptEnv, e.InRoot(append(argv, missing...)...)...); err != nil {
		return Outcome{}, err
	}
	return changed("apt-get install %s%s", strings.Join(missing, " "), recovered)
}

// dpkgInterrupted reports whether dpkg's journal holds an unfinished run
// (what makes apt say "dpkg was interrupted, you must manually run 'dpkg --configure -a'").
func dpkgInterrupted(e *Env) bool {
	names, err := e.Root.ReadDirNames("/var/lib/dpkg/updates")
	if err != nil {
		return false
	}
	for _, name := range names {
		if name != "tmp.i" { // dpkg's scratch file, not a journal entry
			return true
		}
	}
	return false
}

// rpmRootArgs returns the root options of rpm/dnf/yum for a non-host root.
func rpmRootArgs(e *Env, installroot bool) []string {
	if e.Root.IsHost() {
		return nil
	}
	if installroot {
		return []string{"--installroot", e.Root.Dir, "--releasever", e.Profile.VersionID}
	}
	return []string{"--root", e.Root.Dir}
}

// RPMMissing returns the packages of names rpm does not list as installed.
func RPMMissing(ctx context.Context, e *Env, names []string) ([]string, error) {
	argv := append(append([]string{"rpm"}, rpmRootArgs(e, false)...), append([]string{"-q", "--qf", "%{NAME}\n"}, names...)...)
	res, err := e.Exec(ctx, nil, argv...)
	if err != nil && runner.ExitCode(err) <= 0 { // rpm exits with the number of missing packages
		return nil, err
	}
	installed := map[string]bool{}
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.Contains(l, " ") {
			installed[l] = true
		}
	}
	var missing []string
	for _, n := range names {
		if !installed[n] {
			missing = append(missing, n)
		}
	}
	return missing, nil
}

func (t *Packages) rpm(ctx context.Context, e *Env, dry bool) (Outcome, error) {
	missing, err := RPMMissing(ctx, e, t.Names)
	if err != nil {
		return Outcome{}, err
	}
	tool := string(e.Profile.PackageManager)
	if len(missing) == 0 {
		return unchanged("installed: %s", strings.Join(t.Names, " "))
	}
	if dry {
		return changed("%s install %s", tool, strings.Join(missing, " "))
	}
	// dnf/yum --installroot read and write these from the host side: none may
	// be a symlink, which they would follow out of the root.
	if err := e.Root.RealDirs("/etc/yum.repos.d", "/etc/dnf", "/etc/yum", "/etc/pki/rpm-gpg", "/var/cache/dnf", "/var/cache/yum",
		"/var/lib/dnf", "/var/lib/yum", "/var/lib/rpm", "/var/log", "/usr/lib/sysimage/rpm"); !e.Root.IsHost() && err != nil {
		return Outcome{}, err
	}
	argv := append([]string{tool, "-y", "-q"}, rpmRootArgs(e, true)...)
	if t.ExclusiveRepo != "" {
		argv = append(argv, "--disablerepo=*", "--enablerepo="+t.ExclusiveRepo)
	}
	argv = append(argv, "--setopt=install_weak_deps=False", "install")
	if _, err := e.Exec(ctx, nil, append(argv, missing...)...); err != nil {
		return Outcome{}, err
	}
	return changed("%s install %s", tool, strings.Join(missing, " "))
}

// DpkgFrontendLock is dpkg's frontend lock, a node path.
const DpkgFrontendLock = "/var/lib/dpkg/lock-frontend"

// LockHolder returns the PID and command holding a POSIX write lock on node
// path p (resolved in root; a symlink there is refused), or pid 0 when nobody does.
func LockHolder(root fsroot.Root, p string) (int, string, error) {
	path := root.Path(p)
	f, err := root.OpenFile(p, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil {
		return 0, "", fmt.Errorf("query lock on %s: %w", path, err)
	}
	if lk.Type == unix.F_UNLCK {
		return 0, "", nil
	}
	pid := int(lk.Pid)
	if pid <= 0 { // holder in another PID namespace: find it through /proc
		pid = procHolding(path)
	}
	return pid, procCommand(pid), nil
}

func procHolding(path string) int {
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if t, err := os.Readlink(fd); err == nil && t == path {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			if pid != os.Getpid() {
				return pid
			}
		}
	}
	return -1
}

func procCommand(pid int) string {
	if pid <= 0 {
		return "unknown process"
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(data) == 0 {
		return "unknown process"
	}
	return strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
}

// WaitForLock waits, bounded, until nobody holds the dpkg frontend lock (node
// path path), logging the holder (apt-daily, unattended-upgrades, ...).
func WaitForLock(ctx context.Context, e *Env, path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	logged := time.Time{}
	for {
		pid, cmd, err := LockHolder(e.Root, path)
		if err != nil {
			return err
		}
		if pid == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still held after %s by PID %d (%s)", e.Root.Path(path), timeout, pid, cmd)
		}
		if time.Since(logged) > 10*time.Second {
			e.log().Info("waiting for dpkg lock", "lock", e.Root.Path(path), "pid", pid, "command", cmd, "timeout", timeout)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(500*time.Millisecond, time.Until(deadline)+time.Millisecond)):
		}
	}
}
