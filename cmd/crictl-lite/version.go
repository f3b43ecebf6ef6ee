package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func versionCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the runtime's name and version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.context()
			defer cancel()
			rt, err := g.runtime(ctx)
			if err != nil {
				return err
			}
			v, err := rt.Version(ctx, "v1")
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
