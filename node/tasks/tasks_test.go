package tasks

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/internal/download"
	"github.com/provision-dev/provision/internal/fsroot"
	"github.com/provision-dev/provision/internal/logging"
	"github.com/provision-dev/provision/internal/runner"
	"github.com/provision-dev/provision/internal/testutil"
	"github.com/provision-dev/provision/osprofiles"
)

func newEnv(t *testing.T, profile string, live bool, fake *runner.Fake) *Env {
	t.Helper()
	root, _ := fsroot.New(t.TempDir())
	p, err := osprofiles.Get(profile)
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Root: root, Runner: fake, Profile: p, Live: live, Log: logging.Discard(),
		Downloader: &download.Downloader{Attempts: 2, BaseDelay: time.Millisecond}}
}

func write(t *testing.T, e *Env, p, content string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(e.Root.Path(p)), 0o755)
	if err := os.WriteFile(e.Root.Path(p), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTasksConverge runs each task twice on a temp root with a fake runner:
// the first run changes, the second does not.
func TestTasksConverge(t *testing.T) {
	type tc struct {
		name   string
		task   func(e *Env) Task
		setup  func(t *testing.T, e *Env, f *runner.Fake)
		second Result
		check  func(t *testing.T, e *Env, f *runner.Fake)
	}
	payload := []byte("binary")
	sum := sha256.Sum256(payload)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(payload) }))
	defer srv.Close()
	cases := []tc{
		{name: "file", second: Unchanged, task: func(*Env) Task {
			return &File{TaskName: "f", Path: "/etc/a/b.conf", Content: []byte("x=1\n")}
		}},
		{name: "secret file is 0600", second: Unchanged, task: func(*Env) Task {
			return &File{TaskName: "f", Path: "/etc/kubernetes/bootstrap.conf", Content: []byte("token"), Secret: true}
		}, check: func(t *testing.T, e *Env, _ *runner.Fake) {
			fi, _ := os.Stat(e.Root.Path("/etc/kubernetes/bootstrap.conf"))
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v", fi.Mode())
			}
		}},
		{name: "file mode only", second: Unchanged, task: func(*Env) Task {
			return &File{TaskName: "f", Path: "/etc/x", Content: []byte("same"), Mode: 0o600}
		}, setup: func(t *testing.T, e *Env, _ *runner.Fake) { write(t, e, "/etc/x", "same") }},
		{name: "symlink", second: Unchanged, task: func(*Env) Task {
			return &Symlink{TaskName: "s", Path: "/etc/systemd/system/swap.target", Target: "/dev/null"}
		}},
		{name: "fstab", second: Unchanged, task: func(*Env) Task {
			return &EditFile{TaskName: "e", Path: "/etc/fstab", Edit: CommentSwap, What: "comment out swap"}
		}, setup: func(t *testing.T, e *Env, _ *runner.Fake) {
			write(t, e, "/etc/fstab", "/dev/sda1 / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n")
		}, check: func(t *testing.T, e *Env, _ *runner.Fake) {
			b, _ := e.Root.ReadFile("/etc/fstab")
			if !strings.Contains(string(b), "# disabled by provision") || !strings.Contains(string(b), "/dev/sda1 / ext4") {
				t.Errorf("fstab:\n%s", b)
			}
		}},
		{name: "disable other sources", second: Unchanged, task: func(*Env) Task {
			return &DisableOthers{TaskName: "d", Dir: "/etc/apt/sources.list.d", Suffixes: []string{".list", ".sources"}, Keep: "provision.sources", Extra: []string{"/etc/apt/sources.list"}}
		}, setup: func(t *testing.T, e *Env, _ *runner.Fake) {
			write(t, e, "/etc/apt/sources.list", "deb http://deb.debian.org/debian bookworm main\n")
			write(t, e, "/etc/apt/sources.list.d/debian.sources", "x")
			write(t, e, "/etc/apt/sources.list.d/provision.sources", "y")
		}, check: func(t *testing.T, e *Env, _ *runner.Fake) {
			if !e.Root.Exists("/etc/apt/sources.list.d/provision.sources") || e.Root.Exists("/etc/apt/sources.list") ||
				!e.Root.Exists("/etc/apt/sources.list.d/debian.sources.disabled-by-provision") {
				t.Errorf("sources not disabled as expected")
			}
		}},
		{name: "sysctl apply", second: Unchanged, task: func(*Env) Task {
			return &SysctlApply{TaskName: "s", File: "/etc/sysctl.d/k.conf", Values: map[string]string{"net.ipv4.ip_forward": "1"}}
		}, setup: func(t *testing.T, e *Env, f *runner.Fake) {
			write(t, e, "/proc/sys/net/ipv4/ip_forward", "0\n")
			f.OnFunc([]string{"sysctl"}, func(runner.Cmd) runner.Result {
				os.WriteFile(e.Root.Path("/proc/sys/net/ipv4/ip_forward"), []byte("1\n"), 0o644)
				return runner.Result{}
			})
		}},
		{name: "modprobe", second: Unchanged, task: func(*Env) Task { return &Modprobe{TaskName: "m", Modules: []string{"overlay", "br_netfilter"}} },
			setup: func(t *testing.T, e *Env, f *runner.Fake) {
				os.MkdirAll(e.Root.Path("/sys/module/overlay"), 0o755)
				f.OnFunc([]string{"modprobe"}, func(c runner.Cmd) runner.Result {
					os.MkdirAll(e.Root.Path("/sys/module/"+c.Argv[1]), 0o755)
					return runner.Result{}
				})
			}, check: func(t *testing.T, _ *Env, f *runner.Fake) {
				if c := strings.Join(f.Calls(), ";"); c != "modprobe br_netfilter" {
					t.Errorf("calls = %q, want only the missing module loaded", c)
				}
			}},
		{name: "swapoff", second: Unchanged, task: func(*Env) Task { return &SwapOff{TaskName: "s"} },
			setup: func(t *testing.T, e *Env, f *runner.Fake) {
				write(t, e, "/proc/swaps", "Filename Type Size Used Priority\n/swap.img file 100 0 -2\n")
				f.OnFunc([]string{"swapoff"}, func(runner.Cmd) runner.Result {
					os.WriteFile(e.Root.Path("/proc/swaps"), []byte("Filename Type Size Used Priority\n"), 0o644)
					return runner.Result{}
				})
			}},
		{name: "apt after an interrupted dpkg run", second: Unchanged, task: func(*Env) Task { return &Packages{TaskName: "p", Names: []string{"conntrack"}} },
			setup: func(t *testing.T, e *Env, f *runner.Fake) {
				// A power cut during an install leaves dpkg's journal behind.
				write(t, e, "/var/lib/dpkg/updates/0001", "Package: conntrack\n")
				var mu sync.Mutex
				installed := false
				f.OnFunc([]string{"dpkg-query"}, func(runner.Cmd) runner.Result {
					mu.Lock()
					defer mu.Unlock()
					if installed {
						return runner.Result{Stdout: []byte("conntrack\tii \n")}
					}
					return runner.Result{Stdout: []byte("conntrack\tiU \n")} // unpacked, not configured
				})
				f.OnFunc([]string{"dpkg", "--force-confdef"}, func(runner.Cmd) runner.Result {
					os.Remove(e.Root.Path("/var/lib/dpkg/updates/0001"))
					return runner.Result{}
				})
				f.OnFunc([]string{"apt-get"}, func(c runner.Cmd) runner.Result {
					mu.Lock()
					defer mu.Unlock()
					if _, err := os.Stat(e.Root.Path("/var/lib/dpkg/updates/0001")); err == nil {
						return runner.Result{ExitCode: 100, Stderr: []byte("E: dpkg was interrupted, you must manually run 'dpkg --configure -a'")}
					}
					if c.Argv[len(c.Argv)-1] == "conntrack" {
						installed = true
					}
					return runner.Result{}
				})
			}, check: func(t *testing.T, _ *Env, f *runner.Fake) {
				calls := f.Calls()
				if len(calls) < 3 || !strings.Contains(strings.Join(calls, "\n"), "dpkg --force-confdef --force-confold --configure -a") {
					t.Fatalf("interrupted dpkg run not recovered before apt:\n%s", strings.Join(calls, "\n"))
				}
			}},
		{name: "apt packages", second: Unchanged, task: func(*Env) Task { return &Packages{TaskName: "p", Names: []string{"socat", "conntrack"}} },
			setup: func(t *testing.T, e *Env, f *runner.Fake) {
				var mu sync.Mutex
				installed := map[string]bool{"socat": true}
				f.OnFunc([]string{"dpkg-query"}, func(c runner.Cmd) runner.Result {
					mu.Lock()
					defer mu.Unlock()
					var out string
					for _, p := range c.Argv[len(c.Argv)-2:] {
						if installed[p] {
							out += p + "\tii \n"
						}
					}
					return runner.Result{Stdout: []byte(out), ExitCode: map[bool]int{true: 0, false: 1}[installed["conntrack"]]}
				})
				f.OnFunc([]string{"apt-get"}, func(c runner.Cmd) runner.Result {
					mu.Lock()
					defer mu.Unlock()
					if c.Argv[len(c.Argv)-1] == "conntrack" {
						installed["conntrack"] = true
					}
					return runner.Result{}
				})
			}, check: func(t *testing.T, _ *Env, f *runner.Fake) {
				calls := strings.Join(f.Calls(), "\n")
				if !strings.Contains(calls, "--no-install-recommends install conntrack") || strings.Contains(calls, "install socat") {
					t.Errorf("apt must install only the missing package:\n%s", calls)
				}
			}},
		{name: "download", second: Unchanged, task: func(*Env) Task {
			return &Download{TaskName: "d", Artifacts: []Artifact{{URL: srv.URL + "/kubelet", SHA256: hex.EncodeToString(sum[:]), Path: "/usr/local/bin/kubelet", Mode: 0o755}}}
		}},
		{name: "service live", second: Unchanged, task: func(*Env) Task { return &Service{TaskName: "s", Unit: "containerd.service", Start: true} },
			setup: func(t *testing.T, e *Env, f *runner.Fake) {
				state := map[string]bool{}
				var mu sync.Mutex
				f.OnFunc([]string{"systemctl"}, func(c runner.Cmd) runner.Result {
					mu.Lock()
					defer mu.Unlock()
					switch c.Argv[1] {
					case "is-enabled":
						if state["enabled"] {
							return runner.Result{Stdout: []byte("enabled\n")}
						}
						return runner.Result{Stdout: []byte("disabled\n"), ExitCode: 1}
					case "is-active":
						if !state["active"] {
							return runner.Result{ExitCode: 3}
						}
					case "enable":
						state["enabled"] = true
						state["active"] = state["active"] || c.Argv[2] == "--now"
					case "start":
						state["active"] = true
					}
					return runner.Result{}
				})
			}},
		{name: "require file", second: Unchanged, task: func(*Env) Task { return &RequireFile{TaskName: "r", Path: "/etc/x", Hint: "h"} },
			setup: func(t *testing.T, e *Env, _ *runner.Fake) { write(t, e, "/etc/x", "") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &runner.Fake{}
			e := newEnv(t, "debian-12", true, f)
			if c.setup != nil {
				c.setup(t, e, f)
			}
			task := c.task(e)
			ctx := context.Background()
			// dry first: reports the change, applies nothing
			if o, err := task.Run(ctx, e, true); err != nil || (o.Result != Changed && c.name != "require file") {
				t.Fatalf("dry run: %+v %v", o, err)
			}
			f.Reset()
			first, err := task.Run(ctx, e, false)
			if err != nil {
				t.Fatal(err)
			}
			if c.name != "require file" && first.Result != Changed {
				t.Fatalf("first run = %+v, want changed", first)
			}
			if c.check != nil {
				c.check(t, e, f)
			}
			second, err := task.Run(ctx, e, false)
			if err != nil {
				t.Fatal(err)
			}
			if second.Result != c.second {
				t.Errorf("second run = %+v, want %s", second, c.second)
			}
		})
	}
}

