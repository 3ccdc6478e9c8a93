package tasks

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/internal/runner"
)

const clientCert = "/var/lib/kubelet/pki/kubelet-client-current.pem"

func bootstrapTask(timeout, grace time.Duration) *KubeletBootstrap {
	return &KubeletBootstrap{TaskName: "kubelet/tls-bootstrap", CertPath: clientCert, Unit: "kubelet.service",
		Timeout: timeout, Grace: grace, Poll: 10 * time.Millisecond}
}

func TestKubeletBootstrapCertificate(t *testing.T) {
	f := &runner.Fake{}
	e := newEnv(t, "debian-12", true, f)
	go func() {
		time.Sleep(50 * time.Millisecond)
		write(t, e, clientCert, "cert")
	}()
	o, err := bootstrapTask(5*time.Second, time.Second).Run(context.Background(), e, false)
	if err != nil || o.Result != Changed {
		t.Fatalf("outcome %+v, err %v", o, err)
	}
	o, err = bootstrapTask(5*time.Second, time.Second).Run(context.Background(), e, false)
	if err != nil || o.Result != Unchanged {
		t.Fatalf("second run: outcome %+v, err %v", o, err)
	}
}

// A refused token fails the task after the grace period, well before the
// timeout, with the kubelet's error and without anything token-like.
func TestKubeletBootstrapRefused(t *testing.T) {
	f := &runner.Fake{}
	// What kubelet v1.31.4 logs with an unknown token (seen in the e2e run),
	// with a token-like string added to prove the redaction, and kubelet
	// v1.37.2's PodCertificateRequest informer line, which names a
	// "certificate" resource but is a consequence (system:anonymous).
	f.On([]string{"journalctl"}, `I1125 00:53:49.100000     542 server.go:484] "Kubelet version" kubeletVersion="v1.31.4"
E1125 00:53:49.643327     542 certificate_manager.go:562] "Unhandled Error" err="kubernetes.io/kube-apiserver-client-kubelet: Failed while requesting a signed certificate from the control plane: cannot create certificate signing request: Unauthorized (abcdef.0123456789abcdef)" logger="UnhandledError"
E1125 00:53:49.870363     542 reflector.go:158] "Unhandled Error" err="k8s.io/client-go@v0.31.4/tools/cache/reflector.go:243: Failed to watch *v1.Node: failed to list *v1.Node: nodes \"n\" is forbidden: User \"system:anonymous\" cannot list resource \"nodes\" in API group \"\" at the cluster scope" logger="UnhandledError"
E1202 05:57:48.100000     561 reflector.go:204] "Failed to watch" err="failed to list *v1.PodCertificateRequest: podcertificaterequests.certificates.k8s.io is forbidden: User \"system:anonymous\" cannot list resource \"podcertificaterequests\" in API group \"certificates.k8s.io\" at the cluster scope" logger="UnhandledError"
`, 0)
	e := newEnv(t, "debian-12", true, f)
	start := time.Now()
	_, err := bootstrapTask(time.Minute, 100*time.Millisecond).Run(context.Background(), e, false)
	if err == nil {
		t.Fatal("no error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("failed after %v, want about the grace period", d)
	}
	msg := err.Error()
	if !strings.Contains(msg, "cannot create certificate signing request: Unauthorized") || !strings.Contains(msg, "bootstrap token") || strings.Contains(msg, "anonymous") {
		t.Errorf("error does not carry the kubelet's reason: %s", msg)
	}
	if strings.Contains(msg, "0123456789abcdef") {
		t.Errorf("error quotes a token: %s", msg)
	}
}

func TestKubeletBootstrapTimeout(t *testing.T) {
	f := &runner.Fake{}
	f.On([]string{"journalctl"}, `E1125 reflector.go] "Failed to watch" err="dial tcp 10.0.0.1:6443: connect: connection refused"`+"\n", 0)
	e := newEnv(t, "debian-12", true, f)
	_, err := bootstrapTask(300*time.Millisecond, time.Minute).Run(context.Background(), e, false)
	if err == nil || !strings.Contains(err.Error(), "after 300ms") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v", err)
	}
}

func TestKubeletBootstrapNotLive(t *testing.T) {
	e := newEnv(t, "debian-12", false, &runner.Fake{})
	o, err := bootstrapTask(time.Second, time.Second).Run(context.Background(), e, false)
	if err != nil || o.Result != Skipped {
		t.Fatalf("outcome %+v, err %v", o, err)
	}
}
