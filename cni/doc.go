// Package cni owns pod networking: it loads and watches conflists in the CNI
// conf dir and runs ADD/DEL/CHECK/STATUS through libcni.
//
// It must not import server/, sandbox/, oci/ or imagesvc/.
package cni
