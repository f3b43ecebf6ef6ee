package server

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"

	"golang.org/x/net/websocket"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// tunnelProtocol is port-forward's SPDY carried in the binary messages of
// a WebSocket, as kubectl (1.31+) and crictl's websocket transport ask
// for it. There is no HTTP upgrade inside the tunnel: SPDY frames start
// right after the WebSocket handshake.
const tunnelProtocol = "SPDY/3.1+" + portforward.ProtocolV1Name

// serveTunnel accepts the WebSocket and serves cri-streaming's SPDY
// port-forward on the connection it makes of it: the library upgrades
// what it believes an HTTP response, which tunnelWriter turns into the
// tunnel.
func (st *streamServer) serveTunnel(w http.ResponseWriter, r *http.Request, sandboxID string) {
	ws := websocket.Server{
		Handshake: func(cfg *websocket.Config, _ *http.Request) error {
			if !slices.Contains(cfg.Protocol, tunnelProtocol) {
				return fmt.Errorf("subprotocols %q: want %q", cfg.Protocol, tunnelProtocol)
			}
			cfg.Protocol = []string{tunnelProtocol}
			return nil
		},
		Handler: func(conn *websocket.Conn) {
			conn.PayloadType = websocket.BinaryFrame
			req := r.Clone(r.Context())
			for _, h := range []string{"Sec-Websocket-Protocol", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions"} {
				req.Header.Del(h)
			}
			req.Header.Set(httpstream.HeaderConnection, httpstream.HeaderUpgrade)
			req.Header.Set(httpstream.HeaderUpgrade, spdy.HeaderSpdy31)
			req.Header.Set(httpstream.HeaderProtocolVersion, portforward.ProtocolV1Name)
			portforward.ServePortForward(&tunnelWriter{conn: conn, header: http.Header{}}, req, st.rt, sandboxID, "", nil, st.idle, creationTimeout, []string{portforward.ProtocolV1Name})
		},
	}
	ws.ServeHTTP(w, r)
}

// tunnelWriter is the response the SPDY upgrade writes to: its header and
// status go nowhere (the WebSocket handshake was the response), and
// hijacking it yields the tunnel.
type tunnelWriter struct {
	conn     net.Conn
	header   http.Header
	hijacked bool
}

func (t *tunnelWriter) Header() http.Header { return t.header }

func (t *tunnelWriter) WriteHeader(int) {}

// Write fails: after the handshake only SPDY may enter the tunnel. The
// library writes a body only for errors it found before upgrading.
func (t *tunnelWriter) Write([]byte) (int, error) {
	return 0, errors.New("port-forward tunnel: no HTTP body after the WebSocket handshake")
}

func (t *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if t.hijacked {
		return nil, nil, errors.New("port-forward tunnel: hijacked twice")
	}
	t.hijacked = true
	return t.conn, bufio.NewReadWriter(bufio.NewReader(t.conn), bufio.NewWriter(t.conn)), nil
}
