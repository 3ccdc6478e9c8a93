// Command fake-crictl is a small static stand-in for crictl, used because
// sigs.k8s.io/cri-tools is not available from the Go module proxy the tests may
// reach. It implements what a node's health check asks of crictl: `version`,
// and `info`, which succeeds when the runtime endpoint (from --runtime-endpoint,
// /etc/crictl.yaml or containerd's default) accepts a connection.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// version is set with -ldflags "-X main.version=v1.31.1".
var version = "v0.0.0"

const defaultEndpoint = "unix:///run/containerd/containerd.sock"

func main() {
	endpoint := ""
	var args []string
	for i := 1; i < len(os.Args); i++ {
		a := os.Args[i]
		switch {
		case strings.HasPrefix(a, "--runtime-endpoint="), strings.HasPrefix(a, "-r="):
			endpoint = a[strings.Index(a, "=")+1:]
		case (a == "--runtime-endpoint" || a == "-r") && i+1 < len(os.Args):
			i++
			endpoint = os.Args[i]
		case a == "--version" || a == "-v":
			fmt.Println("crictl version " + version)
			return
		case strings.HasPrefix(a, "-"):
		default:
			args = append(args, a)
		}
	}
	if endpoint == "" {
		endpoint = configEndpoint("/etc/crictl.yaml")
	}
	if endpoint == "" {
		endpoint = defaultEndpoint
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "fake-crictl: a test stand-in; commands: version, info")
		os.Exit(1)
	}
	switch args[0] {
	case "version":
		fmt.Printf("Version:  0.1.0\nRuntimeName:  unknown\nRuntimeApiVersion:  v1\ncrictl: %s\n", version)
	case "info":
		c, err := net.DialTimeout("unix", strings.TrimPrefix(endpoint, "unix://"), 5*time.Second)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fake-crictl: runtime endpoint %s: %v\n", endpoint, err)
			os.Exit(1)
		}
		c.Close()
		fmt.Println(`{"status":{"conditions":[{"type":"RuntimeReady","status":true}]}}`)
	default:
		fmt.Fprintf(os.Stderr, "fake-crictl: %q is not implemented by this test stand-in\n", args[0])
		os.Exit(1)
	}
}

// configEndpoint reads runtime-endpoint from a crictl.yaml (a flat key: value file).
func configEndpoint(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == "runtime-endpoint" {
			return strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return ""
}