func TestKernelTasksSkippedInContainer(t *testing.T) {
	for _, task := range []Task{
		&SysctlApply{TaskName: "s", File: "/etc/sysctl.d/k.conf", Values: map[string]string{"net.ipv4.ip_forward": "1"}},
		&Modprobe{TaskName: "m", Modules: []string{"overlay"}},
		&SwapOff{TaskName: "w"},
	} {
		f := &runner.Fake{}
		e := newEnv(t, "debian-12", true, f)
		e.InContainer = true
		o, err := task.Run(context.Background(), e, false)
		if err != nil || o.Result != Skipped || !strings.Contains(o.Detail, "container") {
			t.Errorf("%s: %+v %v", task.Name(), o, err)
		}
		if len(f.Calls()) != 0 {
			t.Errorf("%s ran %v", task.Name(), f.Calls())
		}
	}
}

func TestDetectContainer(t *testing.T) {
	f := (&runner.Fake{}).On([]string{"systemd-detect-virt"}, "systemd-nspawn\n", 0)
	if in, virt := DetectContainer(context.Background(), newEnv(t, "debian-12", true, f)); !in || virt != "systemd-nspawn" {
		t.Errorf("got %v %q", in, virt)
	}
	f = (&runner.Fake{}).On([]string{"systemd-detect-virt"}, "none\n", 1)
	if in, _ := DetectContainer(context.Background(), newEnv(t, "debian-12", true, f)); in {
		t.Errorf("none detected as container")
	}
}

