// Package testregistry builds and serves, offline, every image critest
// v1.36.0 pulls, plus registry.k8s.io/pause:3.10 and the benchmark images
// docker.io/nodeagent-bench/{layers5,layers20}:{gzip,zstd}.
//
// The registry is go-containerregistry's, over plain HTTP. It serves each
// image at its reference's path without the host, the way nodeagent's (and
// containerd's) mirror configuration asks for it: registry.k8s.io/pause:3.9
// and k8s.gcr.io/pause:3.9 are both GET /v2/pause/manifests/3.9, and
// docker.io/busybox is library/busybox. Every image can also be pulled by
// digest; Registry.Images lists them all.
//
// Images are built from Debian's busybox package and two small Go programs
// (nnp and pause, in the directories of the same name), with fixed
// timestamps and sorted tar entries, so digests do not change from one build
// to the next. A build is kept in the cache dir under a name derived from
// its inputs, so only the first start on a machine builds; later ones load
// in milliseconds.
//
// A cold start needs, on the host: apt-get (with a reachable Debian mirror)
// unless the cache dir already holds busybox_*.deb, dpkg-deb, ldd,
// util-linux's /usr/bin/ipcs (copied into the images) and the go command on
// PATH. The default cache dir needs root.
//
// This package is test tooling: it imports none of nodeagent's packages.
package testregistry
