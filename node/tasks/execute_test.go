package tasks

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fnTask is a task whose Run is a function.
type fnTask struct {
	name string
	run  func() (Outcome, error)
}

func (f *fnTask) Name() string { return f.name }
func (f *fnTask) Run(context.Context, *Env, bool) (Outcome, error) {
	return f.run()
}

func ok() (Outcome, error) { return Outcome{Result: Changed}, nil }

func TestExecuteRunsIndependentTasksConcurrently(t *testing.T) {
	// "slow" only finishes once "download" has started: sequential execution would deadlock.
	started := make(chan struct{})
	slow := &fnTask{"packages/install", func() (Outcome, error) {
		select {
		case <-started:
			return ok()
		case <-time.After(5 * time.Second):
			return Outcome{}, errors.New("download never ran during the install")
		}
	}}
	dl := Independent(&fnTask{"artifacts/download", func() (Outcome, error) { close(started); return ok() }})
	var order []string
	var mu sync.Mutex
	rec := func(name string) *fnTask {
		return &fnTask{name, func() (Outcome, error) { mu.Lock(); order = append(order, name); mu.Unlock(); return ok() }}
	}
	extract := NeedsOnly(rec("cni/plugins"), "artifacts/download")
	last := rec("containerd/service") // no Deps: after everything before it
	st, err := Execute(context.Background(), &Env{}, []Task{slow, dl, extract, last}, false)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range st {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "packages/install,artifacts/download,cni/plugins,containerd/service" {
		t.Fatalf("statuses not in list order: %v", names)
	}
	if order[len(order)-1] != "containerd/service" {
		t.Fatalf("a task without Deps ran before the tasks before it: %v", order)
	}
}

func TestExecuteStopsStartingAfterFailure(t *testing.T) {
	ran := map[string]bool{}
	var mu sync.Mutex
	task := func(name string, fail bool) *fnTask {
		return &fnTask{name, func() (Outcome, error) {
			mu.Lock()
			ran[name] = true
			mu.Unlock()
			if fail {
				return Outcome{}, errors.New("boom")
			}
			return ok()
		}}
	}
	list := []Task{task("a", false), task("b", true), task("c", false), NeedsOnly(task("d", false), "b")}
	st, err := Execute(context.Background(), &Env{}, list, false)
	var te *TaskError
	if !errors.As(err, &te) || te.Task != "b" {
		t.Fatalf("err = %v, want task b's failure", err)
	}
	if ran["c"] || ran["d"] {
		t.Fatalf("tasks after a failed dependency ran: %v", ran)
	}
	if len(st) != 2 || st[1].Result != Failed {
		t.Fatalf("statuses = %+v", st)
	}
}

func TestExecuteRejectsUnknownDependency(t *testing.T) {
	_, err := Execute(context.Background(), &Env{}, []Task{NeedsOnly(&fnTask{"x", ok}, "nope")}, false)
	if err == nil || !strings.Contains(err.Error(), `task x depends on "nope"`) {
		t.Fatalf("err = %v", err)
	}
}
