// Package runtime drives an OCI runtime binary (runc, or crun, which takes the
// same command line) for one runtime handler: create, start, kill, delete,
// state and exec, each a short-lived invocation of the binary with
// `--root <state>/runtime/<handler>`. Failures carry the runtime's own error
// message and are classified with github.com/containerd/errdefs.
//
// Every command is started through github.com/containerd/go-runc's
// package-level Monitor, so that a process that reaps all of its children (the
// shim, a child subreaper) can install a monitor that hands each command's
// exit status back instead of racing os/exec for it.
//
// It imports no other nodeagent package.
package runtime
