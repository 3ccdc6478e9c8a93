package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provision-dev/provision/internal/faultinject"
	"github.com/provision-dev/provision/internal/testutil"
)

// entry is one path of a root's final state.
type entry struct {
	Kind string // file, dir, link
	Mode fs.FileMode
	Sum  string // file: sha256 (normalised for status files); link: target
	Size int64
}

var tempRE = regexp.MustCompile(`\.provision-[0-9-]+\.(tmp|lnk)$`)

// snapshot walks root: every file, directory and symlink with mode and hash.
// status.json and base-done hold timestamps and per-run results: they are
// reduced to what must converge (phase result, task list, marker fields).
func snapshot(t *testing.T, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := entry{Mode: fi.Mode().Perm(), Size: fi.Size()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Kind = "link"
			e.Sum, _ = os.Readlink(p)
			e.Mode, e.Size = 0, 0
		case fi.IsDir():
			e.Kind, e.Size = "dir", 0
		default:
			e.Kind = "file"
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.Sum = normalise(rel, data)
			if e.Sum != testutil.SHA256(data) {
				e.Size = -1 // a normalised status file: its length varies with durations
			}
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func normalise(rel string, data []byte) string {
	switch rel {
	case "var/lib/provision/status.json":
		var st struct {
			Phases map[string]struct {
				Result string
				Tasks  []struct{ Name string }
			}
		}
		if json.Unmarshal(data, &st) != nil {
			return "corrupt status.json"
		}
		var b strings.Builder
		for p, ps := range st.Phases {
			fmt.Fprintf(&b, "%s=%s:", p, ps.Result)
			for _, t := range ps.Tasks {
				b.WriteString(t.Name + ",")
			}
		}
		return b.String()
	case "var/lib/provision/base-done":
		var m map[string]any
		if json.Unmarshal(data, &m) != nil {
			return "corrupt base-done"
		}
		delete(m, "finished")
		b, _ := json.Marshal(m)
		return string(b)
	}
	return testutil.SHA256(data)
}

type nodeRun struct {
	killed bool
	point  string
	stderr string
	err    error
}

var killLine = regexp.MustCompile(`faultinject: kill at \d+ \((.*)\)`)

func runBase(t *testing.T, path, root string, killAt int) nodeRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, provisionBin, "node", "base", "--root", root)
	cmd.Env = []string{"PATH=" + path, "HOME=" + root, "LANG=C"}
	if killAt > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", faultinject.Env, killAt))
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// Its own process group: a kill takes its children with it, as systemd
	// does with the cgroup of a unit whose main process died (and as a power
	// cut does). A child left running (a package install started by a
	// concurrent task) would race the re-run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err := cmd.Run()
	if cmd.Process != nil {
		killGroup(t, cmd.Process.Pid)
	}
	r := nodeRun{stderr: stderr.String(), err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			r.killed = true
			if m := killLine.FindStringSubmatch(r.stderr); m != nil {
				r.point = m[1]
			}
		}
	}
	return r
}

