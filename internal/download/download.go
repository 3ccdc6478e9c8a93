// Package download is the one downloader for every node artifact.
//
// A download streams into a temp file in the target directory while hashing with
// sha256, is fsynced, and is renamed over the target only when the hash matches.
// A mismatch names the URL, the expected and the actual hash and leaves no file.
// Transient failures (5xx, timeouts, stalls, connection resets, cut bodies) are
// retried with capped exponential backoff; 4xx and mismatches are not. A target
// that already has the expected hash is not downloaded again. The checksum comes
// from the request or from a checksum file: Request.ChecksumURL (the artifact's
// own convention, internal/artifacts), URL+".sha256" when none is given. Of a
// file listing several entries, the one naming the artifact's file is taken; the
// checksum is never skipped. An executable target (Request.Mode) gets its
// execute bits only once its hash matched. Memory stays bounded: bytes go
// through one fixed buffer per download.
//
// Bounds, matching setup.sh's curl flags: a redirect from https to anything
// but https is refused (curl --proto-redir =https); a body larger than the
// request's MaxBytes (the pinned size when known, else Downloader.MaxBytes,
// 1 GiB by default) is cut while streaming (--max-filesize); a download that
// has not finished after Downloader.Deadline (15 min by default, retries
// included) ends (--max-time), on top of the stall watchdog. Every refusal
// leaves no temp file and the old target intact.
//
// The target is a node path resolved inside Request.Root (internal/fsroot): a
// symlink in the root can never make a download land outside it.
package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/provision-dev/provision/internal/faultinject"
	"github.com/provision-dev/provision/internal/fsroot"
)

// Request is one artifact to fetch.
type Request struct {
	URL string
	// SHA256 is the expected hash (64 hex digits); empty means fetch it from ChecksumURL.
	SHA256 string
	// ChecksumURL is where the checksum file of an unpinned download is
	// published (at most MaxChecksumBytes, "HASH" or sha256sum lines); empty
	// means URL+".sha256".
	ChecksumURL string
	// Root is the root Dest is resolved in (the zero Root is "/").
	Root fsroot.Root
	// Dest is the node path of the target file, under Root.
	Dest string
	// SourceInRoot makes a file:// URL's path a node path under Root (a bundle
	// installed in the root) instead of a host path.
	SourceInRoot bool
	// MaxBytes bounds the body (the pinned size when known); 0 means Downloader.MaxBytes.
	MaxBytes int64
	// Mode is the target's mode (0644 if zero).
	Mode fs.FileMode
}

// Result says what Fetch did.
type Result struct {
	// Downloaded is false when the target already had the expected hash.
	Downloaded bool
	SHA256     string
	Bytes      int64
}

// Downloader fetches artifacts. The zero value is usable; fields override defaults.
type Downloader struct {
	Client *http.Client
	// Attempts is the number of tries for a transient failure (default 5).
	Attempts int
	// BaseDelay and MaxDelay bound the exponential backoff (default 500ms, 8s).
	BaseDelay, MaxDelay time.Duration
	// StallTimeout aborts an attempt that receives no byte for this long (default 30s).
	StallTimeout time.Duration
	// ProgressEvery is the interval of progress logs on long downloads (default 5s).
	ProgressEvery time.Duration
	// Parallel bounds concurrent downloads in FetchAll (default 4).
	Parallel int
	// MaxBytes bounds a body whose size is not pinned (default DefaultMaxBytes).
	MaxBytes int64
	// Deadline bounds one Fetch, retries included (default DefaultDeadline).
	Deadline time.Duration
	Log      *slog.Logger
}

const bufSize = 256 << 10

// Defaults of the bounds (setup.sh uses the same: --max-filesize, --max-time).
const (
	DefaultMaxBytes = 1 << 30
	DefaultDeadline = 15 * time.Minute
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

func (d *Downloader) client() *http.Client {
	if d.Client != nil {
		return d.Client
	}
	return defaultClient
}

var defaultClient = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	TLSHandshakeTimeout:   15 * time.Second,
	ResponseHeaderTimeout: 30 * time.Second,
	MaxIdleConnsPerHost:   4,
	ForceAttemptHTTP2:     true,
}}

