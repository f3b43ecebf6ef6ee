package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func versionCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the runtime's name and version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var v *runtimeapi.VersionResponse
			err := g.withRuntime(func(ctx context.Context, rt internalapi.RuntimeService) (err error) {
				v, err = rt.Version(ctx, "v1")
				return err
			})
			if err != nil {
				return err
			}
			if g.output != "table" {
				return printStructured(cmd.OutOrStdout(), g.output, v)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Version:  %s\n", v.Version)
			fmt.Fprintf(w, "RuntimeName:  %s\n", v.RuntimeName)
			fmt.Fprintf(w, "RuntimeVersion:  %s\n", v.RuntimeVersion)
			fmt.Fprintf(w, "RuntimeApiVersion:  %s\n", v.RuntimeApiVersion)
			return nil
		},
	}
}