// killGroup SIGKILLs what is left of process group pgid (the group of a
// process this test started) and waits until none of it runs.
func killGroup(t *testing.T, pgid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := syscall.Kill(-pgid, syscall.SIGKILL); errors.Is(err, syscall.ESRCH) {
			return
		}
		if !groupRunning(pgid) { // only zombies left, waiting for their reaper
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still running 10s after SIGKILL", pgid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// groupRunning reports whether a non-zombie process of group pgid exists.
func groupRunning(pgid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		fs := strings.Fields(string(b[i+1:]))
		if len(fs) >= 3 && fs[0] != "Z" && fs[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

// category turns a kill point's name into its kind, without the path.
func category(point string) string {
	f := strings.Fields(point)
	switch {
	case len(f) == 0:
		return "unknown"
	case f[0] == "task:":
		return "task boundary"
	case f[0] == "download:":
		return "download mid-body"
	}
	var words []string
	for _, w := range f {
		if strings.HasPrefix(w, "/") {
			break
		}
		words = append(words, w)
	}
	return strings.Join(words, " ")
}

// TestKillAtEveryPointConverges runs `provision node base --root` (stub package
// manager and systemctl, artifacts from a loopback server) killed with SIGKILL
// at kill point N, for N = 1, 2, ... until a run completes without reaching N.
// After each kill: no file at a final path is partial (each is absent, the
// seed's or the final one). Then an unkilled re-run must succeed and leave the
// same state as an uninterrupted run: same files, modes, sha256s, symlinks and
// enabled-unit links, no empty or truncated file, no temp file.
func TestKillAtEveryPointConverges(t *testing.T) {
	art := newArtifacts(t)
	cfg := art.nodeConfig()
	path := stubPath(t)
	work := t.TempDir()

	fresh := func(name string) string {
		dir := filepath.Join(work, name)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		seedRoot(t, dir, cfg)
		return dir
	}
	seed := snapshot(t, fresh("seed"))
	refRoot := fresh("ref")
	if r := runBase(t, path, refRoot, 0); r.err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", r.err, r.stderr)
	}
	ref := snapshot(t, refRoot)
	for rel, e := range ref {
		if e.Kind == "file" && e.Size == 0 { // (normalised files have size -1)
			t.Fatalf("the uninterrupted run left an empty file %s", rel)
		}
		if tempRE.MatchString(rel) {
			t.Fatalf("the uninterrupted run left a temp file %s", rel)
		}
	}
	if _, ok := ref["etc/systemd/system/timers.target.wants/provision-health-kubelet.timer"]; !ok {
		t.Fatalf("reference run enabled no health timer: stubs broken? %v", keys(ref, "wants"))
	}

	start := time.Now()
	tried, converged := 0, 0
	kinds := map[string]int{}
	for n := 1; ; n++ {
		if n > 2000 {
			t.Fatal("more than 2000 kill points: the loop does not end")
		}
		root := fresh("run")
		r := runBase(t, path, root, n)
		if !r.killed {
			if r.err != nil {
				t.Fatalf("kill point %d not reached, but the run failed: %v\n%s", n, r.err, r.stderr)
			}
			if got := snapshot(t, root); !same(t, fmt.Sprintf("run with %d unreached", n), got, ref) {
				t.FailNow()
			}
			break
		}
		tried++
		kinds[category(r.point)]++
		// Right after the kill: nothing at a final path is partial.
		for rel, e := range snapshot(t, root) {
			if e.Kind != "file" || tempRE.MatchString(rel) || rel == "var/lib/stub-dpkg/installed" || rel == "run/provision/node.lock" {
				continue
			}
			want, inRef := ref[rel]
			old, inSeed := seed[rel]
			if !(inRef && want.Sum == e.Sum) && !(inSeed && old.Sum == e.Sum) {
				t.Errorf("kill at %d (%s): %s is neither its old nor its final content (%d bytes)", n, r.point, rel, e.Size)
			}
		}
		r2 := runBase(t, path, root, 0)
		if r2.err != nil {
			t.Errorf("kill at %d (%s): re-run failed: %v\n%s", n, r.point, r2.err, r2.stderr)
			continue
		}
		if same(t, fmt.Sprintf("kill at %d (%s), re-run", n, r.point), snapshot(t, root), ref) {
			converged++
		}
	}
	var ks []string
	for k, v := range kinds {
		ks = append(ks, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(ks)
	t.Logf("kill points tried %d, converged %d, in %s: %s", tried, converged, time.Since(start).Round(time.Second), strings.Join(ks, ", "))
	if tried < 100 {
		t.Errorf("only %d kill points: want at least 100", tried)
	}
	if converged != tried {
		t.Errorf("%d of %d kill points did not converge", tried-converged, tried)
	}
}

func keys(m map[string]entry, sub string) []string {
	var out []string
	for k := range m {
		if strings.Contains(k, sub) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// same reports (as test errors) every difference between got and want.
func same(t *testing.T, what string, got, want map[string]entry) bool {
	t.Helper()
	ok := true
	for rel, w := range want {
		g, found := got[rel]
		switch {
		case !found:
			t.Errorf("%s: %s missing", what, rel)
			ok = false
		case g != w:
			t.Errorf("%s: %s differs: got %+v, want %+v", what, rel, g, w)
			ok = false
		}
	}
	for rel, g := range got {
		if _, found := want[rel]; !found {
			t.Errorf("%s: unexpected %s %s (%d bytes)", what, g.Kind, rel, g.Size)
			ok = false
		}
	}
	return ok
}
