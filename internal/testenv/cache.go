package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DefaultCacheDir holds the harness's caches unless $PROVISION_TEST_CACHE says otherwise.
const DefaultCacheDir = "/var/cache/provision-test"

// CacheDir returns the cache directory, creating it.
func CacheDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("PROVISION_TEST_CACHE")
	if dir == "" {
		dir = DefaultCacheDir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("cache dir: %v", err)
	}
	return dir
}

// cacheKey hashes the inputs of a cached item into a short stable key.
func cacheKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// cached returns the directory <cache>/<kind>/<key>, building it with build
// into a temporary directory first if it does not exist. Builds of the same item
// by concurrent test processes are serialised by a lock file; a failed build
// leaves nothing behind.
func cached(t testing.TB, kind, key string, build func(dir string) error) string {
	t.Helper()
	base := filepath.Join(CacheDir(t), kind)
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatalf("cache: %v", err)
	}
	final := filepath.Join(base, key)
	if _, err := os.Stat(final); err == nil {
		t.Logf("cache hit: %s", final)
		return final
	}
	unlock := lockFile(t, final+".lock")
	defer unlock()
	if _, err := os.Stat(final); err == nil {
		return final
	}
	tmp, err := os.MkdirTemp(base, ".build-"+key+"-")
	if err != nil {
		t.Fatalf("cache: %v", err)
	}
	done := Phase(t, "build cache "+kind+"/"+key)
	if err := build(tmp); err != nil {
		removeBuild(t, tmp)
		t.Fatalf("build %s/%s: %v", kind, key, err)
	}
	done()
	if err := os.Chmod(tmp, 0o755); err != nil {
		removeBuild(t, tmp)
		t.Fatalf("cache: %v", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		removeBuild(t, tmp)
		t.Fatalf("cache: %v", err)
	}
	return final
}

// removeBuild removes a failed build's directory, refusing anything outside the cache.
func removeBuild(t testing.TB, dir string) {
	if !strings.Contains(filepath.Base(dir), ".build-") {
		t.Errorf("refusing to remove %s", dir)
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("remove failed build %s: %v", dir, err)
	}
}

// lockFile takes an exclusive flock on path, waiting for it; the returned
// function releases it.
func lockFile(t testing.TB, path string) func() {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("lock %s: %v", path, err)
	}
	start := time.Now()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("lock %s: %v", path, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Logf("waited %v for %s", d.Round(time.Millisecond), path)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}
