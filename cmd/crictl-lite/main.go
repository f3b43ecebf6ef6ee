// Command crictl-lite is nodeagent's pod-aware debug CLI. It talks CRI (and
// nodeagent's debug service, internal/debugapi) over the daemon's socket, like
// crictl.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	internalapi "k8s.io/cri-api/pkg/apis"
	criclient "k8s.io/cri-client/pkg"
	"sigs.k8s.io/yaml"
)

const defaultEndpoint = "unix:///run/nodeagent/nodeagent.sock"

// globals are the flags every command shares.
type globals struct {
	endpoint string
	timeout  time.Duration
	output   string
}

func main() {
	if err := rootCommand().Execute(); err != nil {
		var exit exitError
		if errors.As(err, &exit) {
			os.Exit(exit.code)
		}
		// One line, no stack: scripts read the exit code.
		fmt.Fprintln(os.Stderr, "crictl-lite:", oneLine(err))
		os.Exit(1)
	}
}

func rootCommand() *cobra.Command {
	g := &globals{}
	cmd := &cobra.Command{
		Use:           "crictl-lite",
		Short:         "Debug CLI for nodeagent (and any CRI runtime)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := cmd.PersistentFlags()
	pf.StringVarP(&g.endpoint, "endpoint", "r", "", "CRI endpoint (default: $CONTAINER_RUNTIME_ENDPOINT, /etc/crictl.yaml, "+defaultEndpoint+")")
	pf.DurationVar(&g.timeout, "timeout", 10*time.Second, "timeout of each call")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table, json or yaml")
	cmd.AddCommand(versionCommand(g), infoCommand(g),
		podsCommand(g), psCommand(g), imagesCommand(g), pullCommand(g), rmiCommand(g),
		inspectCommand(g), inspectpCommand(g), inspectiCommand(g),
		logsCommand(g), execCommand(g), statsCommand(g),
		whyCommand(g), doctorCommand(g), debugCommand(g))
	return cmd
}

// resolveEndpoint follows crictl: flag, then environment, then /etc/crictl.yaml.
func (g *globals) resolveEndpoint() string {
	if g.endpoint != "" {
		return g.endpoint
	}
	if e := os.Getenv("CONTAINER_RUNTIME_ENDPOINT"); e != "" {
		return e
	}
	if raw, err := os.ReadFile("/etc/crictl.yaml"); err == nil {
		var c struct {
			RuntimeEndpoint string `json:"runtime-endpoint"`
		}
		if yaml.Unmarshal(raw, &c) == nil && c.RuntimeEndpoint != "" {
			return c.RuntimeEndpoint
		}
	}
	return defaultEndpoint
}

func (g *globals) runtime(ctx context.Context) (internalapi.RuntimeService, error) {
	ep, err := g.reachable()
	if err != nil {
		return nil, err
	}
	return criclient.NewRemoteRuntimeServiceBuilder().
		WithEndpoint(ep).
		WithConnectionTimeout(g.timeout).
		WithTracerProvider(nil).
		Build(ctx)
}

// withRuntime runs fn with a runtime client, under one call timeout.
func (g *globals) withRuntime(fn func(context.Context, internalapi.RuntimeService) error) error {
	ctx, cancel := g.context()
	defer cancel()
	rt, err := g.runtime(ctx)
	if err != nil {
		return err
	}
	return fn(ctx, rt)
}

func (g *globals) context() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), g.timeout)
}

// oneLine keeps the first line of an error, dropping gRPC's "rpc error:" noise.
func oneLine(err error) string {
	s := err.Error()
	if i := strings.Index(s, "desc = "); i >= 0 {
		s = s[i+len("desc = "):]
	}
	first, _, _ := strings.Cut(s, "\n")
	return first
}
