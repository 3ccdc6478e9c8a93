package controller_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bootstrapv1 "github.com/provision-dev/provision/capi/api/v1alpha1"
	"github.com/provision-dev/provision/capi/internal/kubetest"
)

// fleetSize is the benchmark's number of Machines.
const fleetSize = 1000

// BenchmarkThousandMachines runs the real provision-bootstrap-controller
// binary (default flags, as its ServiceAccount) against 1,000 Machines with
// ProvisionConfigs created beforehand, and measures until every config has
// its data Secret and token: wall time from the process's start, the API
// requests it made (its rest_client_requests_total metric, every client:
// management and workload) and its peak RSS (VmHWM).
func BenchmarkThousandMachines(b *testing.B) {
	bin := buildController(b)
	b.ResetTimer()
	for range b.N {
		fleet(b, bin, fleetSize)
	}
}

var controllerBinary struct {
	once sync.Once
	path string
	err  error
}

func buildController(b *testing.B) string {
	b.Helper()
	controllerBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "provision-bootstrap-controller-")
		if err != nil {
			controllerBinary.err = err
			return
		}
		controllerBinary.path = filepath.Join(dir, "provision-bootstrap-controller")
		cmd := exec.Command("go", "build", "-o", controllerBinary.path, "../../cmd/provision-bootstrap-controller")
		if out, err := cmd.CombinedOutput(); err != nil {
			controllerBinary.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if controllerBinary.err != nil {
		b.Fatal(controllerBinary.err)
	}
	return controllerBinary.path
}

func fleet(b *testing.B, bin string, n int) {
	b.StopTimer()
	f := newFixture(b, clusterState{infrastructure: true, controlPlane: true})
	fast := rest.CopyConfig(env.Admin)
	fast.QPS, fast.Burst = -1, 0 // the test's own client is not rate limited
	c, err := client.New(fast, client.Options{Scheme: env.Client.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	created := time.Now()
	parallel(b, n, 16, func(i int) error {
		name := fmt.Sprintf("md-0-%04d", i)
		m := &clusterv1.Machine{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns, Labels: map[string]string{clusterv1.ClusterNameLabel: clusterName}},
			Spec: clusterv1.MachineSpec{ClusterName: clusterName, Version: version,
				Bootstrap: clusterv1.Bootstrap{ConfigRef: configRef(name)}, InfrastructureRef: infraRef(name)},
		}
		if err := c.Create(f.ctx, m); err != nil {
			return err
		}
		pc := &bootstrapv1.ProvisionConfig{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns, Labels: map[string]string{clusterv1.ClusterNameLabel: clusterName},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: clusterv1.GroupVersion.String(), Kind: "Machine", Name: name, UID: m.UID}}},
			Spec: ubuntuSpec(),
		}
		return c.Create(f.ctx, pc)
	})
	b.Logf("created %d Machines and ProvisionConfigs in %s", n, time.Since(created).Round(time.Millisecond))

	dir := b.TempDir()
	kc, err := kubetest.Kubeconfig(env.Controller)
	if err != nil {
		b.Fatal(err)
	}
	kcPath := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kcPath, kc, 0o600); err != nil {
		b.Fatal(err)
	}
	metricsAddr := freeAddr(b)
	logPath := filepath.Join(dir, "controller.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "--kubeconfig", kcPath, "--namespace", f.ns,
		"--metrics-bind-address", metricsAddr, "--health-probe-bind-address", "0", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	b.StartTimer()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	}()

	var configs bootstrapv1.ProvisionConfigList
	for {
		if err := c.List(f.ctx, &configs, client.InNamespace(f.ns)); err != nil {
			b.Fatal(err)
		}
		done := 0
		for i := range configs.Items {
			if dataSecretCreated(&configs.Items[i]) {
				done++
			}
		}
		if done == n {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			b.Fatalf("controller exited (%v) with %d of %d configs rendered; log:\n%s", err, done, n, tail(logPath, 30))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("%d of %d configs rendered after %s; controller log:\n%s", done, n, time.Since(start), tail(logPath, 30))
		}
	}
	wall := time.Since(start)
	b.StopTimer()

	requests, byMethod := scrapeRequests(b, metricsAddr)
	peak, rss := procMemory(b, cmd.Process.Pid)

	// Every config has its own data Secret and token.
	var secrets corev1.SecretList
	if err := c.List(f.ctx, &secrets, client.InNamespace(f.ns), client.MatchingLabels{clusterv1.ClusterNameLabel: clusterName}); err != nil {
		b.Fatal(err)
	}
	data := map[string]bool{}
	for _, s := range secrets.Items {
		if s.Type == clusterv1.ClusterSecretType && len(s.OwnerReferences) == 1 && s.OwnerReferences[0].Kind == "ProvisionConfig" {
			data[s.Name] = true
		}
	}
	var tokens corev1.SecretList
	if err := c.List(f.ctx, &tokens, client.InNamespace(metav1.NamespaceSystem), client.MatchingFields{"type": string(bootstrapapi.SecretTypeBootstrapToken)}); err != nil {
		b.Fatal(err)
	}
	ids := map[string]bool{}
	for _, t := range tokens.Items {
		ids[string(t.Data[bootstrapapi.BootstrapTokenIDKey])] = true
	}
	for _, pc := range configs.Items {
		if !data[pc.Status.DataSecretName] || !ids[pc.Status.BootstrapTokenID] {
			b.Fatalf("%s: data Secret %q or token %q missing", pc.Name, pc.Status.DataSecretName, pc.Status.BootstrapTokenID)
		}
	}

	b.ReportMetric(wall.Seconds(), "s/fleet")
	b.ReportMetric(float64(requests), "requests/fleet")
	b.ReportMetric(float64(peak)/(1<<20), "MiB-peak-rss")
	b.Logf("%d Machines: %s wall, %d API requests (%s), peak RSS %.1f MiB (now %.1f MiB), default flags",
		n, wall.Round(time.Millisecond), requests, byMethod, float64(peak)/(1<<20), float64(rss)/(1<<20))
	if wall > time.Minute || peak > 200<<20 {
		b.Errorf("over the target (60 s, 200 MiB): %s, %.1f MiB", wall.Round(time.Millisecond), float64(peak)/(1<<20))
	}
}

// parallel runs fn(0..n-1) on workers goroutines, failing on the first error.
func parallel(b *testing.B, n, workers int, fn func(int) error) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

func freeAddr(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrapeRequests sums the controller's rest_client_requests_total.
func scrapeRequests(b *testing.B, addr string) (int, string) {
	b.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	total, byMethod := 0, map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "rest_client_requests_total{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			b.Fatalf("metric %q: %v", line, err)
		}
		total += int(v)
		if _, rest, ok := strings.Cut(line, `method="`); ok {
			m, _, _ := strings.Cut(rest, `"`)
			byMethod[m] += int(v)
		}
	}
	if total == 0 {
		b.Fatal("no rest_client_requests_total in the controller's metrics")
	}
	var parts []string
	for _, m := range []string{"GET", "LIST", "WATCH", "POST", "PUT", "PATCH", "DELETE"} {
		if byMethod[m] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", m, byMethod[m]))
		}
	}
	return total, strings.Join(parts, ", ")
}

// procMemory returns the process's peak and current resident set (bytes).
func procMemory(b *testing.B, pid int) (peak, rss int64) {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmHWM":
			peak = kb << 10
		case "VmRSS":
			rss = kb << 10
		}
	}
	return peak, rss
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
