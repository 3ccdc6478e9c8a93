package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/api/validation"
	"github.com/provision-dev/provision/internal/artifacts"
	"github.com/provision-dev/provision/internal/kubeversions"
	"github.com/provision-dev/provision/internal/logging"
	"github.com/provision-dev/provision/node/bundle"
	"github.com/provision-dev/provision/node/nodeconfig"
	"github.com/provision-dev/provision/osprofiles"
)

func init() { subcommands = append(subcommands, newBundleCmd) }

type bundleFlags struct {
	config, version, os, arch, output string
	provisionBinary, provisionSHA256  string
	verbose                           bool
}

// spec turns the flags (and the node config, if any) into a bundle spec,
// reporting every problem at once.
func (f *bundleFlags) spec(cmd *cobra.Command) (bundle.Spec, error) {
	var errs validation.Errors
	add := func(field, format string, a ...any) {
		errs = append(errs, validation.FieldError{Field: field, Message: fmt.Sprintf(format, a...)})
	}
	changed := cmd.Flags().Changed
	var cfg v1alpha1.NodeConfig
	if f.config != "" {
		var err error
		if cfg, err = nodeconfig.Load(f.config); err != nil {
			return bundle.Spec{}, err
		}
		if changed("kubelet-version") && f.version != cfg.Kubernetes.Version {
			add("--kubelet-version", "%s conflicts with the config's kubernetes.version %s: drop the flag", f.version, cfg.Kubernetes.Version)
		}
		if changed("arch") && cfg.Arch != "" && f.arch != cfg.Arch {
			add("--arch", "%s conflicts with the config's arch %s: drop the flag", f.arch, cfg.Arch)
		}
		if cfg.Arch == "" {
			cfg.Arch = f.arch
		}
	} else {
		if msg := validation.KubeletVersion(f.version); msg != "" {
			add("--kubelet-version", "%s (or pass --config)", msg)
		}
		if f.arch != "amd64" && f.arch != "arm64" {
			add("--arch", "must be amd64 or arm64, got %q", f.arch)
		}
		cfg = nodeconfig.New(f.version, f.arch)
	}
	name := f.os
	if name == "" {
		name = cfg.OSProfile
	} else if cfg.OSProfile != "" && cfg.OSProfile != name {
		add("--os", "%s conflicts with the config's osProfile %s: drop the flag", name, cfg.OSProfile)
	}
	var profile osprofiles.Profile
	if name == "" {
		add("--os", "is required (the artifacts depend on the OS profile): one of %s", strings.Join(osprofiles.Names(), ", "))
	} else if p, err := osprofiles.Get(name); err != nil {
		add("--os", "%v", err)
	} else {
		// containerd.install decides whether the tarball runtime's artifacts go in.
		errs = append(errs, cfg.ValidateProfile("", p)...)
		profile = p.WithRuntime(cfg.Containerd.Install)
	}
	if f.output == "" {
		add("--output", "is required: the bundle file to write")
	}
	if f.provisionSHA256 != "" && (f.provisionBinary == "" || !validation.ValidSHA256(f.provisionSHA256)) {
		add("--provision-sha256", "needs --provision-binary and must be 64 lower-case hex digits")
	}
	if len(errs) > 0 {
		return bundle.Spec{}, errs
	}
	return bundle.Spec{
		KubeletVersion:  cfg.Kubernetes.Version,
		Profile:         profile,
		Arch:            cfg.Arch,
		Artifacts:       cfg.Artifacts,
		ProvisionBinary: f.provisionBinary,
		ProvisionSHA256: f.provisionSHA256,
	}, nil
}

// artifactList describes internal/artifacts' table for the help text.
func artifactList() string {
	groups := map[artifacts.Need][]string{}
	for _, a := range artifacts.All() {
		groups[a.Need] = append(groups[a.Need], a.Description)
	}
	out := strings.Join(groups[artifacts.Always], ", ")
	if g := groups[artifacts.TarballRuntime]; len(g) > 0 {
		out += "; where containerd comes from the release tarball (the profile's way, or containerd.install: tarball): " + strings.Join(g, ", ")
	}
	if g := groups[artifacts.OnRequest]; len(g) > 0 {
		out += "; with --provision-binary: " + strings.Join(g, ", ")
	}
	return out
}

