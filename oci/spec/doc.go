// Package spec builds the OCI runtime spec of one container from its CRI
// ContainerConfig, its pod's PodSandboxConfig, the image config and a few
// facts about the host.
//
// The spec is assembled from small options (SpecOpt), each named for its
// effect and table-tested without root. Build reads only what it must from
// the host: the image's /etc/passwd and /etc/group (confined to the rootfs),
// the existence of bind-mount sources, device nodes (through an fs.FS that
// tests fake), seccomp profile files and, for non-private mount propagation,
// the host's mount table (through an injected function).
//
// Bad input is reported as errdefs.ErrInvalidArgument naming the CRI field;
// a host that cannot honour a valid request as errdefs.ErrFailedPrecondition.
//
// It must not import server/, sandbox/, imagesvc/, cni/ or its parent oci/.
package spec
