// Package server is the thin gRPC layer of nodeagent: one file per RPC family
// that validates the request, calls a domain package and returns. Errors are
// classified in the domain packages (containerd/errdefs) and mapped to gRPC
// status codes once, by the interceptors in interceptors.go.
//
// Nothing imports server/ but cmd/nodeagent.
package server