func newBundleCmd() *cobra.Command {
	f := &bundleFlags{}
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Gather every artifact a node needs into one verified tarball (airgap)",
		Long: `bundle downloads every artifact the base phase of a node needs for one kubelet
version, OS profile and architecture (` + artifactList() + `) and writes them, with a manifest of
their sha256s and sizes, into one deterministic tar file. Sources and pinned
checksums come from a node config (--config: mirrors honoured) or from the
upstream defaults (--kubelet-version, --os, --arch); every download is verified
(pinned sha256, or the upstream URL.sha256). The bundle is written atomically
with FILE.sha256 beside it: nothing is left at --output on failure.

Install it with: provision node base --bundle FILE [--bundle-sha256 HASH]`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := f.spec(cmd)
			if err != nil {
				return err
			}
			if r, err := kubeversions.For(spec.KubeletVersion); err == nil && r.Warning() != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+r.Warning())
			}
			level := slog.LevelInfo
			if f.verbose {
				level = slog.LevelDebug
			}
			log := logging.New(cmd.ErrOrStderr(), level)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			start := time.Now()
			m, err := bundle.Create(ctx, spec, f.output, nil, log)
			if err != nil {
				return err
			}
			sum, err := os.ReadFile(f.output + ".sha256")
			if err != nil {
				return err
			}
			fi, err := os.Stat(f.output)
			if err != nil {
				return err
			}
			log.Info("bundle written", "file", f.output, "bytes", fi.Size(), "duration", time.Since(start).Round(time.Millisecond))
			return printManifest(cmd.OutOrStdout(), f.output, strings.Fields(string(sum))[0], fi.Size(), m)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "node config whose artifacts (URLs, pinned sha256s, mirrors) to bundle")
	fl.StringVar(&f.version, "kubelet-version", "", "kubelet version vMAJOR.MINOR.PATCH (without --config: upstream sources)")
	fl.StringVar(&f.os, "os", "", "OS profile, one of "+profileNames()+" (default: the config's osProfile)")
	fl.StringVar(&f.arch, "arch", "amd64", "architecture: amd64 or arm64 (default: the config's arch)")
	fl.StringVarP(&f.output, "output", "o", "", "bundle file to write (atomically; FILE.sha256 beside it)")
	fl.StringVar(&f.provisionBinary, "provision-binary", "", "also bundle this provision binary (its sha256 from --provision-sha256 or PATH.sha256)")
	fl.StringVar(&f.provisionSHA256, "provision-sha256", "", "pinned sha256 of --provision-binary")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "debug logs")
	cmd.AddCommand(newBundleVerifyCmd())
	return cmd
}

func newBundleVerifyCmd() *cobra.Command {
	var sum string
	cmd := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check every artifact of a bundle against its manifest; extract nothing",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := bundle.Verify(args[0], bundle.Options{SHA256: sum})
			if err != nil {
				return err
			}
			fi, err := os.Stat(args[0])
			if err != nil {
				return err
			}
			return printManifest(cmd.OutOrStdout(), args[0], sum, fi.Size(), m)
		},
	}
	cmd.Flags().StringVar(&sum, "sha256", "", "pinned sha256 of the bundle file itself (e.g. from FILE.sha256), checked before any member is read")
	cmd.Flags().StringVar(&sum, "bundle-sha256", "", "same as --sha256 (the name `provision node base` uses)")
	return cmd
}

func printManifest(w io.Writer, file, sum string, size int64, m bundle.Manifest) error {
	fmt.Fprintf(w, "bundle %s: kubelet %s, %s, %s; %d bytes", file, m.KubeletVersion, m.OSProfile, m.Arch, size)
	if sum != "" {
		fmt.Fprintf(w, ", sha256 %s", sum)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tSHA256\tSOURCE")
	for _, e := range m.Artifacts {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", e.Name, e.Size, e.SHA256, e.Source)
	}
	return tw.Flush()
}
