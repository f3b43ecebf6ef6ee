// Package imagesvc owns images: references and their resolution, pulls, the
// content store (blobs/sha256/...), layer unpack into overlay snapshots, image
// records, removal and ImageFsInfo. It is the engine behind the CRI
// ImageService; server/ validates requests and maps its errdefs classes to
// gRPC codes.
//
// It must not import server/, sandbox/, oci/ or cni/. Its sub-packages
// (unpack, overlay) import nothing of nodeagent.
//
// # Layout under Config.Root
//
//	blobs/sha256/<hex>        manifests, indexes, configs (verified, temp+rename)
//	snapshots/<chain-id>/fs   one layer each, an overlay lowerdir
//	ingest/                   downloads in progress and trash; wiped by New
//
// Compressed layer blobs are not kept: a layer is unpacked while it streams
// and only its snapshot stays (containerd's discard_unpacked_layers).
//
// # A pull
//
//	resolve tag -> (index -> this node's manifest) -> config
//	  -> layers in parallel, each: GET blob -> sha256 + size check -> gunzip/zstd
//	     -> sha256 (diff id) -> tar -> files in ingest/ -> rename to snapshots/
//	  -> one syncfs -> record saved in the store -> published in memory
//
// A snapshot is named by its chain id, so a layer shared by images (or by
// concurrent pulls) is fetched and stored once. Both digests are checked
// before the rename; a mismatch deletes the work directory.
//
// # Invariants
//
//   - Persist, then publish: memory changes only after the store write
//     succeeded.
//   - Every snapshot and blob on disk is held by a record or by a pull in
//     progress; New removes the rest, so a crash leaves nothing visible.
//   - Memory is the read model: Get, List, FsInfo and Lowers touch no disk.
package imagesvc