func TestExtract(t *testing.T) {
	e := newEnv(t, "debian-12", true, &runner.Fake{})
	archive := testutil.TarGz(t, map[string]string{"bin/containerd": "c", "bin/ctr": "ctr", "README": "r"})
	os.MkdirAll(e.Root.Path("/var/cache/provision"), 0o755)
	os.WriteFile(e.Root.Path("/var/cache/provision/c.tgz"), archive, 0o644)
	s := sha256.Sum256(archive)
	e.SetSum("/var/cache/provision/c.tgz", hex.EncodeToString(s[:]))
	x := &Extract{TaskName: "containerd/binaries", Archive: "/var/cache/provision/c.tgz", Dest: "/usr/local/bin", StripPrefix: "bin/"}
	o, err := x.Run(context.Background(), e, false)
	if err != nil || o.Result != Changed {
		t.Fatalf("%+v %v", o, err)
	}
	if b, _ := e.Root.ReadFile("/usr/local/bin/containerd"); string(b) != "c" {
		t.Errorf("containerd = %q", b)
	}
	if fi, _ := os.Stat(e.Root.Path("/usr/local/bin/ctr")); fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v", fi.Mode())
	}
	if o, _ := x.Run(context.Background(), e, false); o.Result != Unchanged {
		t.Errorf("second = %+v", o)
	}
	os.Remove(e.Root.Path("/usr/local/bin/ctr")) // a lost file is restored
	if o, _ := x.Run(context.Background(), e, false); o.Result != Changed {
		t.Errorf("after removal = %+v", o)
	}
	// a member escaping the destination is refused
	evil := testutil.TarGz(t, map[string]string{"../../etc/passwd": "x"})
	os.WriteFile(e.Root.Path("/var/cache/provision/evil.tgz"), evil, 0o644)
	e.SetSum("/var/cache/provision/evil.tgz", "x")
	if _, err := (&Extract{TaskName: "evil", Archive: "/var/cache/provision/evil.tgz", Dest: "/opt/cni/bin"}).Run(context.Background(), e, false); err != nil {
		// path.Clean("/"+name) confines it under Dest: it lands as /opt/cni/bin/etc/passwd
		t.Logf("evil: %v", err)
	}
	if e.Root.Exists("/etc/passwd") {
		t.Errorf("archive member escaped the destination")
	}
}

