#!/usr/bin/env bash
# Builds crictl, critest and the ginkgo CLI from sigs.k8s.io/cri-tools (at
# CRI_TOOLS_VERSION, default v1.36.0) in a throwaway module, into
#   /var/cache/nodeagent/cri-tools-<version>/bin/{crictl,critest,ginkgo}
# and links crictl into /usr/local/bin. A stamp file makes reruns instant.
# ginkgo is built at the version cri-tools itself requires, so that
# `critest --parallel N` (which drives the ginkgo CLI) matches the suite.
#
# Environment overrides:
#   CRI_TOOLS_VERSION  default: v1.36.0
#   CRICTL_LINK        default: /usr/local/bin/crictl (empty: do not link)
#   FORCE=1            rebuild even if stamped
set -euo pipefail

# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FORCE="${FORCE:-0}"
CRICTL_LINK="${CRICTL_LINK-/usr/local/bin/crictl}"
TOOLS=(crictl critest ginkgo)
STAMP="cri-tools-${CRI_TOOLS_VERSION}"
START="$(now_s)"

command -v go >/dev/null 2>&1 ||
	die "go not found (expected in /usr/local/go/bin); install Go >= 1.26 first"

mkdir -p "${NODEAGENT_CACHE}/build" "${NODEAGENT_STAMPS}"
exec 9>"${NODEAGENT_CACHE}/install-cri-tools.lock"
flock 9

link_crictl() {
	[[ -n "${CRICTL_LINK}" ]] || return 0
	# critest.sh itself uses the cache path; the link is for people.
	if [[ "$(readlink "${CRICTL_LINK}" 2>/dev/null || true)" == "${CRI_TOOLS_BIN}/crictl" ]]; then
		return 0
	fi
	if ln -sfn "${CRI_TOOLS_BIN}/crictl" "${CRICTL_LINK}" 2>/dev/null; then
		log "linked ${CRICTL_LINK} -> ${CRI_TOOLS_BIN}/crictl"
	else
		warn "cannot create ${CRICTL_LINK}; not linking crictl"
	fi
}

all_present() {
	local t
	for t in "${TOOLS[@]}"; do
		[[ -x "${CRI_TOOLS_BIN}/${t}" ]] || return 1
	done
}

if [[ "${FORCE}" != 1 ]] && all_present &&
	[[ "$(read_stamp "${STAMP}")" == "${CRI_TOOLS_VERSION}" ]]; then
	link_crictl
	log "cri-tools ${CRI_TOOLS_VERSION} present in ${CRI_TOOLS_BIN} ($(elapsed "${START}")s)"
	exit 0
fi

DIR="${NODEAGENT_CACHE}/build/cri-tools-${CRI_TOOLS_VERSION}"
BUILDLOG="${DIR}.log"
log "building cri-tools ${CRI_TOOLS_VERSION} (crictl, critest, ginkgo) into ${CRI_TOOLS_BIN} (log: ${BUILDLOG})"
: >"${BUILDLOG}"
go_env_for_tools
new_tool_module "${DIR}" nodeagent.local/cri-tools-build
cd "${DIR}"
OUT="${DIR}/out"
mkdir -p "${OUT}"

# step LABEL CMD...: run one build step, log its duration.
step() {
	local label="$1" t0
	shift
	t0="$(now_s)"
	run_logged "${BUILDLOG}" "$@" || die "${label} failed (log: ${BUILDLOG})"
	log "  ${label}: $(elapsed "${t0}")s"
}

step "go get sigs.k8s.io/cri-tools@${CRI_TOOLS_VERSION}" \
	go get "sigs.k8s.io/cri-tools@${CRI_TOOLS_VERSION}"
# As upstream's Makefile: static (CGO_ENABLED=0) and with the version stamped.
LDFLAGS="-X sigs.k8s.io/cri-tools/pkg/version.Version=${CRI_TOOLS_VERSION#v}"
export CGO_ENABLED=0
step "build crictl" \
	go build -trimpath -ldflags "${LDFLAGS}" -o "${OUT}/crictl" sigs.k8s.io/cri-tools/cmd/crictl
step "build critest" \
	go test -c -trimpath -ldflags "${LDFLAGS}" -o "${OUT}/critest" sigs.k8s.io/cri-tools/cmd/critest

GINKGO_VERSION="$(go list -m -f '{{.Version}}' github.com/onsi/ginkgo/v2)" ||
	die "cannot tell which ginkgo version cri-tools ${CRI_TOOLS_VERSION} requires"
# Same version as the suite; this only adds the CLI's own dependencies.
step "go get ginkgo CLI ${GINKGO_VERSION}" \
	go get "github.com/onsi/ginkgo/v2/ginkgo@${GINKGO_VERSION}"
[[ "$(go list -m -f '{{.Version}}' github.com/onsi/ginkgo/v2)" == "${GINKGO_VERSION}" ]] ||
	die "ginkgo version moved while adding its CLI"
step "build ginkgo ${GINKGO_VERSION}" \
	go build -trimpath -o "${OUT}/ginkgo" github.com/onsi/ginkgo/v2/ginkgo

"${OUT}/crictl" --version >/dev/null || die "built crictl does not run"
"${OUT}/ginkgo" version >/dev/null || die "built ginkgo does not run"
"${OUT}/critest" --help >/dev/null 2>&1 || die "built critest does not run"

mkdir -p "${CRI_TOOLS_BIN}"
for t in "${TOOLS[@]}"; do
	install -m 0755 "${OUT}/${t}" "${CRI_TOOLS_BIN}/${t}"
done
write_stamp "${STAMP}" "${CRI_TOOLS_VERSION}"
link_crictl
log "installed $("${CRI_TOOLS_BIN}/crictl" --version), critest ${CRI_TOOLS_VERSION}, ginkgo ${GINKGO_VERSION} in $(elapsed "${START}")s"
