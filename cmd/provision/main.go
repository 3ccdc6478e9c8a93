// Command provision turns a bare Linux host into a Kubernetes worker node.
//
// `provision generate` writes the userdata a machine boots with; `provision node`
// runs on the machine and does the imperative remainder. This package holds only
// cobra entry points: the work lives in generate/, node/ and osprofiles/.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is stamped by hack/build.sh with -ldflags "-X main.version=...".
var version = "dev"

// subcommands are registered by the other files of this package (one per subcommand).
var subcommands []func() *cobra.Command

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "provision",
		Short:         "Turn a bare Linux host into a Kubernetes worker node",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, c := range subcommands {
		root.AddCommand(c())
	}
	return root
}

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
