// Package tasks is the node's unit of work, in the style of kOps nodeup: a task
// reads the actual state, computes the difference, applies only that, and says
// whether it changed anything. Builders (package node) only declare tasks; the
// same list, run with dry=true, is the plan.
package tasks

import (
	"golang.org/x/sys/unix"

	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/provision-dev/provision/internal/download"
	"github.com/provision-dev/provision/internal/faultinject"
	"github.com/provision-dev/provision/internal/fsroot"
	"github.com/provision-dev/provision/internal/logging"
	"github.com/provision-dev/provision/internal/runner"
	"github.com/provision-dev/provision/osprofiles"
)

// Result is what a task did (or, dry, would do).
type Result string

const (
	Changed   Result = "changed"
	Unchanged Result = "unchanged"
	Skipped   Result = "skipped"
	Failed    Result = "failed"
)

// Outcome is a task's result and a one-line, secret-free description.
type Outcome struct {
	Result Result
	Detail string
}

func changed(format string, a ...any) (Outcome, error) {
	return Outcome{Result: Changed, Detail: fmt.Sprintf(format, a...)}, nil
}

func unchanged(format string, a ...any) (Outcome, error) {
	return Outcome{Result: Unchanged, Detail: fmt.Sprintf(format, a...)}, nil
}

func skipped(format string, a ...any) (Outcome, error) {
	return Outcome{Result: Skipped, Detail: fmt.Sprintf(format, a...)}, nil
}

// Task is one idempotent step.
type Task interface {
	// Name is stable and unique within a phase, e.g. "kernel/sysctl-config".
	Name() string
	// Run reads the actual state and, unless dry, applies the difference.
	// Dry, Changed means "would change".
	Run(ctx context.Context, e *Env, dry bool) (Outcome, error)
}

// Env is what tasks act on.
type Env struct {
	Root    fsroot.Root
	Runner  runner.Runner
	Profile osprofiles.Profile
	// Live is true when the root is the running system: services are started and
	// kernel settings applied. With --root DIR it is false; those steps are skipped.
	Live bool
	// InContainer is true inside a container (systemd-detect-virt --container):
	// kernel-level actions are written to config and reported skipped.
	InContainer bool
	Downloader  *download.Downloader
	Log         *slog.Logger

	mu      sync.Mutex
	changed map[string]time.Duration // task -> CLOCK_MONOTONIC when it changed
	sums    map[string]string        // node path -> verified sha256 of a downloaded artifact
	cgroup  CgroupVersion            // the running host's, as CgroupCheck detected it
}

// InRoot returns argv to run a command inside the root: as is on a live root,
// under chroot(8) otherwise. Tools with their own root option (dnf --installroot,
// rpm --root, systemctl --root) use that instead.
func (e *Env) InRoot(argv ...string) []string {
	if e.Root.IsHost() {
		return argv
	}
	return append([]string{"chroot", e.Root.Dir}, argv...)
}

// Exec runs argv (already rooted by the caller) with extra environment.
func (e *Env) Exec(ctx context.Context, env []string, argv ...string) (runner.Result, error) {
	return e.Runner.Run(ctx, runner.Cmd{Argv: argv, Env: env})
}

// KernelSkip returns why kernel-level actions must not run here, or "".
func (e *Env) KernelSkip() string {
	switch {
	case !e.Live:
		return "root is not the running system"
	case e.InContainer:
		return "running in a container"
	}
	return ""
}

// Changed reports whether any of the named tasks changed (or would) in this run.
func (e *Env) Changed(names ...string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, n := range names {
		if _, ok := e.changed[n]; ok {
			out = append(out, n)
		}
	}
	return out
}

// LastChange returns when the last of the named tasks changed in this run, on
// CLOCK_MONOTONIC (the clock of systemd's *TimestampMonotonic properties), and
// false if none changed.
func (e *Env) LastChange(names ...string) (time.Duration, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var last time.Duration
	found := false
	for _, n := range names {
		if at, ok := e.changed[n]; ok {
			found = true
			last = max(last, at)
		}
	}
	return last, found
}

func (e *Env) markChanged(name string) {
	at := Monotonic()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.changed == nil {
		e.changed = map[string]time.Duration{}
	}
	e.changed[name] = at
}

// Monotonic returns CLOCK_MONOTONIC, the clock systemd stamps unit state
// changes with, so the two compare; replaceable in tests.
var Monotonic = func() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// SetSum records the verified sha256 of the artifact at node path p.
func (e *Env) SetSum(p, sum string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sums == nil {
		e.sums = map[string]string{}
	}
	e.sums[p] = sum
}

// Sum returns the verified sha256 of the artifact at node path p, if known.
func (e *Env) Sum(p string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.sums[p]
	return s, ok
}

