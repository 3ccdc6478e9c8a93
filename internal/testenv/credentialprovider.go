package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CredentialProviderName is the file name (and provider name) of the plugin
// CredentialProviderPlugin builds.
const CredentialProviderName = "test-credential-provider"

// Environment variables the test plugin reads its credentials from (its
// flags -username, -password and -password-file take precedence).
const (
	CredentialProviderUserEnv     = "TEST_REGISTRY_USERNAME"
	CredentialProviderPasswordEnv = "TEST_REGISTRY_PASSWORD"
)

// credentialProviderSource is a kubelet image credential provider plugin
// (credentialprovider.kubelet.k8s.io v1, v1beta1 or v1alpha1: it answers in
// the request's version): it reads a CredentialProviderRequest on stdin and
// answers, on stdout, a CredentialProviderResponse with one fixed
// username/password for the image's registry (cacheKeyType Registry). The
// password comes from -password-file (a secret in a file of the plugin's own,
// the contract of provision's 0644 config), -password, or the environment.
// Standard library only: it builds outside any module's dependencies.
const credentialProviderSource = `package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

type request struct {
	APIVersion string ` + "`json:\"apiVersion\"`" + `
	Kind       string ` + "`json:\"kind\"`" + `
	Image      string ` + "`json:\"image\"`" + `
}

type authConfig struct {
	Username string ` + "`json:\"username\"`" + `
	Password string ` + "`json:\"password\"`" + `
}

type response struct {
	APIVersion    string                ` + "`json:\"apiVersion\"`" + `
	Kind          string                ` + "`json:\"kind\"`" + `
	CacheKeyType  string                ` + "`json:\"cacheKeyType\"`" + `
	CacheDuration string                ` + "`json:\"cacheDuration,omitempty\"`" + `
	Auth          map[string]authConfig ` + "`json:\"auth\"`" + `
}

// registry is the image's registry host[:port], as the kubelet's keyring
// reads it: the first path part if it has a '.' or ':' or is localhost, else
// Docker Hub.
func registry(image string) string {
	first, _, found := strings.Cut(image, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}

func main() {
	user := flag.String("username", os.Getenv("` + CredentialProviderUserEnv + `"), "registry user name")
	pass := flag.String("password", os.Getenv("` + CredentialProviderPasswordEnv + `"), "registry password")
	passFile := flag.String("password-file", "", "file holding the registry password")
	flag.Parse()
	if *passFile != "" {
		b, err := os.ReadFile(*passFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "read the password file:", err)
			os.Exit(1)
		}
		*pass = strings.TrimSpace(string(b))
	}
	data, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
	if err != nil {
		fmt.Fprintln(os.Stderr, "read the request:", err)
		os.Exit(1)
	}
	var req request
	if err := json.Unmarshal(data, &req); err != nil {
		fmt.Fprintln(os.Stderr, "decode the request:", err)
		os.Exit(1)
	}
	if req.Kind != "CredentialProviderRequest" || !strings.HasPrefix(req.APIVersion, "credentialprovider.kubelet.k8s.io/") || req.Image == "" {
		fmt.Fprintf(os.Stderr, "not a CredentialProviderRequest with an image: kind %q, apiVersion %q\n", req.Kind, req.APIVersion)
		os.Exit(1)
	}
	if *user == "" || *pass == "" {
		fmt.Fprintln(os.Stderr, "no credentials: give -username and -password(-file), or the environment")
		os.Exit(1)
	}
	out := response{APIVersion: req.APIVersion, Kind: "CredentialProviderResponse", CacheKeyType: "Registry", CacheDuration: "1m0s",
		Auth: map[string]authConfig{registry(req.Image): {Username: *user, Password: *pass}}}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "write the response:", err)
		os.Exit(1)
	}
}
`

// CredentialProviderPlugin writes the test credential provider plugin's
// source to a temp directory, builds it with go build (static, standard
// library only) and returns the binary, dir/CredentialProviderName: the
// plugin an e2e serves as an imageCredentialProviders download.
func CredentialProviderPlugin(t testing.TB, dir string) string {
	t.Helper()
	done := Phase(t, "go build "+CredentialProviderName)
	defer done()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module testcredentialprovider\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(credentialProviderSource), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, CredentialProviderName)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := run(ctx, src, []string{"CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local"},
		"go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "."); err != nil {
		t.Fatalf("build the test credential provider: %v", err)
	}
	return out
}
