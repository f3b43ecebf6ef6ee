package oci

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestValidateConfig(t *testing.T) {
	env := func(n int, size int) []*runtimeapi.KeyValue {
		var out []*runtimeapi.KeyValue
		for i := range n {
			out = append(out, &runtimeapi.KeyValue{Key: "K" + strings.Repeat("x", i%7), Value: []byte(strings.Repeat("v", size))})
		}
		return out
	}
	cases := []struct {
		name string
		cfg  *runtimeapi.ContainerConfig
		want string // "" = valid
	}{
		{"valid", &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Envs: env(100, 1000)}, ""},
		{"no metadata", &runtimeapi.ContainerConfig{}, "config.metadata"},
		{"no name", &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{}}, "config.metadata.name"},
		{"slash", &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "a/b"}}, "'/'"},
		{"NUL", &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "a\x00"}}, "control"},
		{"huge env", &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Envs: env(2, 600<<10)}, "config.envs"},
		{"huge labels", &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"},
			Labels: map[string]string{"x": strings.Repeat("l", 513<<10)}}, "config.labels"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateConfig(tc.cfg)
			if tc.want == "" {
				if err != nil {
					t.Errorf("ValidateConfig = %v, want nil", err)
				}
				return
			}
			if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ValidateConfig = %v, want InvalidArgument mentioning %q", err, tc.want)
			}
		})
	}
}
