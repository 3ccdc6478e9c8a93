package main

import (
	"github.com/spf13/cobra"

	"github.com/provision-dev/provision/internal/fsroot"
	"github.com/provision-dev/provision/internal/logging"
	"github.com/provision-dev/provision/internal/runner"
	"github.com/provision-dev/provision/node/health"
)

func init() { subcommands = append(subcommands, newHealthCmd) }

func newHealthCmd() *cobra.Command {
	var root, crictl, url string
	p := health.DefaultPolicy
	cmd := &cobra.Command{
		Use:       "health kubelet|containerd",
		Short:     "Check a node service once; restart it after repeated failures, with backoff (run by provision-health-*.timer)",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"kubelet", "containerd"},
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := fsroot.New(root)
			if err != nil {
				return err
			}
			log := logging.New(cmd.ErrOrStderr(), 0)
			c := &health.Checker{Root: r, Runner: runner.Exec{Log: log}, Policy: p, Log: log, Crictl: crictl, KubeletURL: url}
			_, err = c.Check(cmd.Context(), args[0])
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&root, "root", "/", "directory holding the health state (/var/lib/provision/health)")
	fl.StringVar(&crictl, "crictl", "crictl", "crictl binary used to check containerd")
	fl.StringVar(&url, "kubelet-healthz", "http://127.0.0.1:10248/healthz", "kubelet healthz URL")
	fl.IntVar(&p.Threshold, "failures", p.Threshold, "consecutive failures before a restart")
	fl.DurationVar(&p.BaseBackoff, "backoff", p.BaseBackoff, "minimum time between restarts, doubled after each restart")
	fl.DurationVar(&p.MaxBackoff, "max-backoff", p.MaxBackoff, "cap of the time between restarts")
	return cmd
}
