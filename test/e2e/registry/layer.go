package testregistry

import (
	"bytes"
	"io"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// newLayer compresses a tar archive into a layer. It compresses the archive
// itself, with fixed settings and a single zstd goroutine, so that the blob
// and its digest are the same on every build.
func newLayer(archive []byte, c compression.Compression) (v1.Layer, error) {
	var blob []byte
	mediaType := types.OCILayer
	switch c {
	case compression.ZStd:
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		blob = enc.EncodeAll(archive, nil)
		mediaType = types.OCILayerZStd
	default:
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
		if err != nil {
			return nil, err
		}
		if _, err := zw.Write(archive); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		blob = buf.Bytes()
	}
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(blob)), nil }
	return tarball.LayerFromOpener(open, tarball.WithMediaType(mediaType))
}

// treeLayer is newLayer for a tree, gzip-compressed.
func treeLayer(t tree) (v1.Layer, error) {
	archive, err := t.tar()
	if err != nil {
		return nil, err
	}
	return newLayer(archive, compression.GZip)
}
