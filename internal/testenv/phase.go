package testenv

import (
	"testing"
	"time"
)

// Phase logs the duration of one phase of a test when the returned function is
// called: defer testenv.Phase(t, "boot")().
func Phase(t testing.TB, name string) func() time.Duration {
	t.Helper()
	start := time.Now()
	return func() time.Duration {
		t.Helper()
		d := time.Since(start)
		t.Logf("phase %s: %v", name, d.Round(time.Millisecond))
		return d
	}
}
