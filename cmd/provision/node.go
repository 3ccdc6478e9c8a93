package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/provision-dev/provision/internal/logging"
	"github.com/provision-dev/provision/node"
)

func init() { subcommands = append(subcommands, newNodeCmd) }

type nodeFlags struct {
	opts        node.Options
	dryRun      bool
	verbose     bool
	lockTimeout time.Duration
}

func (f *nodeFlags) register(cmd *cobra.Command) {
	fl := cmd.PersistentFlags()
	fl.StringVar(&f.opts.ConfigPath, "config", "", "node config file (default /etc/provision/node.yaml under --root)")
	fl.StringVar(&f.opts.Root, "root", "/", "directory standing for / (image builds, tests): every file operation happens under it")
	fl.BoolVar(&f.dryRun, "dry-run", false, "preview the phase(s): print every task and whether it would change anything; apply nothing")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log every command run")
	fl.StringVar(&f.opts.OSProfile, "os", "", "OS profile, overriding detection from /etc/os-release")
	fl.StringVar(&f.opts.Flags.KubeletVersion, "kubelet-version", "", "kubelet version vX.Y.Z (when there is no config file)")
	fl.StringVar(&f.opts.Flags.CloudProvider, "cloud-provider", "", "kubelet --cloud-provider: external (kubelet 1.29 and newer take only external), or an in-tree name before 1.29")
	fl.StringVar(&f.opts.Flags.CloudConfig, "cloud-config", "", "cloud provider config file to install (copied to /etc/kubernetes/cloud-config, 0600) for the cloud-controller-manager; passed to the kubelet only with an in-tree provider before 1.29")
	fl.StringVar(&f.opts.Flags.Token, "token", "", "bootstrap token (prefer --token-file: argv is visible to other users)")
	fl.StringVar(&f.opts.Flags.TokenFile, "token-file", "", "file holding the bootstrap token")
	fl.StringVar(&f.opts.Flags.CACert, "ca-cert", "", "cluster CA certificate to install (copied to /etc/kubernetes/pki/ca.crt)")
	fl.StringVar(&f.opts.BinaryPath, "provision-path", "", "path of the provision binary on the node, run by the health timers (default: the profile's binary dir + /provision)")
	fl.StringVar(&f.opts.Flags.APIServerURL, "apiserver-url", "", "https URL of the API server (for the bootstrap kubeconfig)")
	fl.StringVar(&f.opts.Bundle, "bundle", "", "base: install the artifacts from this bundle (provision bundle), verified as a whole, with no network")
	fl.StringVar(&f.opts.BundleSHA256, "bundle-sha256", "", "pinned sha256 of the --bundle file itself")
	fl.DurationVar(&f.lockTimeout, "lock-timeout", 5*time.Minute, "how long to wait for another provision node run on the same root to finish")
}

func (f *nodeFlags) prepare(cmd *cobra.Command) (context.Context, *node.Node, func(), error) {
	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	f.opts.Log = logging.New(cmd.ErrOrStderr(), level)
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	n, err := node.Prepare(ctx, f.opts)
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	for _, w := range n.Warnings() {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+w)
	}
	return ctx, n, stop, nil
}

func (f *nodeFlags) run(cmd *cobra.Command, phases ...node.Phase) error {
	if (f.opts.Bundle != "" || f.opts.BundleSHA256 != "") && !slices.Contains(phases, node.Base) {
		return fmt.Errorf("--bundle and --bundle-sha256 are for base (provision node base --bundle FILE); join installs no artifact")
	}
	if f.opts.BundleSHA256 != "" && f.opts.Bundle == "" {
		return fmt.Errorf("--bundle-sha256 needs --bundle")
	}
	ctx, n, stop, err := f.prepare(cmd)
	if err != nil {
		return err
	}
	defer stop()
	if f.dryRun {
		return preview(ctx, cmd, n, phases...)
	}
	release, err := node.AcquireRunLock(ctx, n.Env.Root, f.opts.Log, f.lockTimeout)
	if err != nil {
		return err
	}
	defer release()
	for _, p := range phases {
		if err := n.Run(ctx, p); err != nil {
			return fmt.Errorf("node %s failed: %w", p, err)
		}
	}
	return nil
}

func preview(ctx context.Context, cmd *cobra.Command, n *node.Node, phases ...node.Phase) error {
	entries, err := n.Preview(ctx, phases...)
	if werr := n.WritePreview(cmd.OutOrStdout(), entries); werr != nil {
		return werr
	}
	return err
}

func newNodeCmd() *cobra.Command {
	f := &nodeFlags{}
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Install, configure and join this machine as a Kubernetes node (base, then join)",
		Long: `Runs on the node. Reads /etc/provision/node.yaml (written by provision generate)
or builds the config from the flags flags, then runs the base phase (packages,
kernel settings, swap, CNI plugins, containerd, crictl, kubelet binary, health
checks) and the join phase (kubelet config and unit, TLS bootstrap). Every task
checks the actual state and applies only the difference. Status goes to
/var/lib/provision/status.json, with /var/lib/provision/done or .../failed markers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd, node.Base, node.Join) },
	}
	f.register(cmd)
	cmd.AddCommand(
		&cobra.Command{Use: "base", Short: "Install and configure everything the node needs, without joining (prebake)", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd, node.Base) }},
		&cobra.Command{Use: "join", Short: "Write and start the kubelet; TLS bootstrap with the bootstrap token", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd, node.Join) }},
		&cobra.Command{Use: "plan", Short: "List every task of base and join and whether it would change anything; apply nothing", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ctx, n, stop, err := f.prepare(cmd)
				if err != nil {
					return err
				}
				defer stop()
				return preview(ctx, cmd, n, node.Base, node.Join)
			}},
	)
	return cmd
}
