#!/usr/bin/env bash
# Builds containerd and containerd-shim-runc-v2 from the Go module proxy
# (github.com/containerd/containerd/v2 at CONTAINERD_VERSION) in a throwaway
# module, into
#   /var/cache/nodeagent/containerd-<version>/bin/{containerd,containerd-shim-runc-v2}
# for hack/bench-compare.sh. Nothing is installed system-wide: the benchmark
# puts that directory first in containerd's PATH, which is where containerd
# looks for its shim. A stamp file makes reruns instant; prints the build time.
#
# Why build it: Debian 12 ships containerd 1.6, which is older and faster at
# some steps; the comparison is pinned to the 2.4 line.
#
# Environment overrides:
#   CONTAINERD_VERSION  default: v2.4.2 (newest 2.4.x the module proxy served
#                       when this was written); "latest" asks the proxy for
#                       the newest v2.4.x
#   FORCE=1             rebuild even if stamped
# Prints the bin directory on stdout (logs go to stderr), so callers can do
#   CONTAINERD_BIN_DIR="$(hack/install-containerd.sh)"
set -euo pipefail

# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FORCE="${FORCE:-0}"
CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.4.2}"
MOD=github.com/containerd/containerd/v2
BINARIES=(containerd containerd-shim-runc-v2)
# Storage back ends that need cgo or kernel features this host does not
# use; the benchmark uses overlayfs only. With them left out the build is
# static (CGO_ENABLED=0), like the shim upstream ships.
BUILD_TAGS="no_btrfs no_devmapper no_zfs no_aufs"
START="$(now_s)"

command -v go >/dev/null 2>&1 ||
	die "go not found (expected in /usr/local/go/bin); install Go >= 1.26 first"
go_env_for_tools

if [[ "${CONTAINERD_VERSION}" == latest ]]; then
	CONTAINERD_VERSION="$(go list -m -versions "${MOD}" | tr ' ' '\n' |
		grep -E '^v2\.4\.[0-9]+$' | sort -V | tail -n1)" ||
		die "cannot list ${MOD} versions from the module proxy"
	[[ -n "${CONTAINERD_VERSION}" ]] || die "the module proxy serves no ${MOD} v2.4.x"
fi
BIN_DIR="${NODEAGENT_CACHE}/containerd-${CONTAINERD_VERSION}/bin"
STAMP="containerd-${CONTAINERD_VERSION}"

mkdir -p "${NODEAGENT_CACHE}/build" "${NODEAGENT_STAMPS}"
exec 9>"${NODEAGENT_CACHE}/install-containerd.lock"
flock 9

all_present() {
	local b
	for b in "${BINARIES[@]}"; do
		[[ -x "${BIN_DIR}/${b}" ]] || return 1
	done
}

if [[ "${FORCE}" != 1 ]] && all_present &&
	[[ "$(read_stamp "${STAMP}")" == "${CONTAINERD_VERSION}" ]]; then
	log "containerd ${CONTAINERD_VERSION} present in ${BIN_DIR} ($(elapsed "${START}")s)"
	printf '%s\n' "${BIN_DIR}"
	exit 0
fi

DIR="${NODEAGENT_CACHE}/build/containerd-${CONTAINERD_VERSION}"
BUILDLOG="${DIR}.log"
OUT="${DIR}/out"
log "building containerd ${CONTAINERD_VERSION} (${BINARIES[*]}) into ${BIN_DIR} (log: ${BUILDLOG})"
: >"${BUILDLOG}"
new_tool_module "${DIR}" nodeagent.local/containerd-build
cd "${DIR}"
mkdir -p "${OUT}"

# step LABEL CMD...: run one build step, log its duration.
step() {
	local label="$1" t0
	shift
	t0="$(now_s)"
	run_logged "${BUILDLOG}" "$@" || die "${label} failed (log: ${BUILDLOG})"
	log "  ${label}: $(elapsed "${t0}")s"
}

step "go get ${MOD}@${CONTAINERD_VERSION}" go get "${MOD}@${CONTAINERD_VERSION}"
# As upstream's Makefile stamps them, so `containerd --version` and the CRI
# Version RPC name the release.
LDFLAGS="-s -w -X ${MOD}/version.Version=${CONTAINERD_VERSION} -X ${MOD}/version.Revision=modproxy"
export CGO_ENABLED=0
for b in "${BINARIES[@]}"; do
	step "build ${b}" go build -trimpath -tags "${BUILD_TAGS}" -ldflags "${LDFLAGS}" \
		-o "${OUT}/${b}" "${MOD}/cmd/${b}"
done

"${OUT}/containerd" --version >/dev/null || die "built containerd does not run"
"${OUT}/containerd-shim-runc-v2" -v >/dev/null || die "built containerd-shim-runc-v2 does not run"

mkdir -p "${BIN_DIR}"
for b in "${BINARIES[@]}"; do
	install -m 0755 "${OUT}/${b}" "${BIN_DIR}/${b}"
done
write_stamp "${STAMP}" "${CONTAINERD_VERSION}"
log "installed $("${BIN_DIR}/containerd" --version) in $(elapsed "${START}")s"
printf '%s\n' "${BIN_DIR}"
