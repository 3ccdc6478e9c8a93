// Package kubeconfig builds the kubelet's bootstrap kubeconfig with client-go's own types.
package kubeconfig

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Bootstrap holds what a bootstrap kubeconfig says. Token is a secret.
type Bootstrap struct {
	Server string
	// CAPath, if set, is referenced by path; else CAData is embedded.
	CAPath string
	CAData []byte
	Token  string
}

// Build returns the serialized kubeconfig. Its error never includes the token.
func Build(b Bootstrap) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cluster := clientcmdapi.NewCluster()
	cluster.Server = b.Server
	if b.CAPath != "" {
		cluster.CertificateAuthority = b.CAPath
	} else {
		cluster.CertificateAuthorityData = b.CAData
	}
	cfg.Clusters["default"] = cluster
	auth := clientcmdapi.NewAuthInfo()
	auth.Token = b.Token
	cfg.AuthInfos["kubelet-bootstrap"] = auth
	ctx := clientcmdapi.NewContext()
	ctx.Cluster = "default"
	ctx.AuthInfo = "kubelet-bootstrap"
	cfg.Contexts["default"] = ctx
	cfg.CurrentContext = "default"
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("serialize bootstrap kubeconfig: %T", err) // the error could quote the config
	}
	return out, nil
}

// Token returns the bootstrap token of a kubeconfig built by Build (for round-trip tests
// and for node, which reads but never logs it).
func Token(data []byte) (string, error) {
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return "", fmt.Errorf("parse kubeconfig: %w", err)
	}
	ctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return "", fmt.Errorf("kubeconfig: current context %q not found", cfg.CurrentContext)
	}
	a, ok := cfg.AuthInfos[ctx.AuthInfo]
	if !ok {
		return "", fmt.Errorf("kubeconfig: user %q not found", ctx.AuthInfo)
	}
	return a.Token, nil
}

// Server returns the API server URL of a kubeconfig's current context (the
// kubelet's, or a bootstrap kubeconfig). Its errors never quote the file.
func Server(data []byte) (string, error) {
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return "", fmt.Errorf("parse kubeconfig: %T", err) // the error could quote the config
	}
	ctx, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return "", fmt.Errorf("kubeconfig: current context %q not found", cfg.CurrentContext)
	}
	c, ok := cfg.Clusters[ctx.Cluster]
	if !ok || c.Server == "" {
		return "", fmt.Errorf("kubeconfig: cluster %q has no server", ctx.Cluster)
	}
	return c.Server, nil
}
