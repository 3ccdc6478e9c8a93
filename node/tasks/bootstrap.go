package tasks

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// KubeletBootstrap waits, bounded, for the kubelet's TLS bootstrap: its client
// certificate (CertPath) appears once the API server has signed the CSR the
// kubelet made with the bootstrap token. A kubelet that keeps being refused
// (Unauthorized or Forbidden: an unknown or expired token, missing RBAC) fails
// the task after Grace with the kubelet's own error, instead of waiting out
// Timeout; on Timeout the kubelet's last errors are reported.
type KubeletBootstrap struct {
	TaskName string
	// CertPath is the kubelet's client certificate (node path).
	CertPath string
	// Unit is the kubelet's systemd unit, whose journal is read.
	Unit    string
	Timeout time.Duration
	// Grace is how long refusals may last (a token created a moment ago may
	// not be known to every API server yet) before the task fails.
	Grace time.Duration
	Poll  time.Duration
}

func (t *KubeletBootstrap) Name() string { return t.TaskName }

// refusedRE matches the API server refusing the kubelet's bootstrap
// credentials, e.g. kubelet v1.31's `certificate_manager.go] "Unhandled Error"
// err="...: cannot create certificate signing request: Unauthorized"`. Meanwhile
// the kubelet's informers run as system:anonymous and log "forbidden" lines that
// are a consequence, not the cause: they do not match.
var refusedRE = regexp.MustCompile(`(?i)(certificate|bootstrap|failed to run kubelet).*\b(unauthorized|forbidden)\b`)

// anonymousRE matches the informers' refusals as system:anonymous, a
// consequence of the refused bootstrap, never its cause, even where the
// resource's name matches refusedRE (kubelet 1.37's "failed to list
// *v1.PodCertificateRequest: ... is forbidden: User "system:anonymous"").
var anonymousRE = regexp.MustCompile(`system:anonymous`)

// errFieldRE extracts klog's err="..." field, the message proper.
var errFieldRE = regexp.MustCompile(`err="((?:[^"\\]|\\.)*)"`)

// errorRE picks the kubelet's error lines, for the report on timeout.
var errorRE = regexp.MustCompile(`(?i)(\berr(or)?\b|\bfailed\b|refused|unauthorized|forbidden|timeout)`)

// tokenLikeRE is redacted from anything reported, whatever the kubelet logs.
var tokenLikeRE = regexp.MustCompile(`[a-z0-9]{6}\.[a-z0-9]{16}`)

func (t *KubeletBootstrap) Run(ctx context.Context, e *Env, dry bool) (Outcome, error) {
	if !e.Live {
		return skipped("root is not the running system: TLS bootstrap not awaited")
	}
	if dry {
		return unchanged("would wait up to %s for %s", t.Timeout, t.CertPath)
	}
	if e.Root.Exists(t.CertPath) {
		return unchanged("kubelet client certificate present")
	}
	start := time.Now()
	// The journal is read from a second before the start, so the lines of a
	// kubelet started just now are included.
	since := "@" + strconv.FormatInt(start.Add(-time.Second).Unix(), 10)
	var firstRefusal time.Time
	var lastCheck time.Time
	last := ""
	for {
		if e.Root.Exists(t.CertPath) {
			return changed("kubelet client certificate issued after %s", time.Since(start).Round(time.Millisecond))
		}
		now := time.Now()
		if now.Sub(lastCheck) >= time.Second {
			lastCheck = now
			lines := t.kubeletLog(ctx, e, since)
			if l := lastMatch(lines, refusedRE, anonymousRE); l != "" {
				last = l
				if firstRefusal.IsZero() {
					firstRefusal = now
				}
			} else if l := lastMatch(lines, errorRE, nil); l != "" {
				last = l
			}
			if !firstRefusal.IsZero() && now.Sub(firstRefusal) >= t.Grace {
				return Outcome{}, fmt.Errorf("the API server refuses the kubelet's bootstrap credentials (for %s): %s; check the bootstrap token (unknown or expired?) and the RBAC bindings for system:bootstrappers",
					now.Sub(firstRefusal).Round(time.Second), last)
			}
		}
		if now.Sub(start) >= t.Timeout {
			if last == "" {
				last = "no error logged by " + t.Unit
			}
			return Outcome{}, fmt.Errorf("no kubelet client certificate (%s) after %s; kubelet: %s", t.CertPath, t.Timeout, last)
		}
		select {
		case <-ctx.Done():
			return Outcome{}, ctx.Err()
		case <-time.After(t.Poll):
		}
	}
}

// kubeletLog returns the unit's journal lines since since (empty if unreadable).
func (t *KubeletBootstrap) kubeletLog(ctx context.Context, e *Env, since string) []string {
	res, err := e.Exec(ctx, nil, "journalctl", "--no-pager", "-q", "-o", "cat", "-u", t.Unit, "--since", since)
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(res.Stdout)), "\n")
}

// lastMatch returns the last line matching re and not exclude (nil: none),
// redacted and shortened.
func lastMatch(lines []string, re, exclude *regexp.Regexp) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if re.MatchString(lines[i]) && (exclude == nil || !exclude.MatchString(lines[i])) {
			l := strings.TrimSpace(lines[i])
			if m := errFieldRE.FindStringSubmatch(l); m != nil {
				l = strings.ReplaceAll(m[1], `\"`, `"`)
			}
			l = tokenLikeRE.ReplaceAllString(l, "<redacted>")
			if len(l) > 400 {
				l = l[:400] + "..."
			}
			return l
		}
	}
	return ""
}
