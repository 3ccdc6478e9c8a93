package tasks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// Service enables (and on a live root starts) a systemd unit. It runs
// daemon-reload first when one of ReloadOn changed, and restarts a running unit
// when one of RestartOn changed or its executable was replaced.
type Service struct {
	TaskName  string
	Unit      string
	Start     bool
	ReloadOn  []string
	RestartOn []string
	// ExecPath is the unit's executable (node path). A running unit whose main
	// process runs another file than the one now at ExecPath (an upgrade
	// replaced it, in this run or an earlier one) is restarted, once, together
	// with any RestartOn change.
	ExecPath string
	// OnlyOnChange: another phase enables and starts the unit (join's containerd,
	// which base installed). The task runs no command unless one of ReloadOn or
	// RestartOn changed in this run, and then only daemon-reloads and restarts
	// (a restart starts a stopped unit); it never enables.
	OnlyOnChange bool
}

func (t *Service) Name() string { return t.TaskName }

// systemctl talks to the running systemd on a live root, and works on the unit
// files of the root (systemctl --root) otherwise.
func (t *Service) systemctl(e *Env, args ...string) []string {
	if e.Live || e.Root.IsHost() {
		return append([]string{"systemctl"}, args...)
	}
	return append([]string{"systemctl", "--root", e.Root.Dir}, args...)
}

// checkUnitDirs refuses to run systemctl --root when a directory it writes
// links in is a symlink: systemctl creates them from the host side and would
// follow it out of the root. (On the running system the root is "/".)
func checkUnitDirs(e *Env) error {
	if e.Live || e.Root.IsHost() {
		return nil
	}
	const dir = "/etc/systemd/system"
	if err := e.Root.RealDirs(dir); err != nil {
		return err
	}
	names, err := e.Root.ReadDirNames(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".wants") || strings.HasSuffix(n, ".requires") {
			if err := e.Root.RealDirs(path.Join(dir, n)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *Service) Run(ctx context.Context, e *Env, dry bool) (Outcome, error) {
	var did, skip []string
	run := func(args ...string) error {
		if dry {
			return nil
		}
		if err := checkUnitDirs(e); err != nil {
			return err
		}
		_, err := e.Exec(ctx, nil, t.systemctl(e, args...)...)
		return err
	}
	if t.OnlyOnChange {
		return t.applyChanges(ctx, e, run)
	}
	reload := e.Live && len(e.Changed(t.ReloadOn...)) > 0
	res, _ := e.Exec(ctx, nil, t.systemctl(e, "is-enabled", t.Unit)...)
	enabled := false
	switch strings.TrimSpace(string(res.Stdout)) {
	case "enabled", "enabled-runtime", "static":
		enabled = true
	}
	active := false
	if t.Start && e.Live {
		_, err := e.Exec(ctx, nil, t.systemctl(e, "is-active", "--quiet", t.Unit)...)
		active = err == nil
	}
	// `systemctl enable` reloads the manager itself, and `enable --now` also
	// starts the unit: one call instead of three on a first join (the time to a
	// running kubelet counts).
	startNow := t.Start && e.Live && !active
	switch {
	case !enabled && startNow:
		if err := run("enable", "--now", t.Unit); err != nil {
			return Outcome{}, err
		}
		if reload {
			did = append(did, "daemon-reload")
		}
		did = append(did, "enable "+t.Unit, "start "+t.Unit)
	case !enabled:
		if err := run("enable", t.Unit); err != nil {
			return Outcome{}, err
		}
		if reload {
			did = append(did, "daemon-reload")
		}
		did = append(did, "enable "+t.Unit)
	case reload:
		if err := run("daemon-reload"); err != nil {
			return Outcome{}, err
		}
		did = append(did, "daemon-reload")
	}
	if t.Start {
		if !e.Live {
			skip = append(skip, "not started: root is not the running system")
		} else {
			why := e.Changed(t.RestartOn...)
			replaced := !startNow && t.execReplaced(ctx, e)
			var reasons []string
			if len(why) > 0 {
				reasons = append(reasons, strings.Join(why, ", ")+" changed")
			}
			if replaced {
				reasons = append(reasons, t.ExecPath+" replaced")
			}
			switch {
			case startNow:
				if enabled {
					if err := run("start", t.Unit); err != nil {
						return Outcome{}, err
					}
					did = append(did, "start "+t.Unit)
				}
			case len(reasons) > 0:
				if !replaced && t.startedSinceChange(ctx, e) {
					skip = append(skip, fmt.Sprintf("%s started after %s changed: no restart", t.Unit, strings.Join(why, ", ")))
					break
				}
				if err := run("restart", t.Unit); err != nil {
					return Outcome{}, err
				}
				did = append(did, fmt.Sprintf("restart %s (%s)", t.Unit, strings.Join(reasons, ", ")))
			}
		}
	}
	if len(did) > 0 {
		return changed("%s", joinNonEmpty(strings.Join(did, ", "), strings.Join(skip, ", ")))
	}
	if len(skip) > 0 && !e.Live {
		return skipped("%s enabled; %s", t.Unit, strings.Join(skip, ", "))
	}
	if len(skip) > 0 {
		return unchanged("%s enabled and active; %s", t.Unit, strings.Join(skip, ", "))
	}
	return unchanged("%s enabled%s", t.Unit, map[bool]string{true: " and active", false: ""}[t.Start])
}

// applyChanges is Run of an OnlyOnChange service: daemon-reload when one of
// ReloadOn changed, restart when one of RestartOn did (unless the unit started
// after that change), nothing otherwise.
func (t *Service) applyChanges(ctx context.Context, e *Env, run func(args ...string) error) (Outcome, error) {
	reload, why := e.Changed(t.ReloadOn...), e.Changed(t.RestartOn...)
	switch {
	case len(reload) == 0 && len(why) == 0:
		return unchanged("%s: nothing it reads changed", t.Unit)
	case !e.Live:
		return skipped("%s: %s changed; not restarted: root is not the running system", t.Unit, strings.Join(append(reload, why...), ", "))
	}
	var did []string
	if len(reload) > 0 {
		if err := run("daemon-reload"); err != nil {
			return Outcome{}, err
		}
		did = append(did, "daemon-reload")
	}
	if len(why) > 0 {
		if t.startedSinceChange(ctx, e) {
			skip := fmt.Sprintf("%s started after %s changed: no restart", t.Unit, strings.Join(why, ", "))
			if len(did) == 0 {
				return unchanged("%s", skip)
			}
			return changed("%s", joinNonEmpty(strings.Join(did, ", "), skip))
		}
		if err := run("restart", t.Unit); err != nil {
			return Outcome{}, err
		}
		did = append(did, fmt.Sprintf("restart %s (%s changed)", t.Unit, strings.Join(why, ", ")))
	}
	return changed("%s", strings.Join(did, ", "))
}

// WaitHTTP waits, bounded, polling fast, for URL to answer 200 (kubelet's healthz).
type WaitHTTP struct {
	TaskName string
	URL      string
	Timeout  time.Duration
	Poll     time.Duration
	Client   *http.Client
}

func (t *WaitHTTP) Name() string { return t.TaskName }

func (t *WaitHTTP) Run(ctx context.Context, e *Env, dry bool) (Outcome, error) {
	if !e.Live {
		return skipped("root is not the running system: %s not checked", t.URL)
	}
	if dry {
		return unchanged("would wait up to %s for %s", t.Timeout, t.URL)
	}
	client := t.Client
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Second}
	}
	start := time.Now()
	deadline := start.Add(t.Timeout)
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return unchanged("%s healthy after %s", t.URL, time.Since(start).Round(time.Millisecond))
			}
			last = fmt.Sprintf("HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return Outcome{}, fmt.Errorf("%s not healthy after %s: %s", t.URL, t.Timeout, last)
		}
		select {
		case <-ctx.Done():
			return Outcome{}, ctx.Err()
		case <-time.After(t.Poll):
		}
	}
}

