// Package runner is the one way node code runs commands: an interface with a real
// implementation (os/exec) and a fake that records argv for tests.
//
// Argv never carries a secret (secrets travel in 0600 files), so a failed
// command's error and log name its argv and its stderr.
package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Cmd is one command.
type Cmd struct {
	Argv []string
	// Env is added to the runner's environment (KEY=value).
	Env []string
	// Stdin, if set, is fed to the command.
	Stdin []byte
}

// Result is what a command printed and how it exited.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
}

// Runner runs commands. Run returns an *ExitError when the command ran and exited
// non-zero (the Result is still filled), another error when it could not run.
type Runner interface {
	Run(ctx context.Context, c Cmd) (Result, error)
}

// ExitError is a command that exited non-zero.
type ExitError struct {
	Argv     []string
	ExitCode int
	Stderr   string
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("command %q exited with status %d", strings.Join(e.Argv, " "), e.ExitCode)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + tail(s, 2048)
	}
	return msg
}

// ExitCode returns the exit code of err if it is an *ExitError, else -1.
func ExitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode
	}
	return -1
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// Exec runs commands on the host with os/exec.
type Exec struct {
	Log *slog.Logger
}

// Run implements Runner.
func (x Exec) Run(ctx context.Context, c Cmd) (Result, error) {
	if len(c.Argv) == 0 {
		return Result{}, errors.New("runner: empty argv")
	}
	log := x.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if c.Stdin != nil {
		cmd.Stdin = bytes.NewReader(c.Stdin)
	}
	start := time.Now()
	err := cmd.Run()
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
		log.Debug("command exited non-zero", "argv", c.Argv, "exit", res.ExitCode, "stderr", tail(string(res.Stderr), 2048), "duration", time.Since(start))
		return res, &ExitError{Argv: c.Argv, ExitCode: res.ExitCode, Stderr: string(res.Stderr)}
	case err != nil:
		log.Debug("command did not run", "argv", c.Argv, "error", err)
		return res, fmt.Errorf("run %q: %w", strings.Join(c.Argv, " "), err)
	}
	log.Debug("command ran", "argv", c.Argv, "duration", time.Since(start))
	return res, nil
}

// Fake records every command and answers from rules: the first rule whose Prefix
// matches the argv's start wins; no match means exit 0 with no output.
type Fake struct {
	mu    sync.Mutex
	Rules []Rule
	calls []Cmd
}

// Rule is a canned answer for commands starting with Prefix.
type Rule struct {
	Prefix []string
	// Func, if set, computes the answer (and may have side effects, such as
	// creating the files a real command would).
	Func     func(c Cmd) Result
	Stdout   string
	Stderr   string
	ExitCode int
}

// On adds a rule answering commands that start with prefix.
func (f *Fake) On(prefix []string, stdout string, exit int) *Fake {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Rules = append(f.Rules, Rule{Prefix: prefix, Stdout: stdout, ExitCode: exit})
	return f
}

// OnFunc adds a rule computed by fn.
func (f *Fake) OnFunc(prefix []string, fn func(c Cmd) Result) *Fake {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Rules = append(f.Rules, Rule{Prefix: prefix, Func: fn})
	return f
}

// Run implements Runner.
func (f *Fake) Run(_ context.Context, c Cmd) (Result, error) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	rules := append([]Rule(nil), f.Rules...)
	f.mu.Unlock()
	for i := len(rules) - 1; i >= 0; i-- { // later rules override earlier ones
		r := rules[i]
		if !hasPrefix(c.Argv, r.Prefix) {
			continue
		}
		res := Result{Stdout: []byte(r.Stdout), Stderr: []byte(r.Stderr), ExitCode: r.ExitCode}
		if r.Func != nil {
			res = r.Func(c)
		}
		if res.ExitCode != 0 {
			return res, &ExitError{Argv: c.Argv, ExitCode: res.ExitCode, Stderr: string(res.Stderr)}
		}
		return res, nil
	}
	return Result{}, nil
}

// Calls returns the argv of every command run so far, joined with spaces.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.calls))
	for i, c := range f.calls {
		out[i] = strings.Join(c.Argv, " ")
	}
	return out
}

// Reset forgets the recorded calls (the rules stay).
func (f *Fake) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// hasPrefix matches argv, or the command after a leading "chroot DIR", against prefix.
func hasPrefix(argv, prefix []string) bool {
	if len(argv) > 2 && argv[0] == "chroot" && (len(prefix) == 0 || prefix[0] != "chroot") {
		argv = argv[2:]
	}
	if len(prefix) > len(argv) {
		return false
	}
	for i := range prefix {
		if argv[i] != prefix[i] {
			return false
		}
	}
	return true
}