func (e *Env) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return logging.Discard()
}

// Status is one task's entry in status.json and in the plan.
type Status struct {
	Name            string  `json:"name"`
	Result          Result  `json:"result"`
	Detail          string  `json:"detail,omitempty"`
	DurationSeconds float64 `json:"durationSeconds"`
}

// TaskError is the failure of one task.
type TaskError struct {
	Task string
	Err  error
}

func (e *TaskError) Error() string { return fmt.Sprintf("task %s: %v", e.Task, e.Err) }
func (e *TaskError) Unwrap() error { return e.Err }

// Dependent is implemented by tasks that need only the named earlier tasks, so
// they may run while unrelated earlier tasks are still running (downloads and
// extraction during the package install). A task without it needs every task
// before it in the list.
type Dependent interface {
	Deps() []string
}

// Execute runs the tasks as a graph: each starts once the tasks it depends on
// (Dependent, or else all earlier ones) succeeded. After the first failure no
// further task starts (later tasks depend on earlier ones); running ones finish.
// It returns the status of every task that ran, in list order. Dry runs (the
// plan) run one task at a time, in order.
func Execute(ctx context.Context, e *Env, list []Task, dry bool) ([]Status, error) {
	deps, err := dependencies(list)
	if err != nil {
		return nil, err
	}
	if dry {
		var out []Status
		for _, t := range list {
			st, err := runOne(ctx, e, t, dry)
			out = append(out, st)
			if err != nil {
				return out, err
			}
		}
		return out, nil
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		done     = make([]chan struct{}, len(list))
		statuses = make([]*Status, len(list))
		ok       = make([]bool, len(list))
	)
	for i := range list {
		done[i] = make(chan struct{})
	}
	for i, t := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[i])
			for _, j := range deps[i] {
				<-done[j]
				if !ok[j] { // written before done[j] was closed
					return
				}
			}
			mu.Lock()
			stop := firstErr != nil
			mu.Unlock()
			if stop {
				return
			}
			st, err := runOne(ctx, e, t, dry)
			statuses[i] = &st
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			ok[i] = true
		}()
	}
	wg.Wait()
	var out []Status
	for _, st := range statuses {
		if st != nil {
			out = append(out, *st)
		}
	}
	return out, firstErr
}

// dependencies returns, for each task, the indices of the tasks it waits for.
func dependencies(list []Task) ([][]int, error) {
	index := map[string]int{}
	deps := make([][]int, len(list))
	for i, t := range list {
		if d, ok := t.(Dependent); ok {
			for _, name := range d.Deps() {
				j, ok := index[name]
				if !ok {
					return nil, fmt.Errorf("task %s depends on %q, which is not an earlier task", t.Name(), name)
				}
				deps[i] = append(deps[i], j)
			}
		} else {
			for j := 0; j < i; j++ {
				deps[i] = append(deps[i], j)
			}
		}
		index[t.Name()] = i
	}
	return deps, nil
}

// runOne runs one task inside the logging helper and returns its status.
func runOne(ctx context.Context, e *Env, t Task, dry bool) (Status, error) {
	faultinject.Point("task: before " + t.Name())
	var o Outcome
	result, detail, d, err := logging.Step(ctx, e.log(), t.Name(), func(ctx context.Context) (string, string, error) {
		var err error
		o, err = t.Run(ctx, e, dry)
		return string(o.Result), o.Detail, err
	})
	st := Status{Name: t.Name(), Result: Result(result), Detail: detail, DurationSeconds: d.Seconds()}
	if err != nil {
		st.Result = Failed
		st.Detail = err.Error()
		return st, &TaskError{Task: t.Name(), Err: err}
	}
	if o.Result == Changed {
		e.markChanged(t.Name())
	}
	faultinject.Point("task: after " + t.Name())
	return st, nil
}

// CountChanged returns how many statuses are Changed.
func CountChanged(sts []Status) int {
	n := 0
	for _, s := range sts {
		if s.Result == Changed {
			n++
		}
	}
	return n
}

// Since is time.Since, replaceable in tests.
var Since = time.Since

func joinNonEmpty(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}

// NeedsOnly returns t depending on the named earlier tasks only, instead of on
// every task before it in the list (the default), so it may run while unrelated
// earlier tasks are still running. With no names it is Independent.
func NeedsOnly(t Task, deps ...string) Task { return &needsOnly{Task: t, deps: deps} }

// Independent returns t depending on no other task: it may start at once.
func Independent(t Task) Task { return &needsOnly{Task: t} }

type needsOnly struct {
	Task
	deps []string
}

func (a *needsOnly) Deps() []string { return a.deps }
