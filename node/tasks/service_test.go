package tasks

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/internal/runner"
)

// TestServiceRestartOnlyIfStartedBeforeChange: a RestartOn change restarts a
// running unit unless its main process started after the change (a package's
// postinst started it with the configuration already written).
func TestServiceRestartOnlyIfStartedBeforeChange(t *testing.T) {
	defer func(m func() time.Duration) { Monotonic = m }(Monotonic)
	Monotonic = func() time.Duration { return 100 * time.Second } // the config's change
	cases := []struct {
		name        string
		show        string
		showExit    int
		wantRestart bool
		wantResult  Result
		wantDetail  string
	}{
		{"started after the change", "ExecMainStartTimestampMonotonic=100500000\n", 0, false, Unchanged, "containerd.service started after cfg changed: no restart"},
		{"started before the change", "ExecMainStartTimestampMonotonic=99000000\n", 0, true, Changed, "restart containerd.service (cfg changed)"},
		{"never started", "ExecMainStartTimestampMonotonic=0\n", 0, true, Changed, "restart containerd.service"},
		{"unknown property (old systemd)", "", 0, true, Changed, "restart containerd.service"},
		{"show fails", "", 1, true, Changed, "restart containerd.service"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &runner.Fake{}
			f.On([]string{"systemctl", "is-enabled"}, "enabled\n", 0)
			f.On([]string{"systemctl", "is-active"}, "", 0)
			f.On([]string{"systemctl", "show"}, c.show, c.showExit)
			f.On([]string{"systemctl", "restart"}, "", 0)
			e := newEnv(t, "debian-12", true, f)
			e.markChanged("cfg")
			o, err := (&Service{TaskName: "s", Unit: "containerd.service", Start: true, RestartOn: []string{"cfg"}}).Run(context.Background(), e, false)
			if err != nil {
				t.Fatal(err)
			}
			restarted := strings.Contains(strings.Join(f.Calls(), "\n"), "systemctl restart containerd.service")
			if restarted != c.wantRestart || o.Result != c.wantResult || !strings.Contains(o.Detail, c.wantDetail) {
				t.Errorf("restarted=%v outcome=%+v; want restarted=%v result=%s detail containing %q\ncalls:\n%s",
					restarted, o, c.wantRestart, c.wantResult, c.wantDetail, strings.Join(f.Calls(), "\n"))
			}
		})
	}
}

// TestServiceOnlyOnChange: an OnlyOnChange service runs no command when
// nothing it reads changed, daemon-reloads on a ReloadOn change, restarts (never
// enables) on a RestartOn change, and only reports on a root that is not live.
func TestServiceOnlyOnChange(t *testing.T) {
	cases := []struct {
		name       string
		live       bool
		changed    []string
		wantCalls  []string
		wantResult Result
		wantDetail string
	}{
		{"nothing changed", true, nil, nil, Unchanged, "containerd.service: nothing it reads changed"},
		{"an unrelated task changed", true, []string{"other"}, nil, Unchanged, "nothing it reads changed"},
		{"config changed", true, []string{"cfg"}, []string{"systemctl show -p ExecMainStartTimestampMonotonic containerd.service", "systemctl restart containerd.service"}, Changed, "restart containerd.service (cfg changed)"},
		{"drop-in and config changed", true, []string{"cfg", "dropin"}, []string{"systemctl daemon-reload", "systemctl show -p ExecMainStartTimestampMonotonic containerd.service", "systemctl restart containerd.service"}, Changed, "daemon-reload, restart containerd.service (cfg, dropin changed)"},
		{"not live", false, []string{"cfg"}, nil, Skipped, "not restarted: root is not the running system"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &runner.Fake{}
			e := newEnv(t, "debian-12", c.live, f)
			for _, n := range c.changed {
				e.markChanged(n)
			}
			task := &Service{TaskName: "s", Unit: "containerd.service", Start: true, OnlyOnChange: true, ReloadOn: []string{"dropin"}, RestartOn: []string{"cfg", "dropin"}}
			o, err := task.Run(context.Background(), e, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Calls(); strings.Join(got, "\n") != strings.Join(c.wantCalls, "\n") || o.Result != c.wantResult || !strings.Contains(o.Detail, c.wantDetail) {
				t.Errorf("calls %q outcome %+v; want calls %q result %s detail containing %q", got, o, c.wantCalls, c.wantResult, c.wantDetail)
			}
		})
	}
}
