package main

import (
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func pod(id, ns, name string, created int64) *runtimeapi.PodSandbox {
	return &runtimeapi.PodSandbox{Id: id, CreatedAt: created, Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: ns}}
}

func TestPickPod(t *testing.T) {
	pods := []*runtimeapi.PodSandbox{
		pod("abc111", "default", "web", 1),
		pod("abc222", "default", "web", 2), // a newer attempt of default/web
		pod("abd333", "kube-system", "web", 3),
		pod("ffff44", "kube-system", "dns", 4),
	}
	tests := []struct {
		arg, want, err string
	}{
		{arg: "abc111", want: "abc111"},
		{arg: "ff", want: "ffff44"},
		{arg: "dns", want: "ffff44"},
		{arg: "default/web", want: "abc222"},
		{arg: "kube-system/web", want: "abd333"},
		{arg: "web", err: "ambiguous pod name"},
		{arg: "ab", err: "ambiguous pod id prefix \"ab\": matches abc111, abc222, abd333"},
		{arg: "zzz", err: `no pod "zzz"`},
		{arg: "", err: "no pod named"},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			i, err := pick("pod", tt.arg, podCandidates(pods))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("pick(%q) error = %v, want %q", tt.arg, err, tt.err)
				}
				return
			}
			if err != nil || pods[i].Id != tt.want {
				t.Fatalf("pick(%q) = %d, %v; want %s", tt.arg, i, err, tt.want)
			}
		})
	}
}

func TestPickContainer(t *testing.T) {
	pods := []*runtimeapi.PodSandbox{pod("p1", "default", "web", 1), pod("p2", "default", "db", 1)}
	ctr := func(id, podID, name string, created int64) *runtimeapi.Container {
		return &runtimeapi.Container{Id: id, PodSandboxId: podID, CreatedAt: created, Metadata: &runtimeapi.ContainerMetadata{Name: name}}
	}
	ctrs := []*runtimeapi.Container{
		ctr("c1", "p1", "app", 1), ctr("c2", "p1", "app", 2), ctr("c3", "p2", "app", 1), ctr("d4", "p2", "sidecar", 1),
	}
	tests := []struct{ arg, want, err string }{
		{arg: "web/app", want: "c2"},
		{arg: "default/db/app", want: "c3"},
		{arg: "sidecar", want: "d4"},
		{arg: "app", err: "ambiguous container name"},
		{arg: "c", err: "ambiguous container id prefix"},
		{arg: "d", want: "d4"},
	}
	for _, tt := range tests {
		i, err := pick("container", tt.arg, containerCandidates(ctrs, pods))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("pick(%q) error = %v, want %q", tt.arg, err, tt.err)
			}
			continue
		}
		if err != nil || ctrs[i].Id != tt.want {
			t.Errorf("pick(%q) = %d, %v; want %s", tt.arg, i, err, tt.want)
		}
	}
}

func TestPickImage(t *testing.T) {
	images := []*runtimeapi.Image{
		{Id: "sha256:aaaa1111", RepoTags: []string{"docker.io/library/busybox:1.36"}},
		{Id: "sha256:aaab2222", RepoDigests: []string{"registry.k8s.io/pause@sha256:0123"}},
	}
	tests := []struct{ arg, want, err string }{
		{arg: "docker.io/library/busybox:1.36", want: "sha256:aaaa1111"},
		{arg: "registry.k8s.io/pause@sha256:0123", want: "sha256:aaab2222"},
		{arg: "aaab2222", want: "sha256:aaab2222"},
		{arg: "sha256:aaaa", want: "sha256:aaaa1111"},
		{arg: "aaaa", want: "sha256:aaaa1111"},
		{arg: "sha256:aaa", err: "ambiguous image id prefix"},
	}
	for _, tt := range tests {
		i, err := pick("image", tt.arg, imageCandidates(images))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("pick(%q) error = %v, want %q", tt.arg, err, tt.err)
			}
			continue
		}
		if err != nil || images[i].Id != tt.want {
			t.Errorf("pick(%q) = %d, %v; want %s", tt.arg, i, err, tt.want)
		}
	}
}
