// Command pause is the e2e tests' stand-in for registry.k8s.io/pause: a static
// binary that blocks until SIGINT or SIGTERM and exits 0, as the real one does.
// No image registry is reachable from the test machines, so the sandbox image
// is built locally (testenv.PauseImage) and imported into containerd. Unlike
// the real one it prints one line when it starts and, with PAUSE_HTTP=ADDR,
// answers HTTP there, so the tests can read a pod's logs and port-forward to it
// through the API server and the kubelet; `pause echo WORDS` prints WORDS and
// exits (kubectl exec).
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// startedLine is what it prints on start; httpAnswer what it answers over HTTP.
const (
	startedLine = "pause: started"
	httpAnswer  = "pause: hello"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "echo" {
		fmt.Println(strings.Join(os.Args[2:], " "))
		return
	}
	fmt.Println(startedLine)
	if addr := os.Getenv("PAUSE_HTTP"); addr != "" {
		go http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, httpAnswer) }))
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	<-c
}
