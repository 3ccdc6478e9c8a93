package health

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provision-dev/provision/internal/fsroot"
	"github.com/provision-dev/provision/internal/runner"
)

func TestPolicy(t *testing.T) {
	p := Policy{Threshold: 3, BaseBackoff: time.Minute, MaxBackoff: 4 * time.Minute}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var s State
	var got []Action
	// failures 30 s apart: a restart at every 3rd failure, but no sooner than 1m, 2m, 4m after the last one.
	for i := 0; i < 14; i++ {
		var a Action
		s, a = p.Next(s, false, "down", t0.Add(time.Duration(i)*30*time.Second))
		got = append(got, a)
	}
	want := []Action{Failing, Failing, Restart, Failing, Failing, Restart, Failing, Failing, BackingOff, Restart, Failing, Failing, BackingOff, BackingOff}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("step %d: got %v, want %v (all: %v)", i, got[i], want[i], got)
		}
	}
	if s, a := p.Next(s, true, "", t0.Add(time.Hour)); a != Healthy || s.Restarts != 0 || s.ConsecutiveFailures != 0 {
		t.Errorf("success does not reset: %+v %v", s, a)
	}
	if p.Backoff(1) != time.Minute || p.Backoff(2) != 2*time.Minute || p.Backoff(10) != 4*time.Minute {
		t.Errorf("backoff: %v %v %v", p.Backoff(1), p.Backoff(2), p.Backoff(10))
	}
}

func TestCheckKubeletRestartsAfterFailures(t *testing.T) {
	var healthy atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if healthy.Load() {
			w.Write([]byte("ok"))
			return
		}
		http.Error(w, "unhealthy", 500)
	}))
	defer srv.Close()
	root, _ := fsroot.New(t.TempDir())
	f := &runner.Fake{}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Checker{Root: root, Runner: f, Policy: Policy{Threshold: 2, BaseBackoff: 2 * time.Minute, MaxBackoff: time.Hour},
		KubeletURL: srv.URL, Now: func() time.Time { now = now.Add(30 * time.Second); return now }}
	ctx := context.Background()
	for i, want := range []Action{Failing, Restart, Failing, BackingOff} {
		rep, err := c.Check(ctx, "kubelet")
		if err == nil || rep.Action != want {
			t.Fatalf("check %d: %v %v, want %v", i, rep.Action, err, want)
		}
	}
	restarts := 0
	for _, call := range f.Calls() {
		if call == "systemctl restart kubelet.service" {
			restarts++
		}
	}
	if restarts != 1 {
		t.Errorf("restarts = %d: %v", restarts, f.Calls())
	}
	healthy.Store(true)
	if rep, err := c.Check(ctx, "kubelet"); err != nil || rep.Action != Healthy {
		t.Errorf("healthy: %v %v", rep.Action, err)
	}
}

func TestCheckContainerdAndDisabled(t *testing.T) {
	root, _ := fsroot.New(t.TempDir())
	f := (&runner.Fake{}).On([]string{"/opt/bin/crictl"}, "", 1)
	c := &Checker{Root: root, Runner: f, Policy: DefaultPolicy, Crictl: "/opt/bin/crictl"}
	if _, err := c.Check(context.Background(), "containerd"); err == nil || !strings.Contains(err.Error(), "crictl --timeout 5s info") {
		t.Errorf("err = %v", err)
	}
	f.On([]string{"systemctl", "is-enabled"}, "disabled", 1)
	if rep, err := c.Check(context.Background(), "containerd"); err != nil || rep.Action != NotActive {
		t.Errorf("disabled unit: %v %v", rep.Action, err)
	}
	if _, err := c.Check(context.Background(), "etcd"); err == nil {
		t.Errorf("unknown target accepted")
	}
}

// TestRestartsDespiteBadState: a state file that cannot be written (its
// directory is a regular file) does not stop the restarts, and a lastRestart
// in the future does not hold them off.
func TestRestartsDespiteBadState(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 500) }))
	defer srv.Close()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, root fsroot.Root)
	}{
		{"state directory unwritable", func(t *testing.T, root fsroot.Root) {
			if _, err := root.WriteFile("/var/lib/provision/health", []byte("not a directory\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"lastRestart a year ahead", func(t *testing.T, root fsroot.Root) {
			st := fmt.Sprintf(`{"consecutiveFailures":5,"restarts":3,"lastRestart":%q}`, now.AddDate(1, 0, 0).Format(time.RFC3339))
			if _, err := root.WriteFile(statePath("kubelet"), []byte(st), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, _ := fsroot.New(t.TempDir())
			tc.setup(t, root)
			f := &runner.Fake{}
			clock := now
			c := &Checker{Root: root, Runner: f, Policy: Policy{Threshold: 1, BaseBackoff: time.Minute, MaxBackoff: time.Minute},
				KubeletURL: srv.URL, Now: func() time.Time { clock = clock.Add(2 * time.Minute); return clock }}
			for i := 0; i < 3; i++ {
				rep, err := c.Check(context.Background(), "kubelet")
				if err == nil || !strings.Contains(err.Error(), "kubelet unhealthy (restart)") || rep.Action != Restart {
					t.Fatalf("check %d: %v %v, want a restart", i, rep.Action, err)
				}
			}
			restarts := 0
			for _, call := range f.Calls() {
				if call == "systemctl restart kubelet.service" {
					restarts++
				}
			}
			if restarts != 3 {
				t.Errorf("restarts = %d, want 3: %v", restarts, f.Calls())
			}
		})
	}
}
