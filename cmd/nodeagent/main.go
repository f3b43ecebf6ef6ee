// Command nodeagent is the node agent daemon: it serves the Kubernetes CRI
// RuntimeService and ImageService on a unix socket.
package main

import (
	goflag "flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/internal/config"
	"github.com/nodeagent/nodeagent/internal/nsutil"
	"github.com/nodeagent/nodeagent/internal/pause"
	"github.com/nodeagent/nodeagent/internal/version"
	"github.com/nodeagent/nodeagent/oci/shim"
)

func main() {
	// Re-exec entry points dispatch before anything else runs.
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "shim":
			os.Exit(shim.Main(os.Args[2:]))
		case "pause":
			os.Exit(pause.Main())
		case nsutil.HelperArg:
			os.Exit(nsutil.HelperMain(os.Args[2:]))
		}
	}
	if err := rootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "nodeagent:", err)
		os.Exit(1)
	}
}

// flags are the command-line overrides of the configuration file.
type flags struct {
	config       string
	socket       string
	root         string
	state        string
	cniConfDir   string
	cniBinDir    string
	cgroupDriver string
	mirrors      []string
}

func rootCommand() *cobra.Command {
	var f flags
	cmd := &cobra.Command{
		Use:           "nodeagent",
		Short:         "Kubernetes node agent: a CRI runtime",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, f)
			if err != nil {
				return err
			}
			return runDaemon(cfg)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.config, "config", config.DefaultPath, "configuration file (absent = embedded defaults)")
	fs.StringVar(&f.socket, "socket", "", "CRI unix socket (overrides config \"socket\")")
	fs.StringVar(&f.root, "root", "", "persistent data directory (overrides config \"root\")")
	fs.StringVar(&f.state, "state", "", "volatile state directory (overrides config \"state\")")
	fs.StringVar(&f.cniConfDir, "cni-conf-dir", "", "CNI network configuration directory")
	fs.StringVar(&f.cniBinDir, "cni-bin-dir", "", "colon-separated CNI plugin directories, like PATH")
	fs.StringVar(&f.cgroupDriver, "cgroup-driver", "", "cgroup driver: cgroupfs or systemd (default: detect)")
	fs.StringArrayVar(&f.mirrors, "registry-mirror", nil, "HOST=URL: pull HOST/repo:tag from URL/v2/repo/manifests/tag first (repeatable)")
	klogFlags := goflag.NewFlagSet("klog", goflag.ExitOnError)
	klog.InitFlags(klogFlags)
	fs.AddGoFlag(klogFlags.Lookup("v"))
	fs.AddGoFlag(klogFlags.Lookup("vmodule"))
	cmd.AddCommand(configCommand())
	return cmd
}

func configCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Configuration helpers"}
	cmd.AddCommand(&cobra.Command{
		Use:   "default",
		Short: "Print the full commented default configuration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(config.DefaultTOML())
			return err
		},
	})
	return cmd
}

// loadConfig layers the file, its drop-ins and the flags, then validates.
func loadConfig(cmd *cobra.Command, f flags) (*config.Config, error) {
	cfg, err := config.Load(f.config, cmd.Flags().Changed("config"))
	if err != nil {
		return nil, err
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cfg.Socket, f.socket)
	set(&cfg.Root, f.root)
	set(&cfg.State, f.state)
	set(&cfg.CNI.ConfDir, f.cniConfDir)
	if f.cniBinDir != "" {
		cfg.CNI.BinDirs = splitPath(f.cniBinDir)
	}
	if f.cgroupDriver != "" {
		if err := cfg.CgroupDriver.UnmarshalText([]byte(f.cgroupDriver)); err != nil {
			return nil, fmt.Errorf("--cgroup-driver: %w", err)
		}
	}
	for _, m := range f.mirrors {
		if err := cfg.AddMirror(m); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	return cfg, nil
}

func splitPath(s string) []string {
	var out []string
	for _, p := range filepath.SplitList(s) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}
