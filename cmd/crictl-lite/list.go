package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func podsCommand(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "pods",
		Short: "List pod sandboxes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.context()
			defer cancel()
			rt, err := g.runtime(ctx)
			if err != nil {
				return err
			}
			pods, err := rt.ListPodSandbox(ctx, nil)
			if err != nil {
				return err
			}
			slices.SortFunc(pods, func(a, b *runtimeapi.PodSandbox) int { return cmp.Compare(b.CreatedAt, a.CreatedAt) })
			if g.output != "table" {
				return printStructured(cmd.OutOrStdout(), g.output, &runtimeapi.ListPodSandboxResponse{Items: pods})
			}
			return printPods(cmd.OutOrStdout(), pods, time.Now())
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", true, "accepted for crictl compatibility: pods of every state are listed")
	return cmd
}

func printPods(w io.Writer, pods []*runtimeapi.PodSandbox, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POD ID\tCREATED\tSTATE\tNAME\tNAMESPACE\tATTEMPT\tRUNTIME")
	for _, p := range pods {
		md := p.GetMetadata()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", shortID(p.Id), age(p.CreatedAt, now),
			strings.TrimPrefix(p.State.String(), "SANDBOX_"), md.GetName(), md.GetNamespace(), md.GetAttempt(),
			cmp.Or(p.RuntimeHandler, "(default)"))
	}
	return tw.Flush()
}

func psCommand(g *globals) *cobra.Command {
	var all bool
	var podArg string
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List containers (running ones unless -a)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.context()
			defer cancel()
			rt, err := g.runtime(ctx)
			if err != nil {
				return err
			}
			filter := &runtimeapi.ContainerFilter{}
			if !all {
				filter.State = &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}
			}
			if podArg != "" {
				p, err := resolvePod(ctx, rt, podArg)
				if err != nil {
					return err
				}
				filter.PodSandboxId = p.Id
			}
			ctrs, err := rt.ListContainers(ctx, filter)
			if err != nil {
				return err
			}
			pods, err := rt.ListPodSandbox(ctx, nil)
			if err != nil {
				return err
			}
			slices.SortFunc(ctrs, func(a, b *runtimeapi.Container) int { return cmp.Compare(b.CreatedAt, a.CreatedAt) })
			if g.output != "table" {
				return printStructured(cmd.OutOrStdout(), g.output, &runtimeapi.ListContainersResponse{Containers: ctrs})
			}
			return printContainers(cmd.OutOrStdout(), ctrs, pods, time.Now())
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show containers of every state")
	cmd.Flags().StringVarP(&podArg, "pod", "p", "", "only containers of this pod (id, prefix, name or namespace/name)")
	return cmd
}

func printContainers(w io.Writer, ctrs []*runtimeapi.Container, pods []*runtimeapi.PodSandbox, now time.Time) error {
	names := map[string]string{}
	for _, p := range pods {
		names[p.Id] = p.GetMetadata().GetNamespace() + "/" + p.GetMetadata().GetName()
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER\tIMAGE\tCREATED\tSTATE\tNAME\tATTEMPT\tPOD ID\tPOD")
	for _, c := range ctrs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", shortID(c.Id), imageName(c), age(c.CreatedAt, now),
			strings.TrimPrefix(c.State.String(), "CONTAINER_"), c.GetMetadata().GetName(), c.GetMetadata().GetAttempt(),
			shortID(c.PodSandboxId), names[c.PodSandboxId])
	}
	return tw.Flush()
}

// imageName prefers the image as the user named it over the resolved id.
func imageName(c *runtimeapi.Container) string {
	if im := c.GetImage().GetUserSpecifiedImage(); im != "" {
		return im
	}
	if im := c.GetImage().GetImage(); im != "" && !strings.HasPrefix(im, "sha256:") {
		return im
	}
	return shortID(c.ImageRef)
}

func imagesCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "images",
		Short: "List images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.context()
			defer cancel()
			is, err := g.images(ctx)
			if err != nil {
				return err
			}
			images, err := is.ListImages(ctx, nil)
			if err != nil {
				return err
			}
			if g.output != "table" {
				return printStructured(cmd.OutOrStdout(), g.output, &runtimeapi.ListImagesResponse{Images: images})
			}
			return printImages(cmd.OutOrStdout(), images)
		},
	}
}

func printImages(w io.Writer, images []*runtimeapi.Image) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tTAG\tIMAGE ID\tSIZE\tPINNED")
	for _, im := range images {
		rows := 0
		for _, t := range im.RepoTags {
			repo, tag := splitTag(t)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\n", repo, tag, shortID(im.Id), humanBytes(int64(im.GetSize())), im.Pinned)
			rows++
		}
		if rows == 0 {
			repo := "<none>"
			if len(im.RepoDigests) > 0 {
				repo, _, _ = strings.Cut(im.RepoDigests[0], "@")
			}
			fmt.Fprintf(tw, "%s\t<none>\t%s\t%s\t%t\n", repo, shortID(im.Id), humanBytes(int64(im.GetSize())), im.Pinned)
		}
	}
	return tw.Flush()
}

// splitTag splits "host:port/repo:tag" at the tag's colon, not the port's.
func splitTag(ref string) (repo, tag string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, "<none>"
	}
	return ref[:i], ref[i+1:]
}

// age is crictl's "5 minutes ago" in a compact form.
func age(unixNano int64, now time.Time) string {
	if unixNano == 0 {
		return "-"
	}
	d := now.Sub(time.Unix(0, unixNano))
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
