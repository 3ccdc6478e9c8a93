// Command pause is the e2e tests' stand-in for registry.k8s.io/pause: a static
// binary that blocks until SIGINT or SIGTERM and exits 0, as the real one does.
// No image registry is reachable from the test machines, so the sandbox image
// is built locally (testenv.PauseImage) and imported into containerd.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	<-c
}
