package tasks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/provision-dev/provision/internal/kubeversions"
)

// VersionSkew refuses a kubelet version the API server must not serve: newer
// than the API server, or more minors older than upstream allows
// (kubeversions.CheckSkew). It reads the API server's /version over TLS with
// the cluster CA, as the kubelet's client (its client certificate, when the
// node has joined before) or anonymously. An API server that cannot be reached
// within Timeout, or that refuses the request, leaves the skew unchecked
// (reported as skipped): the kubelet's own TLS bootstrap fails later if the
// server is really gone.
type VersionSkew struct {
	TaskName       string
	APIServerURL   string
	KubeletVersion string
	// CAPath is the cluster CA (node path); ClientCertPath a PEM holding the
	// kubelet's client certificate and key (node path), used when present.
	CAPath, ClientCertPath string
	Timeout, Poll          time.Duration
}

func (t *VersionSkew) Name() string { return t.TaskName }

// maxVersionBody bounds the /version response.
const maxVersionBody = 64 << 10

func (t *VersionSkew) Run(ctx context.Context, e *Env, dry bool) (Outcome, error) {
	if !e.Live {
		return skipped("root is not the running system: version skew not checked")
	}
	if dry {
		return unchanged("would check kubelet %s against the version of %s", t.KubeletVersion, t.APIServerURL)
	}
	client, err := t.client(e)
	if err != nil {
		// The kubelet reports an unusable CA itself, with more context.
		return skipped("version skew not checked: %v", err)
	}
	deadline := time.Now().Add(t.Timeout)
	var server string
	for {
		server, err = t.serverVersion(ctx, client)
		if err == nil || errors.Is(err, errNoRetry) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return Outcome{}, ctx.Err()
		case <-time.After(t.Poll):
		}
	}
	if err != nil {
		return skipped("version skew not checked: %v", err)
	}
	if err := kubeversions.CheckSkew(t.KubeletVersion, server); err != nil {
		return Outcome{}, err
	}
	return unchanged("kubelet %s may join API server %s", t.KubeletVersion, server)
}

// errNoRetry marks answers that a retry would not change.
var errNoRetry = errors.New("refused")

func (t *VersionSkew) client(e *Env) (*http.Client, error) {
	ca, err := e.Root.ReadFile(t.CAPath)
	if err != nil {
		return nil, fmt.Errorf("read cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("cluster CA %s holds no PEM certificate", t.CAPath)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if t.ClientCertPath != "" && e.Root.Exists(t.ClientCertPath) {
		pem, err := e.Root.ReadFile(t.ClientCertPath)
		if err != nil {
			return nil, fmt.Errorf("read kubelet client certificate: %w", err)
		}
		if cert, err := tls.X509KeyPair(pem, pem); err == nil {
			cfg.Certificates = []tls.Certificate{cert}
		}
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment}}, nil
}

// serverVersion returns the API server's gitVersion.
func (t *VersionSkew) serverVersion(ctx context.Context, client *http.Client) (string, error) {
	url := strings.TrimSuffix(t.APIServerURL, "/") + "/version"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("API server URL: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("API server unreachable: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxVersionBody))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", url, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", fmt.Errorf("%w: %s answered HTTP %d", errNoRetry, url, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("%s answered HTTP %d", url, resp.StatusCode)
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.GitVersion == "" {
		return "", fmt.Errorf("%w: %s: no gitVersion in the answer", errNoRetry, url)
	}
	return v.GitVersion, nil
}