func TestWaitHTTP(t *testing.T) {
	var n int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if n++; n < 3 {
			http.Error(w, "starting", 500)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	e := newEnv(t, "debian-12", true, &runner.Fake{})
	w := &WaitHTTP{TaskName: "kubelet/healthz", URL: srv.URL, Timeout: 5 * time.Second, Poll: 20 * time.Millisecond}
	start := time.Now()
	o, err := w.Run(context.Background(), e, false)
	if err != nil || !strings.Contains(o.Detail, "healthy after") || time.Since(start) > time.Second {
		t.Fatalf("%+v %v after %s", o, err, time.Since(start))
	}
	w.URL = "http://127.0.0.1:1/healthz"
	w.Timeout = 100 * time.Millisecond
	if _, err := w.Run(context.Background(), e, false); err == nil || !strings.Contains(err.Error(), "not healthy after 100ms") {
		t.Errorf("err = %v", err)
	}
	e.Live = false
	if o, _ := w.Run(context.Background(), e, false); o.Result != Skipped {
		t.Errorf("not live: %+v", o)
	}
}

// TestDpkgLockWaitNamesHolder holds the dpkg frontend lock from a child process
// (POSIX locks of the test process itself would not conflict) and checks that the
// wait names the holder and is bounded.
func TestDpkgLockWaitNamesHolder(t *testing.T) {
	if p := os.Getenv("PROVISION_LOCK_CHILD"); p != "" {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o640)
		if err != nil {
			os.Exit(2)
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("locked\n")
		time.Sleep(30 * time.Second)
		os.Exit(0)
	}
	e := newEnv(t, "debian-12", true, &runner.Fake{})
	lock := e.Root.Path("/var/lib/dpkg/lock-frontend")
	os.MkdirAll(filepath.Dir(lock), 0o755)
	if pid, _, err := LockHolder(e.Root, DpkgFrontendLock); err != nil || pid != 0 {
		t.Fatalf("no lock file: pid %d err %v", pid, err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDpkgLockWaitNamesHolder$")
	cmd.Env = append(os.Environ(), "PROVISION_LOCK_CHILD="+lock)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("child did not lock: %q %v", buf, err)
	}
	pid, command, err := LockHolder(e.Root, DpkgFrontendLock)
	if err != nil || pid != cmd.Process.Pid || !strings.Contains(command, "TestDpkgLockWaitNamesHolder") {
		t.Fatalf("holder = %d %q %v, want pid %d", pid, command, err, cmd.Process.Pid)
	}
	start := time.Now()
	err = WaitForLock(context.Background(), e, DpkgFrontendLock, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "held after 300ms by PID") || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %s", err, time.Since(start))
	}
	cmd.Process.Kill()
	cmd.Wait()
	if err := WaitForLock(context.Background(), e, DpkgFrontendLock, time.Second); err != nil {
		t.Errorf("after release: %v", err)
	}
}

func TestCommentSwap(t *testing.T) {
	in := "# comment swap\nUUID=1 / ext4 defaults 0 1\n/dev/sdb2 none swap sw 0 0\n"
	out := string(CommentSwap([]byte(in)))
	if !strings.Contains(out, "# disabled by provision (kubelet needs swap off): /dev/sdb2 none swap sw 0 0") || !strings.HasPrefix(out, "# comment swap\nUUID=1") {
		t.Errorf("got:\n%s", out)
	}
	if string(CommentSwap([]byte(out))) != out {
		t.Errorf("not idempotent")
	}
}

// TestExtractSafeModes: extracted files lose setuid, setgid, sticky and
// world-write bits; a sparse member is refused before it is written (the PAX
// sparse formats, which archive/tar cannot write, are covered with GNU tar by
// node/bundle's TestSparseMembersRefused, through the same tarsafe.IsSparse).
func TestExtractSafeModes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mode    int64
		flag    byte
		want    os.FileMode
		wantErr string
	}{
		{name: "setuid", mode: 0o4755, want: 0o755},
		{name: "setgid", mode: 0o2755, want: 0o755},
		{name: "sticky world-writable", mode: 0o1777, want: 0o775},
		{name: "world-writable", mode: 0o666, want: 0o664},
		{name: "plain", mode: 0o750, want: 0o750},
		{name: "old GNU sparse", mode: 0o755, flag: tar.TypeGNUSparse, wantErr: `member "bin/tool" is a sparse file: refused`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "debian-12", true, &runner.Fake{})
			var buf bytes.Buffer
			gz := gzip.NewWriter(&buf)
			tw := tar.NewWriter(gz)
			tw.WriteHeader(&tar.Header{Name: "bin/ok", Mode: 0o755, Size: 2, Typeflag: tar.TypeReg, Format: tar.FormatPAX})
			tw.Write([]byte("ok"))
			if tc.flag == tar.TypeGNUSparse {
				// archive/tar cannot write old GNU sparse headers: patch the type byte of a regular header.
				var raw bytes.Buffer
				rw := tar.NewWriter(&raw)
				rw.WriteHeader(&tar.Header{Name: "bin/tool", Mode: tc.mode, Size: 4, Typeflag: tar.TypeReg, Format: tar.FormatGNU})
				rw.Write([]byte("tool"))
				rw.Flush()
				b := raw.Bytes()
				b[156] = tar.TypeGNUSparse
				var chk int64 // recompute the header checksum
				for i := 0; i < 512; i++ {
					if i >= 148 && i < 156 {
						chk += ' '
					} else {
						chk += int64(b[i])
					}
				}
				copy(b[148:156], fmt.Sprintf("%06o\x00 ", chk))
				tw.Flush()
				gz.Write(b)
			} else {
				tw.WriteHeader(&tar.Header{Name: "bin/tool", Mode: tc.mode, Size: 4, Typeflag: tar.TypeReg, Format: tar.FormatPAX})
				tw.Write([]byte("tool"))
			}
			tw.Close()
			gz.Close()
			archive := buf.Bytes()
			os.MkdirAll(e.Root.Path("/var/cache/provision"), 0o755)
			os.WriteFile(e.Root.Path("/var/cache/provision/t.tgz"), archive, 0o644)
			s := sha256.Sum256(archive)
			e.SetSum("/var/cache/provision/t.tgz", hex.EncodeToString(s[:]))
			_, err := (&Extract{TaskName: "t", Archive: "/var/cache/provision/t.tgz", Dest: "/usr/local/bin", StripPrefix: "bin/"}).Run(context.Background(), e, false)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if e.Root.Exists("/usr/local/bin/tool") {
					t.Errorf("the sparse member was written")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(e.Root.Path("/usr/local/bin/tool"))
			if err != nil || fi.Mode() != tc.want {
				t.Fatalf("mode %v (%v), want %v", fi.Mode(), err, tc.want)
			}
		})
	}
}

