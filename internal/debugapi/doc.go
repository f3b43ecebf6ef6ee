// Package debugapi is nodeagent's small debug service, served on the CRI
// socket next to the CRI services, for what CRI cannot say: live pull
// progress, a per-pod history of recent CRI calls, what the daemon's records
// own on the host (for crictl-lite doctor) and a goroutine dump.
//
// There is no protoc in this project: the wire format is JSON, carried by a
// gRPC codec registered under the content-subtype "nodeagent-json", and the
// ServiceDesc and client are written by hand. The package holds types and
// plumbing only; it imports no nodeagent package, so both the daemon
// (server/) and the CLI (cmd/crictl-lite) can use it.
package debugapi
