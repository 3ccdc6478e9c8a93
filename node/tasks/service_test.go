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
