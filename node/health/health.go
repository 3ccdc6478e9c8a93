// Package health is `provision health kubelet|containerd`: one check of a
// service's health endpoint (kubelet's healthz, `crictl info` for containerd),
// run every 30 s by a systemd timer that base installs. The check keeps a small
// state file; after Threshold consecutive failures it restarts the service, and
// then waits an exponentially growing backoff (BaseBackoff doubling up to
// MaxBackoff) before it restarts again. A success resets both counters. A unit
// that is not enabled (a prebaked image before join) is not checked.
package health

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/provision-dev/provision/internal/fsroot"
	"github.com/provision-dev/provision/internal/logging"
	"github.com/provision-dev/provision/internal/runner"
)

// Policy says when to restart.
type Policy struct {
	// Threshold is the number of consecutive failures that triggers a restart (default 3).
	Threshold int
	// BaseBackoff is the minimum time between two restarts, doubled after each
	// restart up to MaxBackoff (defaults 1m, 16m).
	BaseBackoff, MaxBackoff time.Duration
}

// DefaultPolicy is used by the CLI.
var DefaultPolicy = Policy{Threshold: 3, BaseBackoff: time.Minute, MaxBackoff: 16 * time.Minute}

// State is kept between checks in /var/lib/provision/health/<target>.json.
type State struct {
	ConsecutiveFailures int       `json:"consecutiveFailures"`
	Restarts            int       `json:"restarts"`
	LastRestart         time.Time `json:"lastRestart,omitzero"`
	LastCheck           time.Time `json:"lastCheck,omitzero"`
	LastError           string    `json:"lastError,omitempty"`
}

// Action is what a check decided.
type Action string

const (
	Healthy    Action = "healthy"
	Failing    Action = "failing"  // below the threshold
	Restart    Action = "restart"  // restart now
	BackingOff Action = "backoff"  // over the threshold, but restarted too recently
	NotActive  Action = "disabled" // unit not enabled: not checked
)

// Backoff returns the minimum wait after the n-th restart (n >= 1).
func (p Policy) Backoff(n int) time.Duration {
	d := p.BaseBackoff
	for i := 1; i < n && d < p.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, p.MaxBackoff)
}

// Next folds one check result into the state and decides.
func (p Policy) Next(s State, healthy bool, errMsg string, now time.Time) (State, Action) {
	s.LastCheck = now
	if healthy {
		s.ConsecutiveFailures, s.Restarts, s.LastError = 0, 0, ""
		return s, Healthy
	}
	s.ConsecutiveFailures++
	s.LastError = errMsg
	if s.ConsecutiveFailures < p.Threshold {
		return s, Failing
	}
	// A lastRestart in the future (a clock step back, a tampered state file)
	// is ignored: it must not hold restarts off until that date.
	if s.Restarts > 0 && !s.LastRestart.After(now) && now.Sub(s.LastRestart) < p.Backoff(s.Restarts) {
		return s, BackingOff
	}
	s.Restarts++
	s.LastRestart = now
	s.ConsecutiveFailures = 0
	return s, Restart
}

// Checker runs checks against a root.
type Checker struct {
	Root   fsroot.Root
	Runner runner.Runner
	Client *http.Client
	Policy Policy
	Now    func() time.Time
	Log    *slog.Logger
	// KubeletURL is kubelet's healthz (default http://127.0.0.1:10248/healthz).
	KubeletURL string
	// Crictl is the crictl binary (default "crictl" from PATH).
	Crictl string
}

// Targets are the services the checker knows.
var Targets = map[string]string{"kubelet": "kubelet.service", "containerd": "containerd.service"}

// Report is the outcome of one check.
type Report struct {
	Target string
	Action Action
	State  State
}

func statePath(target string) string { return "/var/lib/provision/health/" + target + ".json" }

// Check runs one health check of target and acts on it.
func (c *Checker) Check(ctx context.Context, target string) (Report, error) {
	unitName, ok := Targets[target]
	if !ok {
		return Report{}, fmt.Errorf("unknown health target %q: kubelet or containerd", target)
	}
	if c.Log == nil {
		c.Log = logging.Discard()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if _, err := c.Runner.Run(ctx, runner.Cmd{Argv: []string{"systemctl", "is-enabled", "--quiet", unitName}}); err != nil {
		c.Log.Info("not checked: unit not enabled", "unit", unitName)
		return Report{Target: target, Action: NotActive}, nil
	}
	var s State
	if data, err := c.Root.ReadFile(statePath(target)); err == nil {
		_ = json.Unmarshal(data, &s) // a corrupt state starts over
	}
	checkErr := c.probe(ctx, target)
	msg := ""
	if checkErr != nil {
		msg = checkErr.Error()
	}
	s, action := c.Policy.Next(s, checkErr == nil, msg, c.Now())
	switch action {
	case Healthy:
		c.Log.Info("healthy", "target", target)
	case Failing, BackingOff:
		c.Log.Warn("unhealthy", "target", target, "consecutiveFailures", s.ConsecutiveFailures, "action", action, "error", msg)
	case Restart:
		c.Log.Warn("restarting after repeated failures", "target", target, "unit", unitName, "restart", s.Restarts, "nextBackoff", c.Policy.Backoff(s.Restarts), "error", msg)
		if _, err := c.Runner.Run(ctx, runner.Cmd{Argv: []string{"systemctl", "restart", unitName}}); err != nil {
			c.Log.Error("restart failed", "unit", unitName, "error", err)
		}
	}
	data, _ := json.MarshalIndent(s, "", "  ")
	if _, err := c.Root.WriteFile(statePath(target), append(data, '\n'), 0o644); err != nil {
		// The check and the restart above stand: a state that cannot be kept (a
		// full or read-only disk) must not stop the restarts; the next check
		// starts from the old state.
		c.Log.Error("cannot write the health state; restarts go on", "target", target, "error", err)
	}
	rep := Report{Target: target, Action: action, State: s}
	if checkErr != nil {
		return rep, fmt.Errorf("%s unhealthy (%s): %w", target, action, checkErr)
	}
	return rep, nil
}

func (c *Checker) probe(ctx context.Context, target string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch target {
	case "kubelet":
		url := c.KubeletURL
		if url == "" {
			url = "http://127.0.0.1:10248/healthz"
		}
		client := c.Client
		if client == nil {
			client = &http.Client{Timeout: 5 * time.Second}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: HTTP %d %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return nil
	case "containerd":
		crictl := c.Crictl
		if crictl == "" {
			crictl = "crictl"
		}
		_, err := c.Runner.Run(ctx, runner.Cmd{Argv: []string{crictl, "--timeout", "5s", "info"}})
		return err
	}
	return fmt.Errorf("unknown target %q", target)
}
