package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/provision-dev/provision/api/v1alpha1"
	"github.com/provision-dev/provision/generate"
	"github.com/provision-dev/provision/osprofiles"
)

func init() { subcommands = append(subcommands, newGenerateCmd) }

func newGenerateCmd() *cobra.Command {
	var (
		flags      v1alpha1.GenerateConfig
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
reported at once; nothing is written on failure. The size report, and a warning
for a kubelet minor that is no longer supported upstream, go to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec := v1alpha1.GenerateConfig{}
			if configPath != "" {
				var err error
				if spec, err = generate.LoadConfig(configPath); err != nil {
					return err
				}
			}
			generate.MergeFlags(&spec, &flags, cmd.Flags().Changed)
			out, err := generate.Render(spec, "")
			if err != nil {
				return err
			}
			for _, w := range generate.Warnings(spec) {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+w)
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
	bindGenerateFlags(f, &flags)
	f.IntVar(&maxSize, "max-size", 0, "fail (writing nothing) if the userdata is larger than this many bytes")
	f.StringVar(&configPath, "config", "", "GenerateConfig YAML file; flags override its settings")
	f.StringVarP(&output, "output", "o", "-", "output file (written atomically, mode 0600), - for stdout")
	return cmd
}

// bindGenerateFlags registers every flag of generate's field-to-flag table,
// bound to its GenerateConfig field in c.
func bindGenerateFlags(fs *pflag.FlagSet, c *v1alpha1.GenerateConfig) {
	for _, fl := range generate.Flags {
		name := strings.TrimPrefix(fl.Name, "--")
		switch p := fl.Target(c).(type) {
		case *string:
			fs.StringVar(p, name, "", fl.Usage)
		case *bool:
			fs.BoolVar(p, name, false, fl.Usage)
		case *[]string:
			fs.StringArrayVar(p, name, nil, fl.Usage)
		case *map[string]string:
			fs.StringToStringVar(p, name, nil, fl.Usage)
		case *osprofiles.Format:
			fs.StringVar((*string)(p), name, "", fl.Usage)
		default:
			panic(fmt.Sprintf("generate flag %s: field %s has no flag type", fl.Name, fl.Field))
		}
	}
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
