package testregistry

import (
	"archive/tar"
	"context"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

const (
	e2e     = "registry.k8s.io/e2e-test-images/"
	staging = "gcr.io/k8s-staging-cri-tools/"
	ecr     = "public.ecr.aws/docker/library/busybox:"
	pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// critestLayers builds, by name, the layers critest's images are made of.
func critestLayers(ctx context.Context, deb string) (map[string]v1.Layer, error) {
	busybox, err := busyboxTree(ctx, deb)
	if err != nil {
		return nil, err
	}
	nnp, err := goBinary(ctx, "nnp")
	if err != nil {
		return nil, err
	}
	pause, err := goBinary(ctx, "pause")
	if err != nil {
		return nil, err
	}
	trees := map[string]tree{
		"base":          busybox,
		"nginx":         nginxTree(80),
		"hostnet-nginx": nginxTree(12003),
		"httpd":         httpdTree(),
		"nnp":           {"usr/local/bin/nnp": {typ: tar.TypeReg, mode: 0o4755, data: nnp}},
		"pause":         {"pause": {typ: tar.TypeReg, mode: 0o755, data: pause}},
		"groups":        predefinedGroupTree(),
	}
	for _, marker := range []string{"test-image-1", "test-image-2", "test-image-3"} {
		trees[marker] = tree{marker: {typ: tar.TypeReg, mode: 0o644, data: []byte(marker + "\n")}}
	}
	layers := map[string]v1.Layer{}
	for name, t := range trees {
		if layers[name], err = treeLayer(t); err != nil {
			return nil, err
		}
	}
	return layers, nil
}

// critestSpecs lists every image critest v1.36.0 pulls (cri-tools
// pkg/validate/consts.go and friends, pkg/benchmark/image.go), plus
// registry.k8s.io/pause:3.10, the sandbox image of a containerd run side by
// side, made of critestLayers. One line per image.
func critestSpecs(l map[string]v1.Layer) []imageSpec {
	base := []v1.Layer{l["base"]}
	on := func(name string) []v1.Layer { return []v1.Layer{l["base"], l[name]} }
	shell := v1.Config{Env: []string{pathEnv}, Cmd: []string{"sh"}}
	user := func(u string) v1.Config { c := shell; c.User = u; return c }
	pauseConfig := v1.Config{Env: []string{pathEnv}, Entrypoint: []string{"/pause"}, WorkingDir: "/", User: "65535:65535"}

	return []imageSpec{
		{refs: []string{e2e + "busybox:1.29-2"}, layers: base, config: shell, index: true},
		{refs: []string{"docker.io/library/busybox:1.37.0", "docker.io/library/busybox:latest"}, layers: base, config: shell, index: true},
		{refs: []string{e2e + "nginx:1.14-2"}, layers: on("nginx"), index: true,
			config: v1.Config{Env: []string{pathEnv}, Cmd: []string{"nginx-foreground"}, StopSignal: "SIGTERM"}},
		{refs: []string{staging + "hostnet-nginx-amd64:latest"}, layers: on("hostnet-nginx"),
			config: v1.Config{Env: []string{pathEnv}, Cmd: []string{"nginx-foreground"}, StopSignal: "SIGQUIT"}},
		{refs: []string{e2e + "httpd:2.4.39-4"}, layers: on("httpd"), index: true,
			config: v1.Config{Env: []string{pathEnv}, Cmd: []string{"httpd-foreground"}, WorkingDir: "/usr/local/apache2", StopSignal: "SIGWINCH"}},
		{refs: []string{e2e + "nonewprivs:1.3"}, layers: on("nnp"), index: true,
			config: v1.Config{Env: []string{pathEnv}, Entrypoint: []string{"/usr/local/bin/nnp"}, User: "1000"}},
		{refs: []string{staging + "test-image-user-uid:latest"}, layers: base, config: user("1002"), index: true, oci: true},
		{refs: []string{staging + "test-image-user-username:latest"}, layers: base, config: user("www-data")},
		{refs: []string{staging + "test-image-user-uid-group:latest"}, layers: base, config: user("1003:1004")},
		{refs: []string{staging + "test-image-user-username-group:latest"}, layers: base, config: user("www-data:1004")},
		{refs: []string{staging + "test-image-predefined-group:latest"}, layers: on("groups"), config: user("1000")},
		{refs: []string{staging + "test-image-latest:latest"}, layers: base, config: shell},
		{refs: []string{staging + "test-image-1:latest"}, layers: on("test-image-1"), config: shell},
		{refs: []string{staging + "test-image-2:latest"}, layers: on("test-image-2"), config: shell},
		{refs: []string{staging + "test-image-3:latest"}, layers: on("test-image-3"), config: shell},
		{refs: []string{staging + "test-image-tags:1", staging + "test-image-tags:2", staging + "test-image-tags:3"}, layers: base, config: shell},
		{refs: []string{staging + "test-image-tag:test"}, layers: base, config: shell},
		{refs: []string{staging + "test-image-tag:all"}, layers: base, config: shell},
		// critest pulls this one by a pinned upstream digest that no rebuild
		// can match, so that spec cannot pass offline; the tag is served for
		// completeness.
		{refs: []string{staging + "test-image-digest:latest"}, layers: base, config: shell},
		{refs: []string{"registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9"}, layers: []v1.Layer{l["pause"]}, config: pauseConfig},
		{refs: []string{"registry.k8s.io/pause:3.10"}, layers: []v1.Layer{l["pause"]}, config: pauseConfig},
		{refs: []string{ecr + "1.35.0-glibc"}, layers: base, config: shell},
		{refs: []string{ecr + "1-uclibc"}, layers: base, config: shell},
		{refs: []string{ecr + "1"}, layers: base, config: shell},
		{refs: []string{ecr + "1-glibc"}, layers: base, config: shell},
		{refs: []string{ecr + "1-musl"}, layers: base, config: shell},
	}
}

// predefinedGroupTree adds default-user (1000) as a member of
// group-defined-in-image (50000), for critest's SupplementalGroupsPolicy tests.
func predefinedGroupTree() tree {
	t := tree{}
	t.file("etc/passwd", 0o644, []byte(passwd+"default-user:x:1000:1000::/home/default-user:/bin/sh\n"))
	t.file("etc/group", 0o644, []byte(group+"default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"))
	t["home/default-user"] = node{typ: tar.TypeDir, mode: 0o755, uid: 1000, gid: 1000}
	return t
}

// decoyTree marks the linux/arm64 image of every index.
func decoyTree() tree {
	return tree{"WRONG-PLATFORM": {typ: tar.TypeReg, mode: 0o644,
		data: []byte("linux/arm64 decoy: a runtime on linux/amd64 must never pick this image\n")}}
}
