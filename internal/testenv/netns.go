package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Addresses inside every test network namespace. They exist only inside the
// namespace the test creates, so the same ones are reused by every test.
const (
	// NodeAddr is the node's address (the booted root's non-loopback IP).
	NodeAddr = "10.213.0.1"
	// ServerAddr is the other end of the veth pair, where the test's servers listen.
	ServerAddr = "10.213.0.2"
	// DeadNameserver is the roots' nameserver: an address in the namespace
	// where nothing listens on port 53, so lookups fail at once.
	DeadNameserver = ServerAddr
	prefixLen      = "/24"
)

var netnsSeq atomic.Int64

// netnsPrefix starts the names of the harness's namespaces: provtest-PID-N.
const netnsPrefix = "provtest-"

// deleteStaleNetNS deletes the namespaces left by harness processes that died
// without their cleanups (their PID no longer exists). No other namespace is touched.
func deleteStaleNetNS(ctx context.Context, t testing.TB) {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), netnsPrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue
		}
		if _, err := run(ctx, "", nil, "ip", "netns", "delete", e.Name()); err != nil {
			t.Logf("delete stale netns %s: %v", e.Name(), err)
		} else {
			t.Logf("deleted stale netns %s", e.Name())
		}
	}
}

// NetNS is a network namespace created by the test: loopback up, a veth pair
// with both ends inside (NodeAddr, ServerAddr), a default route over it. The
// host's own network is never touched. It is deleted at cleanup.
type NetNS struct {
	Name string
	// Path is /run/netns/Name, for systemd-nspawn --network-namespace-path and setns.
	Path string
}

// NewNetNS creates a uniquely named network namespace.
func NewNetNS(t testing.TB) *NetNS {
	t.Helper()
	Require(t)
	done := Phase(t, "netns")
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	deleteStaleNetNS(ctx, t)
	name := fmt.Sprintf("%s%d-%d", netnsPrefix, os.Getpid(), netnsSeq.Add(1))
	if _, err := run(ctx, "", nil, "ip", "netns", "add", name); err != nil {
		t.Fatalf("netns: %v", err)
	}
	ns := &NetNS{Name: name, Path: filepath.Join("/run/netns", name)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := run(ctx, "", nil, "ip", "netns", "delete", name); err != nil {
			t.Errorf("delete netns: %v", err)
		}
	})
	for _, argv := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "node0", "type", "veth", "peer", "name", "server0"},
		{"addr", "add", NodeAddr + prefixLen, "dev", "node0"},
		{"addr", "add", ServerAddr + prefixLen, "dev", "server0"},
		{"link", "set", "node0", "up"},
		{"link", "set", "server0", "up"},
		{"route", "add", "default", "via", ServerAddr, "dev", "node0"},
	} {
		if _, err := run(ctx, "", nil, append([]string{"ip", "-n", name}, argv...)...); err != nil {
			t.Fatalf("netns %s: %v", name, err)
		}
	}
	return ns
}
