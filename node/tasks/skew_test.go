package tasks

import (
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/internal/runner"
)

// TestVersionSkew: the kubelet version is checked against a real TLS API
// server's /version (loopback), verified with the cluster CA.
func TestVersionSkew(t *testing.T) {
	tests := []struct {
		name    string
		kubelet string
		status  int
		body    string
		live    bool
		result  Result
		detail  string // or the error
	}{
		{"same version", "v1.37.2", 200, `{"gitVersion":"v1.37.2"}`, true, Unchanged, "kubelet v1.37.2 may join API server v1.37.2"},
		{"three minors older", "v1.34.0", 200, `{"gitVersion":"v1.37.2+k3s1"}`, true, Unchanged, "may join"},
		{"kubelet newer", "v1.37.2", 200, `{"gitVersion":"v1.36.3"}`, true, Failed, "kubelet v1.37.2 is newer than the API server v1.36.3"},
		{"too old", "v1.33.1", 200, `{"gitVersion":"v1.37.2"}`, true, Failed, "kubelet v1.33.1 is 4 minors older than the API server v1.37.2: at most 3"},
		{"anonymous refused", "v1.37.2", 401, `{}`, true, Skipped, "version skew not checked: refused: "},
		{"no gitVersion", "v1.37.2", 200, `{"major":"1"}`, true, Skipped, "no gitVersion"},
		{"not live", "v1.37.2", 200, `{"gitVersion":"v1.30.0"}`, false, Skipped, "root is not the running system"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/version" {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			e := newEnv(t, "debian-12", tt.live, &runner.Fake{})
			writeCA(t, e, srv)
			task := &VersionSkew{TaskName: "skew", APIServerURL: srv.URL, KubeletVersion: tt.kubelet, CAPath: "/etc/kubernetes/pki/ca.crt",
				ClientCertPath: "/var/lib/kubelet/pki/kubelet-client-current.pem", Timeout: time.Second, Poll: 50 * time.Millisecond}
			o, err := task.Run(context.Background(), e, false)
			got := o.Detail
			if err != nil {
				got = err.Error()
				o.Result = Failed
			}
			if o.Result != tt.result || !strings.Contains(got, tt.detail) {
				t.Errorf("result %s %q, want %s containing %q", o.Result, got, tt.result, tt.detail)
			}
		})
	}
}

// TestVersionSkewUnreachable: an API server that does not answer within the
// timeout leaves the skew unchecked (the kubelet's bootstrap reports it).
func TestVersionSkewUnreachable(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	e := newEnv(t, "debian-12", true, &runner.Fake{})
	writeCA(t, e, srv)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	srv.Close()
	task := &VersionSkew{TaskName: "skew", APIServerURL: "https://" + addr, KubeletVersion: "v1.37.2", CAPath: "/etc/kubernetes/pki/ca.crt",
		Timeout: 300 * time.Millisecond, Poll: 50 * time.Millisecond}
	o, err := task.Run(context.Background(), e, false)
	if err != nil || o.Result != Skipped || !strings.Contains(o.Detail, "API server unreachable") {
		t.Errorf("outcome %+v, %v; want skipped: unreachable", o, err)
	}
}

func writeCA(t *testing.T, e *Env, srv *httptest.Server) {
	t.Helper()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.MkdirAll(e.Root.Path("/etc/kubernetes/pki"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.Root.Path("/etc/kubernetes/pki/ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestServiceRestartsReplacedExecutable: a running unit whose main process
// executes an older file than the one at ExecPath (an upgrade replaced it) is
// restarted once, also when a RestartOn task changed too; an unchanged binary
// is left running.
func TestServiceRestartsReplacedExecutable(t *testing.T) {
	defer func(f func(int) string) { procExe = f }(procExe)
	tests := []struct {
		name        string
		replaced    bool
		cfgChanged  bool
		wantRestart bool
		wantDetail  string
	}{
		{"binary unchanged", false, false, false, "kubelet.service enabled and active"},
		{"binary replaced", true, false, true, "restart kubelet.service (/usr/local/bin/kubelet replaced)"},
		{"binary replaced and config changed", true, true, true, "restart kubelet.service (cfg changed, /usr/local/bin/kubelet replaced)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &runner.Fake{}
			f.On([]string{"systemctl", "is-enabled"}, "enabled\n", 0)
			f.On([]string{"systemctl", "is-active"}, "", 0)
			f.On([]string{"systemctl", "show", "-p", "MainPID"}, "MainPID=4242\n", 0)
			f.On([]string{"systemctl", "show", "-p", "ExecMainStartTimestampMonotonic"}, "ExecMainStartTimestampMonotonic=0\n", 0)
			f.On([]string{"systemctl", "restart"}, "", 0)
			e := newEnv(t, "debian-12", true, f)
			bin := e.Root.Path("/usr/local/bin/kubelet")
			os.MkdirAll(filepath.Dir(bin), 0o755)
			if err := os.WriteFile(bin, []byte("new kubelet"), 0o755); err != nil {
				t.Fatal(err)
			}
			running := bin
			if tt.replaced {
				running = filepath.Join(t.TempDir(), "old-kubelet")
				os.WriteFile(running, []byte("old kubelet"), 0o755)
			}
			procExe = func(pid int) string {
				if pid != 4242 {
					t.Errorf("stat of pid %d, want the MainPID 4242", pid)
				}
				return running
			}
			if tt.cfgChanged {
				e.markChanged("cfg")
			}
			o, err := (&Service{TaskName: "s", Unit: "kubelet.service", Start: true, RestartOn: []string{"cfg"}, ExecPath: "/usr/local/bin/kubelet"}).Run(context.Background(), e, false)
			if err != nil {
				t.Fatal(err)
			}
			calls := strings.Join(f.Calls(), "\n")
			if n := strings.Count(calls, "systemctl restart kubelet.service"); (n == 1) != tt.wantRestart || n > 1 {
				t.Errorf("%d restarts, want restart=%v\n%s", n, tt.wantRestart, calls)
			}
			if !strings.Contains(o.Detail, tt.wantDetail) {
				t.Errorf("detail %q, want %q", o.Detail, tt.wantDetail)
			}
		})
	}
}
