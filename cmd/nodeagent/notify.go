package main

import (
	"net"
	"os"
)

// sdNotify tells systemd about the daemon's state (Type=notify units). Outside
// systemd NOTIFY_SOCKET is unset and this does nothing.
func sdNotify(state string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = conn.Write([]byte(state))
}
