package oci

import (
	"fmt"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/internal/reqlimits"
)

// ValidateConfig checks the parts of a container config that are stored as
// they are (name, labels, annotations, environment) before anything is
// created; the spec builder checks the rest. Errors are InvalidArgument
// naming the field.
func ValidateConfig(c *runtimeapi.ContainerConfig) error {
	if c.GetMetadata() == nil {
		return fmt.Errorf("config.metadata: required: %w", errdefs.ErrInvalidArgument)
	}
	if err := reqlimits.Name("config.metadata.name", c.GetMetadata().GetName()); err != nil {
		return err
	}
	if err := reqlimits.Metadata("config", c.GetLabels(), c.GetAnnotations()); err != nil {
		return err
	}
	n := 0
	for _, kv := range c.GetEnvs() {
		n += len(kv.GetKey()) + len(kv.GetValue()) + 2 // "=" and NUL in execve's block
	}
	return reqlimits.EnvSize("config.envs", n)
}