// TestPruneFiles: only the files provision wrote (its marker) under
// directories not kept are removed; a second run changes nothing.
func TestPruneFiles(t *testing.T) {
	e := newEnv(t, "debian-12", false, &runner.Fake{})
	const dir = "/etc/containerd/certs.d"
	write(t, e, dir+"/docker.io/hosts.toml", "# Written by provision: mirrors of docker.io\n")
	write(t, e, dir+"/docker.io/ca.crt", "CA")
	write(t, e, dir+"/kept.io/hosts.toml", "# Written by provision: TLS settings of kept.io\n")
	write(t, e, dir+"/quay.io/hosts.toml", "server = 'https://quay.io'\n")
	write(t, e, dir+"/short/hosts.toml", "#")
	os.MkdirAll(e.Root.Path(dir+"/empty"), 0o755)
	task := &PruneFiles{TaskName: "p", Dir: dir, File: "hosts.toml", Marker: []byte("# Written by provision: "), Keep: []string{"kept.io"}}
	o, err := task.Run(context.Background(), e, true)
	if err != nil || o.Result != Changed || o.Detail != "remove "+dir+"/docker.io/hosts.toml" {
		t.Fatalf("dry: %+v %v", o, err)
	}
	if !e.Root.Exists(dir + "/docker.io/hosts.toml") {
		t.Fatal("the dry run removed a file")
	}
	if o, err := task.Run(context.Background(), e, false); err != nil || o.Result != Changed {
		t.Fatalf("run: %+v %v", o, err)
	}
	for p, want := range map[string]bool{"docker.io/hosts.toml": false, "docker.io/ca.crt": true, "kept.io/hosts.toml": true, "quay.io/hosts.toml": true, "short/hosts.toml": true} {
		if got := e.Root.Exists(dir + "/" + p); got != want {
			t.Errorf("%s exists: %v, want %v", p, got, want)
		}
	}
	if o, err := task.Run(context.Background(), e, false); err != nil || o.Result != Unchanged {
		t.Errorf("second run: %+v %v", o, err)
	}
	if o, err := (&PruneFiles{TaskName: "p", Dir: "/missing", File: "hosts.toml", Marker: []byte("#")}).Run(context.Background(), e, false); err != nil || o.Result != Unchanged {
		t.Errorf("missing dir: %+v %v", o, err)
	}
}

// TestAbsent: a file is removed (not in a dry run), a missing one is
// unchanged, a directory is an error.
func TestAbsent(t *testing.T) {
	e := newEnv(t, "debian-12", false, &runner.Fake{})
	write(t, e, "/etc/x.conf", "x")
	task := &Absent{TaskName: "a", Path: "/etc/x.conf"}
	if o, err := task.Run(context.Background(), e, true); err != nil || o.Result != Changed || !e.Root.Exists("/etc/x.conf") {
		t.Fatalf("dry: %+v %v", o, err)
	}
	if o, err := task.Run(context.Background(), e, false); err != nil || o.Result != Changed || e.Root.Exists("/etc/x.conf") {
		t.Fatalf("run: %+v %v", o, err)
	}
	if o, err := task.Run(context.Background(), e, false); err != nil || o.Result != Unchanged {
		t.Errorf("second run: %+v %v", o, err)
	}
	os.MkdirAll(e.Root.Path("/etc/d"), 0o755)
	if _, err := (&Absent{TaskName: "a", Path: "/etc/d"}).Run(context.Background(), e, false); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
}
