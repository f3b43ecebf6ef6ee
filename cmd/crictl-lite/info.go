package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/yaml"
)

func infoCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show runtime and network readiness, handlers and configuration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st *runtimeapi.StatusResponse
			err := g.withRuntime(func(ctx context.Context, rt internalapi.RuntimeService) (err error) {
				st, err = rt.Status(ctx, true)
				return err
			})
			if err != nil {
				return err
			}
			if g.output != "table" {
				return printStructured(cmd.OutOrStdout(), g.output, st)
			}
			return printStatusTable(cmd.OutOrStdout(), st)
		},
	}
}

func printStatusTable(w io.Writer, st *runtimeapi.StatusResponse) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONDITION\tSTATUS\tREASON\tMESSAGE")
	for _, c := range st.GetStatus().GetConditions() {
		fmt.Fprintf(tw, "%s\t%t\t%s\t%s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "HANDLER\tUSER NAMESPACES\tRECURSIVE RO MOUNTS")
	for _, h := range st.GetRuntimeHandlers() {
		name := h.Name
		if name == "" {
			name = "(default)"
		}
		fmt.Fprintf(tw, "%s\t%t\t%t\n", name, h.GetFeatures().GetUserNamespaces(), h.GetFeatures().GetRecursiveReadOnlyMounts())
	}
	keys := make([]string, 0, len(st.Info))
	for k := range st.Info {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintln(tw)
	for _, k := range keys {
		fmt.Fprintf(tw, "%s:\t%s\n", k, st.Info[k])
	}
	return tw.Flush()
}

// printStructured prints a CRI message as JSON or YAML.
func printStructured(w io.Writer, format string, m proto.Message) error {
	raw, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return err
	}
	switch format {
	case "json":
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		out, _ := json.MarshalIndent(v, "", "  ")
		_, err = fmt.Fprintln(w, string(out))
		return err
	case "yaml":
		out, err := yaml.JSONToYAML(raw)
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	}
	return fmt.Errorf("--output %q: want table, json or yaml", format)
}

// printValue prints a plain Go value (not a CRI message) as JSON or YAML.
func printValue(w io.Writer, format string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	switch format {
	case "json":
		_, err = fmt.Fprintln(w, string(raw))
		return err
	case "yaml":
		out, err := yaml.JSONToYAML(raw)
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	}
	return fmt.Errorf("--output %q: want table, json or yaml", format)
}
