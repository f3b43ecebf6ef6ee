// Package imagesvc owns images: references and their resolution, pulls, the
// content store (blobs/sha256/...), layer unpack into overlay snapshots, image
// records, removal and ImageFsInfo.
//
// It must not import server/, sandbox/, oci/ or cni/.
package imagesvc
