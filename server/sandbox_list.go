package server

import (
	"context"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/sandbox"
)

// ListPodSandbox lists sandboxes from memory, filtered by id (or id prefix),
// state and labels.
func (s *Server) ListPodSandbox(_ context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	return &runtimeapi.ListPodSandboxResponse{Items: s.listSandboxes(req.GetFilter())}, nil
}

// streamBatch is how many items a Stream* RPC sends per message.
const streamBatch = 100

// StreamPodSandboxes is ListPodSandbox in batches.
func (s *Server) StreamPodSandboxes(req *runtimeapi.StreamPodSandboxesRequest, stream runtimeapi.RuntimeService_StreamPodSandboxesServer) error {
	return sendBatches(s.listSandboxes(req.GetFilter()), func(batch []*runtimeapi.PodSandbox) error {
		return stream.Send(&runtimeapi.StreamPodSandboxesResponse{PodSandboxes: batch})
	})
}

// sendBatches sends items streamBatch at a time: at least one message, so a
// client always sees a response before EOF.
func sendBatches[T any](items []T, send func([]T) error) error {
	for start := 0; ; start += streamBatch {
		end := min(start+streamBatch, len(items))
		if err := send(items[start:end]); err != nil {
			return err
		}
		if end == len(items) {
			return nil
		}
	}
}

func (s *Server) listSandboxes(f *runtimeapi.PodSandboxFilter) []*runtimeapi.PodSandbox {
	var out []*runtimeapi.PodSandbox
	for _, r := range s.sandboxes.List() {
		if !sandboxMatches(r, f) {
			continue
		}
		out = append(out, &runtimeapi.PodSandbox{
			Id: r.ID, Metadata: r.Config.GetMetadata(), State: sandboxState(r.State), CreatedAt: r.CreatedAt,
			Labels: r.Config.GetLabels(), Annotations: r.Config.GetAnnotations(), RuntimeHandler: r.RuntimeHandler,
		})
	}
	return out
}

func sandboxMatches(r sandbox.Record, f *runtimeapi.PodSandboxFilter) bool {
	if f == nil {
		return true
	}
	if f.Id != "" && !strings.HasPrefix(r.ID, f.Id) {
		return false
	}
	if f.State != nil && f.State.State != sandboxState(r.State) {
		return false
	}
	return labelsMatch(r.Config.GetLabels(), f.LabelSelector)
}

// labelsMatch: every selector label must be present with the same value.
func labelsMatch(labels, selector map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
