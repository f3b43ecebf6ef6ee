package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/internal/debugapi"
)

// logLinesOfFailed is how many last log lines `why` shows per failed container.
const logLinesOfFailed = 10

// whyReport is everything `why` knows about one pod.
type whyReport struct {
	Pod        string          `json:"pod"` // namespace/name
	ID         string          `json:"id,omitempty"`
	State      string          `json:"state"`
	Created    time.Time       `json:"created,omitzero"`
	IPs        []string        `json:"ips,omitempty"`
	Network    string          `json:"network,omitempty"`
	CNIResult  json.RawMessage `json:"cniResult,omitempty"`
	Calls      []debugapi.Call `json:"calls,omitempty"`
	Containers []whyContainer  `json:"containers,omitempty"`
	Pulls      []debugapi.Pull `json:"pulls,omitempty"`
	Notes      []string        `json:"notes,omitempty"`
}

type whyContainer struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Image    string   `json:"image"`
	State    string   `json:"state"`
	ExitCode int32    `json:"exitCode"`
	Reason   string   `json:"reason,omitempty"`
	Message  string   `json:"message,omitempty"`
	Cgroup   string   `json:"cgroup,omitempty"`
	LastLogs []string `json:"lastLogs,omitempty"`
}

// failed: exited with a non-zero code or a reason other than Completed.
func (c whyContainer) failed() bool {
	return c.State == "EXITED" && (c.ExitCode != 0 || (c.Reason != "" && c.Reason != "Completed"))
}

func whyCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "why POD",
		Short: "Explain a pod: state, recent CRI calls and errors, network, pulls, exits and last logs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.context()
			defer cancel()
			r, err := g.gatherWhy(ctx, args[0])
			if err != nil {
				return err
			}
			if g.output == "table" {
				printWhy(cmd.OutOrStdout(), r, time.Now())
				return nil
			}
			return printValue(cmd.OutOrStdout(), g.output, r)
		},
	}
}

func (g *globals) gatherWhy(ctx context.Context, arg string) (*whyReport, error) {
	rt, err := g.runtime(ctx)
	if err != nil {
		return nil, err
	}
	dc, closeConn, err := g.debug()
	if err != nil {
		return nil, err
	}
	defer closeConn()
	r := &whyReport{}
	p, err := resolvePod(ctx, rt, arg)
	if err != nil {
		// A pod whose RunPodSandbox failed has no sandbox, but the daemon
		// filed its calls under namespace/name.
		if !strings.Contains(arg, "/") {
			return nil, err
		}
		r.Pod, r.State = arg, "not created"
		h, herr := dc.CallHistory(ctx, arg)
		if herr != nil || len(h.Calls) == 0 {
			return nil, err
		}
		r.Calls = h.Calls
		return r, nil
	}
	md := p.GetMetadata()
	r.Pod, r.ID = md.GetNamespace()+"/"+md.GetName(), p.Id
	r.State, r.Created = strings.TrimPrefix(p.State.String(), "SANDBOX_"), time.Unix(0, p.CreatedAt)
	if st, err := rt.PodSandboxStatus(ctx, p.Id, true); err == nil {
		r.IPs = podIPs(st.GetStatus().GetNetwork())
		var info struct {
			Network   string          `json:"network"`
			CNIResult json.RawMessage `json:"cniResult"`
		}
		if json.Unmarshal([]byte(st.GetInfo()["info"]), &info) == nil {
			r.Network, r.CNIResult = info.Network, info.CNIResult
		}
	}
	var owned *debugapi.OwnedResponse
	if err := g.gatherDebug(ctx, dc, r, &owned); err != nil {
		r.Notes = append(r.Notes, err.Error())
	}
	ctrs, err := rt.ListContainers(ctx, &runtimeapi.ContainerFilter{PodSandboxId: p.Id})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ctrs, func(a, b *runtimeapi.Container) int { return cmp.Compare(a.CreatedAt, b.CreatedAt) })
	for _, c := range ctrs {
		wc := whyContainer{ID: c.Id, Name: c.GetMetadata().GetName(), Image: imageName(c), State: strings.TrimPrefix(c.State.String(), "CONTAINER_")}
		st, err := rt.ContainerStatus(ctx, c.Id, false)
		if err == nil {
			s := st.GetStatus()
			wc.ExitCode, wc.Reason, wc.Message = s.ExitCode, s.Reason, s.Message
			if wc.failed() && s.LogPath != "" {
				wc.LastLogs = lastLogLines(s.LogPath, logLinesOfFailed)
			}
		}
		if wc.Reason == "OOMKilled" && owned != nil {
			for _, oc := range owned.Containers {
				if oc.ID == c.Id {
					wc.Cgroup = oc.CgroupsPath
				}
			}
		}
		r.Containers = append(r.Containers, wc)
	}
	return r, nil
}

