package proto

// Stream kinds: an interactive exec, or an attach to a container's init.
const (
	StreamExec   = "exec"
	StreamAttach = "attach"
)

// StreamRequest opens an exec or attach on the shim's stream socket
// (SOCK_SEQPACKET, one message per packet). It travels in one packet with
// the descriptors it announces, in this order: the read end of stdin, the
// write ends of stdout and stderr. The shim's process writes straight into
// those pipes where it can, so output is not copied twice.
type StreamRequest struct {
	Kind string
	ID   string
	// Process is the exec'd process spec as JSON (exec only).
	Process []byte
	Tty     bool
	// Which descriptors follow.
	Stdin, Stdout, Stderr bool
}

// StreamMessage is every packet after the request. The shim answers the
// request with one carrying Error ("" = started) and ends with one carrying
// Exited; the client sends Resize. A closed connection means the other side
// is gone: the shim then kills an exec'd process, or detaches an attach.
type StreamMessage struct {
	Error    string   `json:",omitempty"`
	Resize   *WinSize `json:",omitempty"`
	Exited   bool     `json:",omitempty"`
	ExitCode int32    `json:",omitempty"`
}

// WinSize is a terminal size in characters.
type WinSize struct{ Width, Height uint16 }
