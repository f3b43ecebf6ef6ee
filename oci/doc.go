// Package oci owns containers: the Container type and its state machine, the
// OCI runtime spec built from a CRI ContainerConfig and an image config (pure
// options), the runc/crun runtime handlers, and the per-pod shim.
//
// It must not import server/, sandbox/, imagesvc/ or cni/.
package oci
