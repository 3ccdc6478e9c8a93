// Command pause is the e2e tests' stand-in for registry.k8s.io/pause: a static
// binary that blocks until SIGINT or SIGTERM and exits 0, as the real one does.
// No image registry is reachable from the test machines, so the sandbox image
// is built locally (testenv.PauseImage) and imported into containerd. Unlike
// the real one it prints one line when it starts, so the tests can read a
// pod's logs through the API server and the kubelet.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// StartedLine is what it prints on start.
const startedLine = "pause: started"

func main() {
	fmt.Println(startedLine)
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	<-c
}
