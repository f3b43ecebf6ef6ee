package debugapi

import (
	"encoding/json"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// ContentSubtype names the JSON codec on the wire
// ("application/grpc+nodeagent-json").
const ContentSubtype = "nodeagent-json"

// jsonCodec marshals the debug service's plain Go structs as JSON.
type jsonCodec struct{}

func (jsonCodec) Name() string { return ContentSubtype }

func (jsonCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (jsonCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return json.Unmarshal(data.Materialize(), v)
}

// Registering in init is how gRPC finds a codec by content-subtype on the
// server side; the client forces it per call as well.
func init() { encoding.RegisterCodecV2(jsonCodec{}) }