// gatherDebug adds what only nodeagent's debug service knows; against
// another runtime it adds a note instead.
func (g *globals) gatherDebug(ctx context.Context, dc *debugapi.Client, r *whyReport, owned **debugapi.OwnedResponse) error {
	h, err := dc.CallHistory(ctx, r.ID)
	if isUnimplemented(err) {
		return fmt.Errorf("this runtime has no nodeagent debug service: no call history or pull progress")
	}
	if err != nil {
		return err
	}
	r.Calls = h.Calls
	// RunPodSandbox calls that failed before this sandbox existed.
	if byName, err := dc.CallHistory(ctx, r.Pod); err == nil {
		for _, c := range byName.Calls {
			if c.Code != "OK" {
				r.Calls = append(r.Calls, c)
			}
		}
		slices.SortStableFunc(r.Calls, func(a, b debugapi.Call) int { return a.Time.Compare(b.Time) })
	}
	if pp, err := dc.PullProgress(ctx); err == nil {
		r.Pulls = pp.Pulls
	}
	if o, err := dc.Owned(ctx); err == nil {
		*owned = o
	}
	return nil
}

func podIPs(n *runtimeapi.PodSandboxNetworkStatus) []string {
	if n.GetIp() == "" {
		return nil
	}
	ips := []string{n.GetIp()}
	for _, ip := range n.GetAdditionalIps() {
		ips = append(ips, ip.GetIp())
	}
	return ips
}

func lastLogLines(path string, n int) []string {
	var out []string
	var buf strings.Builder
	w := logWriter{stdout: &buf, stderr: &buf}
	if _, err := printLogFile(path, logOptions{tail: n}, w); err != nil {
		return []string{"(" + err.Error() + ")"}
	}
	for l := range strings.SplitSeq(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// verdict is the one line that answers "why": the first thing wrong.
func (r *whyReport) verdict() string {
	for _, c := range r.Containers {
		if c.failed() {
			s := fmt.Sprintf("container %s exited with code %d", c.Name, c.ExitCode)
			if c.Reason != "" {
				s += " (" + c.Reason + ")"
			}
			return s
		}
	}
	for i := len(r.Calls) - 1; i >= 0; i-- {
		if c := r.Calls[i]; c.Code != "OK" {
			return fmt.Sprintf("%s failed: %s: %s", c.Method, c.Code, c.Error)
		}
	}
	if len(r.Pulls) > 0 {
		return "image pulls in progress"
	}
	if r.State == "READY" {
		return "nothing wrong found"
	}
	return "pod is " + r.State
}

func printWhy(w io.Writer, r *whyReport, now time.Time) {
	fmt.Fprintf(w, "Pod %s", r.Pod)
	if r.ID != "" {
		fmt.Fprintf(w, " (%s)", shortID(r.ID))
	}
	fmt.Fprintf(w, ": %s\n", r.State)
	fmt.Fprintf(w, "Verdict: %s\n", r.verdict())
	if !r.Created.IsZero() {
		fmt.Fprintf(w, "Created: %s ago\n", now.Sub(r.Created).Round(time.Second))
	}
	if r.Network != "" || len(r.IPs) > 0 {
		fmt.Fprintf(w, "Network: %s  IPs: %s\n", cmp.Or(r.Network, "-"), cmp.Or(strings.Join(r.IPs, ", "), "-"))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
	if len(r.Containers) > 0 {
		fmt.Fprintln(w, "\nContainers:")
		for _, c := range r.Containers {
			fmt.Fprintf(w, "  %s  %-10s %-8s", shortID(c.ID), c.Name, c.State)
			if c.State == "EXITED" {
				fmt.Fprintf(w, " exit=%d", c.ExitCode)
			}
			if c.Reason != "" {
				fmt.Fprintf(w, " reason=%s", c.Reason)
			}
			if c.Cgroup != "" {
				fmt.Fprintf(w, " cgroup=%s", c.Cgroup)
			}
			fmt.Fprintf(w, "  image=%s\n", c.Image)
			if c.Message != "" {
				fmt.Fprintf(w, "      message: %s\n", firstLine(c.Message))
			}
			for _, l := range c.LastLogs {
				fmt.Fprintf(w, "      | %s\n", l)
			}
		}
	}
	if len(r.Calls) > 0 {
		fmt.Fprintln(w, "\nRecent CRI calls:")
		for _, c := range r.Calls {
			fmt.Fprintf(w, "  %s  %-24s %-18s %10s", c.Time.Format("15:04:05.000"), c.Method, c.Code, c.Duration.Round(time.Microsecond))
			if c.Error != "" {
				fmt.Fprintf(w, "  %s", firstLine(c.Error))
			}
			fmt.Fprintln(w)
		}
	}
	if len(r.Pulls) > 0 {
		fmt.Fprintln(w, "\nPulls in progress:")
		for _, l := range renderPull(r.Pulls, "", map[string]sample{}, now) {
			fmt.Fprintln(w, "  "+l)
		}
	}
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