func (d *Downloader) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.New(slog.DiscardHandler)
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// MismatchError is a download whose sha256 is not the expected one.
type MismatchError struct {
	URL, Expected, Actual string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("sha256 mismatch for %s: expected %s, got %s", e.URL, e.Expected, e.Actual)
}

// StatusError is an HTTP response that is not 200.
type StatusError struct {
	URL  string
	Code int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("GET %s: HTTP %d %s", e.URL, e.Code, http.StatusText(e.Code))
}

// DowngradeError is a redirect from https to a URL that is not https.
type DowngradeError struct {
	From, To string
}

func (e *DowngradeError) Error() string {
	return fmt.Sprintf("refusing the redirect from %s to %s: a download started over https never continues over plain http", e.From, e.To)
}

// TooLargeError is a body larger than the request's bound.
type TooLargeError struct {
	URL       string
	Max, Got  int64
	Announced bool
}

func (e *TooLargeError) Error() string {
	if e.Announced {
		return fmt.Sprintf("GET %s: the server announces %d bytes, more than the maximum of %d bytes for this artifact", e.URL, e.Got, e.Max)
	}
	return fmt.Sprintf("GET %s: more than the maximum of %d bytes for this artifact: download stopped", e.URL, e.Max)
}

// DeadlineError is a download that did not finish within Downloader.Deadline.
type DeadlineError struct {
	URL      string
	Deadline time.Duration
}

func (e *DeadlineError) Error() string {
	return fmt.Sprintf("GET %s: not finished after %s (the overall deadline of a download): giving up", e.URL, e.Deadline)
}

var errDeadline = errors.New("download deadline")

type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

// FileSHA256 returns the hex sha256 of host file path.
func FileSHA256(path string) (string, error) { return RootFileSHA256(fsroot.Host, path) }

// RootFileSHA256 returns the hex sha256 of node file p under root.
func RootFileSHA256(root fsroot.Root, p string) (string, error) {
	f, err := root.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	if _, err := io.CopyBuffer(h, f, *bp); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Redact returns u without user info, for logs and errors.
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Redacted()
}

// MaxChecksumBytes bounds a checksum file: more is refused, never cut (a cut
// file could lose the entry naming the artifact).
const MaxChecksumBytes = 4096

// SumURL is where req's checksum file is: ChecksumURL, or URL+".sha256".
func (r Request) SumURL() string {
	if r.ChecksumURL != "" {
		return r.ChecksumURL
	}
	return r.URL + ".sha256"
}