// startedSinceChange reports whether the unit's main process started after the
// last change of its RestartOn tasks, so it already runs with them (a package's
// postinst started it with the configuration written before the install) and a
// restart would only cost time. Unknown means no.
func (t *Service) startedSinceChange(ctx context.Context, e *Env) bool {
	changedAt, ok := e.LastChange(t.RestartOn...)
	if !ok {
		return false
	}
	res, err := e.Exec(ctx, nil, t.systemctl(e, "show", "-p", "ExecMainStartTimestampMonotonic", t.Unit)...)
	if err != nil {
		return false
	}
	// "ExecMainStartTimestampMonotonic=<µs>" (no --value: systemd 219 lacks it); 0 = never started.
	v, found := strings.CutPrefix(strings.TrimSpace(string(res.Stdout)), "ExecMainStartTimestampMonotonic=")
	us, err := strconv.ParseInt(v, 10, 64)
	if !found || err != nil || us <= 0 {
		return false
	}
	return time.Duration(us)*time.Microsecond > changedAt
}

// execReplaced reports whether the unit's running main process executes another
// file than the one at ExecPath (live roots only: /proc is the node's). Unknown
// means no.
func (t *Service) execReplaced(ctx context.Context, e *Env) bool {
	if t.ExecPath == "" || !e.Live {
		return false
	}
	res, err := e.Exec(ctx, nil, t.systemctl(e, "show", "-p", "MainPID", t.Unit)...)
	if err != nil {
		return false
	}
	v, found := strings.CutPrefix(strings.TrimSpace(string(res.Stdout)), "MainPID=")
	pid, err := strconv.Atoi(v)
	if !found || err != nil || pid <= 0 {
		return false
	}
	running, err := os.Stat(procExe(pid))
	if err != nil {
		return false
	}
	current, err := e.Root.Stat(t.ExecPath)
	if err != nil {
		return false
	}
	return !os.SameFile(running, current)
}

// procExe is the executable of process pid; replaceable in tests.
var procExe = func(pid int) string { return "/proc/" + strconv.Itoa(pid) + "/exe" }
