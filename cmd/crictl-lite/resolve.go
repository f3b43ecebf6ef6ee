package main

import (
	"fmt"
	"slices"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// candidate is one object a user may name: by id, unique id prefix, or one
// of its names. Objects with the same identity are attempts of one thing
// (a pod's sandboxes, a container's restarts); a name picks the newest.
type candidate struct {
	id       string
	names    []string
	identity string
	created  int64
}

// pick resolves arg among items, in order: exact id, name, unique id prefix.
// A name or prefix that matches more than one thing is an error naming the
// choices, never a guess.
func pick(kind, arg string, items []candidate) (int, error) {
	if arg == "" {
		return -1, fmt.Errorf("no %s named", kind)
	}
	for i, c := range items {
		if c.id == arg {
			return i, nil
		}
	}
	var named []int
	for i, c := range items {
		if slices.Contains(c.names, arg) {
			named = append(named, i)
		}
	}
	if len(named) > 0 {
		return newest(kind, arg, items, named)
	}
	var prefixed []int
	for i, c := range items {
		if strings.HasPrefix(c.id, arg) || strings.HasPrefix(strings.TrimPrefix(c.id, "sha256:"), arg) {
			prefixed = append(prefixed, i)
		}
	}
	switch len(prefixed) {
	case 0:
		return -1, fmt.Errorf("no %s %q", kind, arg)
	case 1:
		return prefixed[0], nil
	}
	return -1, fmt.Errorf("ambiguous %s id prefix %q: matches %s", kind, arg, listIDs(items, prefixed))
}

// newest returns the newest of idx when they are attempts of one thing.
func newest(kind, arg string, items []candidate, idx []int) (int, error) {
	best := idx[0]
	for _, i := range idx[1:] {
		if items[i].identity != items[best].identity {
			return -1, fmt.Errorf("ambiguous %s name %q: matches %s", kind, arg, listIDs(items, idx))
		}
		if items[i].created > items[best].created {
			best = i
		}
	}
	return best, nil
}

func listIDs(items []candidate, idx []int) string {
	var ids []string
	for _, i := range idx {
		ids = append(ids, shortID(items[i].id))
	}
	return strings.Join(ids, ", ")
}

// shortID is the 13-character id crictl prints.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(13, len(id))]
}

// podCandidates: "name" and "namespace/name".
func podCandidates(pods []*runtimeapi.PodSandbox) []candidate {
	out := make([]candidate, len(pods))
	for i, p := range pods {
		md := p.GetMetadata()
		key := md.GetNamespace() + "/" + md.GetName()
		out[i] = candidate{id: p.Id, names: []string{md.GetName(), key}, identity: key, created: p.CreatedAt}
	}
	return out
}

// containerCandidates: "name", "pod/name" and "namespace/pod/name".
func containerCandidates(ctrs []*runtimeapi.Container, pods []*runtimeapi.PodSandbox) []candidate {
	byID := map[string]*runtimeapi.PodSandboxMetadata{}
	for _, p := range pods {
		byID[p.Id] = p.GetMetadata()
	}
	out := make([]candidate, len(ctrs))
	for i, c := range ctrs {
		name := c.GetMetadata().GetName()
		names := []string{name}
		if md, ok := byID[c.PodSandboxId]; ok {
			names = append(names, md.GetName()+"/"+name, md.GetNamespace()+"/"+md.GetName()+"/"+name)
		}
		out[i] = candidate{id: c.Id, names: names, identity: c.PodSandboxId + "/" + name, created: c.CreatedAt}
	}
	return out
}

// imageCandidates: tags and digests; ids match with or without "sha256:".
func imageCandidates(images []*runtimeapi.Image) []candidate {
	out := make([]candidate, len(images))
	for i, im := range images {
		names := append(slices.Clone(im.RepoTags), im.RepoDigests...)
		names = append(names, strings.TrimPrefix(im.Id, "sha256:"))
		out[i] = candidate{id: im.Id, names: names, identity: im.Id}
	}
	return out
}