// Checksum returns req's expected sha256: the pinned one, or the entry for the
// artifact's file in the checksum file at req.SumURL().
func (d *Downloader) Checksum(ctx context.Context, req Request) (string, error) {
	if req.SHA256 != "" {
		return strings.ToLower(req.SHA256), nil
	}
	sumURL := req.SumURL()
	var body []byte
	err := d.retry(ctx, sumURL, func(ctx context.Context) error {
		rc, _, err := d.open(ctx, Request{URL: sumURL, Root: req.Root, SourceInRoot: req.SourceInRoot})
		if err != nil {
			return err
		}
		defer rc.Close()
		body, err = io.ReadAll(io.LimitReader(rc, MaxChecksumBytes+1))
		if err != nil {
			return transientError{err}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("fetch checksum: %w", err)
	}
	if len(body) > MaxChecksumBytes {
		return "", fmt.Errorf("%s: more than %d bytes: not a checksum file", Redact(sumURL), MaxChecksumBytes)
	}
	return ParseChecksumFor(body, Redact(sumURL), artifactName(req.URL))
}

// artifactName is the file name a URL's path ends with.
func artifactName(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return path.Base(u.Path)
}

// ParseChecksum reads a .sha256 file of a single entry: "HASH" or "HASH  FILENAME".
func ParseChecksum(body []byte, from string) (string, error) { return ParseChecksumFor(body, from, "") }

// ParseChecksumFor reads a checksum file ("HASH", or lines "HASH  FILENAME" as
// sha256sum writes them, "*" for binary mode allowed). A file of one entry
// gives that entry's hash. A file of several entries gives the hash of the
// entry whose file name (its base name) is name; none or two different ones
// are refused, naming the file: the first line is never taken blindly.
func ParseChecksumFor(body []byte, from, name string) (string, error) {
	type entry struct{ sum, file string }
	var entries []entry
	for _, line := range strings.Split(string(body), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		sum := strings.ToLower(fields[0])
		if len(sum) != 64 {
			return "", fmt.Errorf("%s: expected 64 hex digits (\"HASH\" or \"HASH  FILENAME\"), got %q", from, tail(fields[0], 80))
		}
		if _, err := hex.DecodeString(sum); err != nil {
			return "", fmt.Errorf("%s: expected 64 hex digits, got %q", from, tail(fields[0], 80))
		}
		file := ""
		if len(fields) > 1 {
			file = path.Base(strings.TrimPrefix(strings.Join(fields[1:], " "), "*"))
		}
		entries = append(entries, entry{sum, file})
	}
	switch {
	case len(entries) == 0:
		return "", fmt.Errorf("%s: empty checksum file", from)
	case len(entries) == 1:
		return entries[0].sum, nil
	}
	found := ""
	var names []string
	for _, e := range entries {
		names = append(names, e.file)
		if name == "" || e.file != name {
			continue
		}
		if found != "" && found != e.sum {
			return "", fmt.Errorf("%s: two different hashes for %s", from, name)
		}
		found = e.sum
	}
	if found == "" {
		return "", fmt.Errorf("%s: %d entries and none for %q (entries: %s): refusing to guess", from, len(entries), name, tail(strings.Join(names, ", "), 200))
	}
	return found, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// Fetch makes req.Dest hold the artifact at req.URL with the expected hash.
func (d *Downloader) Fetch(ctx context.Context, req Request) (Result, error) {
	want, err := d.Checksum(ctx, req)
	if err != nil {
		return Result{}, err
	}
	mode := orDefault(req.Mode, 0o644)
	if fi, err := req.Root.Lstat(req.Dest); err == nil && fi.Mode().IsRegular() {
		if have, err := RootFileSHA256(req.Root, req.Dest); err == nil && have == want {
			if fi.Mode().Perm() != mode.Perm() {
				if err := req.Root.Chmod(req.Dest, mode); err != nil {
					return Result{}, err
				}
			}
			return Result{SHA256: want}, nil
		}
	}
	deadline := orDefault(d.Deadline, DefaultDeadline)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(deadline, func() { cancel(errDeadline) })
	defer timer.Stop()
	var n int64
	err = d.retry(ctx, req.URL, func(ctx context.Context) error {
		var err error
		n, err = d.fetchOnce(ctx, req, want, mode)
		return err
	})
	if err != nil && context.Cause(ctx) == errDeadline {
		return Result{}, &DeadlineError{URL: Redact(req.URL), Deadline: deadline}
	}
	if err != nil {
		return Result{}, err
	}
	return Result{Downloaded: true, SHA256: want, Bytes: n}, nil
}

// FetchAll fetches independent requests in parallel; the first error cancels the rest.
func (d *Downloader) FetchAll(ctx context.Context, reqs []Request) ([]Result, error) {
	out := make([]Result, len(reqs))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(orDefault(d.Parallel, 4))
	for i, r := range reqs {
		g.Go(func() error {
			res, err := d.Fetch(ctx, r)
			out[i] = res
			return err
		})
	}
	return out, g.Wait()
}

func (d *Downloader) retry(ctx context.Context, u string, fn func(ctx context.Context) error) error {
	attempts := orDefault(d.Attempts, 5)
	delay := orDefault(d.BaseDelay, 500*time.Millisecond)
	maxDelay := orDefault(d.MaxDelay, 8*time.Second)
	var err error
	for i := 1; ; i++ {
		err = fn(ctx)
		if err == nil {
			return nil
		}
		var te transientError
		if !errors.As(err, &te) || ctx.Err() != nil {
			return err
		}
		if i >= attempts {
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempts)
		}
		d.log().Warn("download failed, retrying", "url", Redact(u), "attempt", i, "error", err, "backoff", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(delay*2, maxDelay)
	}
}

// open starts a GET (or opens a file:// URL) and returns the body and its length (-1 if unknown).
func (d *Downloader) open(ctx context.Context, r Request) (io.ReadCloser, int64, error) {
	rawURL := r.URL
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, 0, fmt.Errorf("bad URL %q: %w", Redact(rawURL), err)
	}
	if u.Scheme == "file" {
		src := fsroot.Host
		if r.SourceInRoot {
			src = r.Root
		}
		f, err := src.Open(u.Path)
		if err != nil {
			return nil, 0, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, err
		}
		return f, fi.Size(), nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := d.noDowngrade().Do(req)
	var de *DowngradeError
	if errors.As(err, &de) {
		return nil, 0, de
	}
	if err != nil {
		if ctx.Err() != nil && context.Cause(ctx) != errStalled {
			return nil, 0, err
		}
		return nil, 0, transientError{fmt.Errorf("GET %s: %w", Redact(rawURL), stripURL(err))}
	}
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		se := &StatusError{URL: Redact(rawURL), Code: resp.StatusCode}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return nil, 0, transientError{se}
		}
		return nil, 0, se
	}
	return resp.Body, resp.ContentLength, nil
}

// noDowngrade is the client with a redirect policy that refuses https -> http
// (as curl --proto-redir =https does) on top of the client's own.
func (d *Downloader) noDowngrade() *http.Client {
	c := *d.client()
	prev := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if from := via[len(via)-1].URL; from.Scheme == "https" && req.URL.Scheme != "https" {
			return &DowngradeError{From: noUser(from), To: noUser(req.URL)}
		}
		if prev != nil {
			return prev(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

// noUser is u without any user info, for errors.
func noUser(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// stripURL unwraps a *url.Error, whose message repeats the (maybe credentialed) URL.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

var errStalled = errors.New("download stalled")

func (d *Downloader) fetchOnce(ctx context.Context, req Request, want string, mode fs.FileMode) (int64, error) {
	rawURL, dest := req.URL, req.Dest
	limit := orDefault(req.MaxBytes, orDefault(d.MaxBytes, DefaultMaxBytes))
	stall := orDefault(d.StallTimeout, 30*time.Second)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer watchdog.Stop()

	body, size, err := d.open(ctx, req)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	if size > limit {
		return 0, &TooLargeError{URL: Redact(rawURL), Max: limit, Got: size, Announced: true}
	}
	// Not executable until verified: a binary that fails its sha256 is never
	// runnable, not even as the temp file a crash would leave.
	f, err := req.Root.CreateTemp(dest, mode&^0o111)
	if err != nil {
		return 0, err
	}
	defer f.Abort() // a no-op after Commit
	h := sha256.New()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var n int64
	start := time.Now()
	every := orDefault(d.ProgressEvery, 5*time.Second)
	next := start.Add(every)
	for {
		m, rerr := body.Read(buf)
		if n+int64(m) > limit {
			return n, &TooLargeError{URL: Redact(rawURL), Max: limit}
		}
		if m > 0 {
			watchdog.Reset(stall)
			h.Write(buf[:m])
			if _, err := f.Write(buf[:m]); err != nil {
				return n, fmt.Errorf("write %s: %w", dest, err)
			}
			n += int64(m)
			faultinject.Point("download: mid-body " + dest)
			if now := time.Now(); now.After(next) {
				next = now.Add(every)
				rate := float64(n) / now.Sub(start).Seconds()
				d.log().Info("download progress", "url", Redact(rawURL), "bytes", n, "total", size, "rateMiBps", fmt.Sprintf("%.1f", rate/(1<<20)))
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if context.Cause(ctx) == errDeadline {
				return n, errDeadline
			}
			if context.Cause(ctx) == errStalled {
				return n, transientError{fmt.Errorf("GET %s: no data for %s after %d bytes: %w", Redact(rawURL), stall, n, errStalled)}
			}
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			return n, transientError{fmt.Errorf("GET %s: reading body after %d bytes: %w", Redact(rawURL), n, rerr)}
		}
	}
	if size >= 0 && n != size {
		return n, transientError{fmt.Errorf("GET %s: got %d of %d bytes: %w", Redact(rawURL), n, size, io.ErrUnexpectedEOF)}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return n, &MismatchError{URL: Redact(rawURL), Expected: want, Actual: got}
	}
	if mode&0o111 != 0 {
		if err := f.File.Chmod(mode.Perm()); err != nil {
			return n, fmt.Errorf("chmod %s: %w", dest, err)
		}
	}
	if err := f.Commit(); err != nil {
		return n, err
	}
	if el := time.Since(start); el > every {
		d.log().Info("download finished", "url", Redact(rawURL), "bytes", n, "rateMiBps", fmt.Sprintf("%.1f", float64(n)/el.Seconds()/(1<<20)))
	}
	return n, nil
}
