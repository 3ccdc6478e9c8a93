package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/provision-dev/provision/generate"
	"github.com/provision-dev/provision/osprofiles"
)

func init() { subcommands = append(subcommands, newGenerateCmd) }

func newGenerateCmd() *cobra.Command {
	var (
		s          generate.Spec
		format     string
		configPath string
		output     string
		maxSize    int
	)
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write the userdata (cloud-init, Ignition or Butane) that turns a machine into a worker node",
		Long: `generate writes the userdata a machine boots with. It installs the cluster CA,
the bootstrap kubeconfig, the node config and a one-shot unit that downloads
provision (checking its pinned sha256) and runs "provision node".

Settings come from flags and/or --config FILE (a GenerateConfig document,
apiVersion provision.dev/v1alpha1); flags override the file. All problems are
reported at once; nothing is written on failure. The size report goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec := generate.Spec{}
			if configPath != "" {
				var err error
				if spec, err = generate.LoadConfig(configPath); err != nil {
					return err
				}
			}
			mergeGenerateFlags(cmd, &spec, s, format)
			out, err := generate.Render(spec, "")
			if err != nil {
				return err
			}
			sizes := generate.Sizes(out)
			fmt.Fprint(cmd.ErrOrStderr(), sizes.String())
			if maxSize > 0 && len(out) > maxSize {
				return fmt.Errorf("--max-size: the %s userdata is %d bytes, over the limit of %d; nothing written", generate.ResolvedFormat(spec), len(out), maxSize)
			}
			if output == "" || output == "-" {
				_, err := cmd.OutOrStdout().Write(out)
				return err
			}
			return writeOutputAtomic(output, out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&s.OS, "os", "", "OS profile, one of "+profileNames())
	f.StringVar(&format, "format", "", "userdata format: cloud-init, ignition or butane (default: the OS's own)")
	f.StringVar(&s.Arch, "arch", "amd64", "machine architecture: amd64 or arm64")
	f.StringVar(&s.KubeletVersion, "kubelet-version", "", "kubelet version, vMAJOR.MINOR.PATCH")
	f.StringVar(&s.APIServerURL, "apiserver-url", "", "https URL of the Kubernetes API server")
	f.StringVar(&s.TokenFile, "token-file", "", "file holding the bootstrap token ([a-z0-9]{6}.[a-z0-9]{16})")
	f.StringVar(&s.Token, "token", "", "the bootstrap token itself (prefer --token-file: argv is visible to other users)")
	f.StringVar(&s.CACertFile, "ca-cert", "", "file holding the cluster CA certificate (PEM)")
	f.StringVar(&s.CloudProvider, "cloud-provider", "", "cloud provider passed to the kubelet, e.g. external or openstack")
	f.StringVar(&s.CloudConfigFile, "cloud-config", "", "cloud provider config file, installed as /etc/kubernetes/cloud-config (0600)")
	f.StringVar(&s.Hostname, "hostname", "", "the node's hostname (RFC 1123)")
	f.StringArrayVar(&s.SSHAuthorizedKeys, "ssh-authorized-key", nil, "SSH public key for the OS's default user (repeatable)")
	f.StringVar(&s.ProvisionSource, "provision-source", "", "https URL of the provision binary the machine downloads")
	f.StringVar(&s.ProvisionSHA256, "provision-sha256", "", "sha256 of that binary, 64 hex digits (checked before it runs)")
	f.BoolVar(&s.AllowHTTPSource, "allow-http-source", false, "allow a plain http --provision-source (internal mirrors; the sha256 still protects it)")
	f.StringVar(&s.IgnitionVersion, "ignition-version", "", "Ignition spec for ignition/butane: 3.3, 3.4 (default) or 3.5")
	f.BoolVar(&s.Gzip, "gzip", false, "compress: the whole cloud-config, or each Ignition/Butane file where smaller")
	f.StringVar(&s.NodeIP, "node-ip", "", "the kubelet's --node-ip (default: the kubelet picks)")
	f.BoolVar(&s.Prebaked, "prebaked", false, "the image already ran `provision node base`: setup only joins, downloading nothing if the binary is present")
	f.IntVar(&maxSize, "max-size", 0, "fail (writing nothing) if the userdata is larger than this many bytes")
	f.StringVar(&configPath, "config", "", "GenerateConfig YAML file; flags override its settings")
	f.StringVarP(&output, "output", "o", "-", "output file (written atomically, mode 0600), - for stdout")
	return cmd
}

// mergeGenerateFlags applies the flags the user set over the config file's settings.
func mergeGenerateFlags(cmd *cobra.Command, spec *generate.Spec, flags generate.Spec, format string) {
	set := func(name string, apply func()) {
		if cmd.Flags().Changed(name) {
			apply()
		}
	}
	set("os", func() { spec.OS = flags.OS })
	set("format", func() { spec.Format = osprofiles.Format(format) })
	set("arch", func() { spec.Arch = flags.Arch })
	set("kubelet-version", func() { spec.KubeletVersion = flags.KubeletVersion })
	set("apiserver-url", func() { spec.APIServerURL = flags.APIServerURL })
	// A flag replaces the config's token source; both flags at once stay both,
	// so validation refuses them ("not both") instead of one silently winning.
	both := cmd.Flags().Changed("token") && cmd.Flags().Changed("token-file")
	set("token-file", func() { spec.TokenFile, spec.Token = flags.TokenFile, "" })
	set("token", func() {
		spec.Token = flags.Token
		if !both {
			spec.TokenFile = ""
		}
	})
	set("ca-cert", func() { spec.CACertFile, spec.CACert = flags.CACertFile, "" })
	set("cloud-provider", func() { spec.CloudProvider = flags.CloudProvider })
	set("cloud-config", func() { spec.CloudConfigFile, spec.CloudConfig = flags.CloudConfigFile, "" })
	set("hostname", func() { spec.Hostname = flags.Hostname })
	set("ssh-authorized-key", func() { spec.SSHAuthorizedKeys = flags.SSHAuthorizedKeys })
	set("provision-source", func() { spec.ProvisionSource = flags.ProvisionSource })
	set("provision-sha256", func() { spec.ProvisionSHA256 = flags.ProvisionSHA256 })
	set("allow-http-source", func() { spec.AllowHTTPSource = flags.AllowHTTPSource })
	set("ignition-version", func() { spec.IgnitionVersion = flags.IgnitionVersion })
	set("gzip", func() { spec.Gzip = flags.Gzip })
	set("node-ip", func() { spec.NodeIP = flags.NodeIP })
	set("prebaked", func() { spec.Prebaked = flags.Prebaked })
}

func profileNames() string { return strings.Join(osprofiles.Names(), ", ") }

// writeOutputAtomic writes data to a 0600 temp file in path's directory and renames it
// over path, so path holds either its old contents or all of data.
func writeOutputAtomic(path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
