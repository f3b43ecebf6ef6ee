// Package shim is the per-pod monitor, `nodeagent shim`: a re-exec of the
// daemon binary, one per pod sandbox, started detached in its own session. It
// is a child subreaper and runs the OCI runtime's create for each container of
// its pod, so that every container init becomes its child: it owns their
// stdio, writes their CRI-format logs, reaps them, records each exit to disk
// before reporting it, runs ExecSync, and keeps doing all of that while the
// daemon restarts.
//
// The daemon talks to it with Client, over net/rpc (gob) on the unix socket
// <StateDir>/shim.sock; exits are pushed through a long-poll (WaitEvent), not
// polled.
//
//	daemon ──Launch──> `nodeagent shim launch` ──starts, exits──> `nodeagent shim serve`
//	   │                 (reaped by the daemon)                    (setsid, subreaper; reparented to PID 1)
//	   └────────Connect / RPC over <StateDir>/shim.sock──────────────────┘
//
// It imports oci/runtime and no other nodeagent package; oci imports it.
package shim
