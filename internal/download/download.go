// Package download is the one downloader for every node artifact.
//
// A download streams into a temp file in the target directory while hashing with
// sha256, is fsynced, and is renamed over the target only when the hash matches.
// A mismatch names the URL, the expected and the actual hash and leaves no file.
// Transient failures (5xx, timeouts, stalls, connection resets, cut bodies) are
// retried with capped exponential backoff; 4xx and mismatches are not. A target
// that already has the expected hash is not downloaded again. The checksum comes
// from the request or from URL+".sha256"; it is never skipped. Memory stays
// bounded: bytes go through one fixed buffer per download.
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
	"os"
	"path/filepath"
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
	// SHA256 is the expected hash (64 hex digits); empty means fetch URL+".sha256".
	SHA256 string
	// Dest is the host path of the target file.
	Dest string
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
	Log      *slog.Logger
}

const bufSize = 256 << 10

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

type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

// FileSHA256 returns the hex sha256 of host file path.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
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

// Checksum returns req's expected sha256: the pinned one, or the one published at URL+".sha256".
func (d *Downloader) Checksum(ctx context.Context, req Request) (string, error) {
	if req.SHA256 != "" {
		return strings.ToLower(req.SHA256), nil
	}
	var body []byte
	err := d.retry(ctx, req.URL+".sha256", func(ctx context.Context) error {
		rc, _, err := d.open(ctx, req.URL+".sha256")
		if err != nil {
			return err
		}
		defer rc.Close()
		body, err = io.ReadAll(io.LimitReader(rc, 4096))
		if err != nil {
			return transientError{err}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("fetch checksum: %w", err)
	}
	return ParseChecksum(body, Redact(req.URL)+".sha256")
}

// ParseChecksum reads a .sha256 file: "HASH" or "HASH  FILENAME" on its first line.
func ParseChecksum(body []byte, from string) (string, error) {
	fields := strings.Fields(string(body))
	if len(fields) == 0 {
		return "", fmt.Errorf("%s: empty checksum file", from)
	}
	sum := strings.ToLower(fields[0])
	if len(sum) != 64 {
		return "", fmt.Errorf("%s: expected 64 hex digits (\"HASH\" or \"HASH  FILENAME\"), got %q", from, tail(fields[0], 80))
	}
	if _, err := hex.DecodeString(sum); err != nil {
		return "", fmt.Errorf("%s: expected 64 hex digits, got %q", from, tail(fields[0], 80))
	}
	return sum, nil
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
	if have, err := FileSHA256(req.Dest); err == nil && have == want {
		if fi, err := os.Stat(req.Dest); err == nil && fi.Mode().Perm() != mode.Perm() {
			if err := os.Chmod(req.Dest, mode.Perm()); err != nil {
				return Result{}, err
			}
		}
		return Result{SHA256: want}, nil
	}
	var n int64
	err = d.retry(ctx, req.URL, func(ctx context.Context) error {
		var err error
		n, err = d.fetchOnce(ctx, req.URL, want, req.Dest, mode)
		return err
	})
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
func (d *Downloader) open(ctx context.Context, rawURL string) (io.ReadCloser, int64, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, 0, fmt.Errorf("bad URL %q: %w", Redact(rawURL), err)
	}
	if u.Scheme == "file" {
		f, err := os.Open(u.Path)
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
	resp, err := d.client().Do(req)
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

// stripURL unwraps a *url.Error, whose message repeats the (maybe credentialed) URL.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

var errStalled = errors.New("download stalled")

func (d *Downloader) fetchOnce(ctx context.Context, rawURL, want, dest string, mode fs.FileMode) (int64, error) {
	stall := orDefault(d.StallTimeout, 30*time.Second)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer watchdog.Stop()

	body, size, err := d.open(ctx, rawURL)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	f, err := fsroot.CreateTemp(filepath.Dir(dest), filepath.Base(dest), mode)
	if err != nil {
		return 0, err
	}
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(f.Name())
		}
	}()
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
	committed = true
	if err := fsroot.Commit(f, dest); err != nil {
		return n, err
	}
	if el := time.Since(start); el > every {
		d.log().Info("download finished", "url", Redact(rawURL), "bytes", n, "rateMiBps", fmt.Sprintf("%.1f", float64(n)/el.Seconds()/(1<<20)))
	}
	return n, nil
}
