// Command fake-kubelet is a small static stand-in for the kubelet binary, for
// tests of `provision node base`, which downloads, verifies and installs the
// kubelet but never runs it. It answers --version like the real one and refuses
// to run as a kubelet. Tests that join a node build the real kubelet instead.
package main

import (
	"fmt"
	"os"
)

// version is set with -ldflags "-X main.version=v1.31.4".
var version = "v0.0.0"

func main() {
	for _, a := range os.Args[1:] {
		if a == "--version" || a == "-version" {
			fmt.Println("Kubernetes " + version)
			return
		}
	}
	fmt.Fprintln(os.Stderr, "fake-kubelet: a test stand-in; only --version is implemented")
	os.Exit(1)
}
