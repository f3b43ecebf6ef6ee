// Package version holds the build's identity, set by the linker:
//
//	-ldflags "-X github.com/nodeagent/nodeagent/internal/version.Version=0.2.0"
package version

// Name is the runtime name reported to kubelet.
const Name = "nodeagent"

// Version is the semantic version of this build.
var Version = "0.1.0-dev"
