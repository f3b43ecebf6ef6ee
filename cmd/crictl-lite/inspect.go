package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/yaml"
)

func inspectCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect CONTAINER",
		Short: "Show a container's verbose status (JSON unless -o yaml)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRuntime(func(ctx context.Context, rt internalapi.RuntimeService) error {
				c, err := resolveContainer(ctx, rt, args[0])
				if err != nil {
					return err
				}
				st, err := rt.ContainerStatus(ctx, c.Id, true)
				if err != nil {
					return err
				}
				return printInspect(cmd.OutOrStdout(), g.output, st)
			})
		},
	}
}

func inspectpCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspectp POD",
		Short: "Show a pod's verbose status (JSON unless -o yaml)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withRuntime(func(ctx context.Context, rt internalapi.RuntimeService) error {
				p, err := resolvePod(ctx, rt, args[0])
				if err != nil {
					return err
				}
				st, err := rt.PodSandboxStatus(ctx, p.Id, true)
				if err != nil {
					return err
				}
				return printInspect(cmd.OutOrStdout(), g.output, st)
			})
		},
	}
}

func inspectiCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspecti IMAGE",
		Short: "Show an image's verbose status (JSON unless -o yaml)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.context()
			defer cancel()
			is, err := g.images(ctx)
			if err != nil {
				return err
			}
			im, err := resolveImage(ctx, is, args[0])
			if err != nil {
				return err
			}
			st, err := is.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: im.Id}, true)
			if err != nil {
				return err
			}
			return printInspect(cmd.OutOrStdout(), g.output, st)
		},
	}
}

// printInspect prints a verbose status; the values of its "info" map are
// JSON documents themselves and are printed as objects, as crictl does.
func printInspect(w io.Writer, format string, m proto.Message) error {
	raw, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return err
	}
	if info, ok := doc["info"].(map[string]any); ok {
		for k, v := range info {
			var parsed any
			if s, ok := v.(string); ok && json.Unmarshal([]byte(s), &parsed) == nil {
				info[k] = parsed
			}
		}
	}
	switch format {
	case "yaml":
		out, err := yaml.Marshal(doc)
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	case "json", "table":
		out, _ := json.MarshalIndent(doc, "", "  ")
		_, err = fmt.Fprintln(w, string(out))
		return err
	}
	return fmt.Errorf("--output %q: want table, json or yaml", format)
}
