// Package sandbox owns pod sandboxes: their namespaces and pins, hostname,
// /etc/hosts, resolv.conf, /dev/shm, the sandbox state machine and the pause
// process when a pod shares a PID namespace.
//
// It must not import server/, oci/, imagesvc/ or cni/: consumers declare the small
// interfaces they need and cmd/nodeagent wires the real types in.
package sandbox
