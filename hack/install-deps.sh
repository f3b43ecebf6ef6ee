#!/usr/bin/env bash
# Installs what nodeagent needs on a Debian 12 machine, as root:
#   - Debian packages (apt-get update runs once, only if one is missing)
#   - the CNI plugins, built from github.com/containernetworking/plugins at the
#     version in go.mod, into /opt/cni/bin
#   - runc >= 1.2 (idmapped mounts for user-namespace pods), built from
#     github.com/opencontainers/runc with libseccomp, as /usr/local/sbin/runc
# Idempotent and non-interactive; a rerun with everything present takes well
# under 5 s. The Go test tools (crictl, critest, ginkgo) are installed by
# hack/install-cri-tools.sh instead.
#
# Environment overrides:
#   CNI_PLUGINS_VERSION  default: the version go.mod requires
#   CNI_BIN_DIR          default: /opt/cni/bin
#   RUNC_VERSION         default: v1.4.4 (newest 1.4.x the module proxy serves)
#   RUNC_INSTALL         default: /usr/local/sbin/runc
#   FORCE=1              rebuild the CNI plugins and runc even if stamped
set -euo pipefail

# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APT_PACKAGES=(
	runc crun iptables iproute2 util-linux mount libseccomp-dev pkg-config
	gcc make git ca-certificates procps psmisc criu shellcheck
	# systemd-analyze for `make lint`'s unit check. Installed only when missing (never
	# upgraded here); without systemd-sysv it does not replace the init.
	systemd
)

CNI_BIN_DIR="${CNI_BIN_DIR:-/opt/cni/bin}"
# The plugins nodeagent and its tests rely on; the build produces all of them.
CNI_REQUIRED=(
	bridge host-local loopback portmap macvlan bandwidth firewall tuning ptp
	static host-device
)

RUNC_VERSION="${RUNC_VERSION:-v1.4.4}"
RUNC_INSTALL="${RUNC_INSTALL:-/usr/local/sbin/runc}"
RUNC_BUILDTAGS="seccomp urfave_cli_no_docs"

FORCE="${FORCE:-0}"
START="$(now_s)"
CHANGED=0

need_root
command -v go >/dev/null 2>&1 ||
	die "go not found (expected in /usr/local/go/bin); install Go >= 1.26 first"

mkdir -p "${NODEAGENT_CACHE}/build" "${NODEAGENT_STAMPS}"
# One install at a time on this machine.
exec 9>"${NODEAGENT_CACHE}/install-deps.lock"
flock 9

# ---------------------------------------------------------------- apt
install_apt_packages() {
	local missing=() pkg status
	for pkg in "${APT_PACKAGES[@]}"; do
		status="$(dpkg-query -W -f='${db:Status-Abbrev}' "${pkg}" 2>/dev/null || true)"
		[[ "${status}" == ii* ]] || missing+=("${pkg}")
	done
	if [[ ${#missing[@]} -eq 0 ]]; then
		log "apt: all ${#APT_PACKAGES[@]} packages present"
		return 0
	fi
	log "apt: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	local aptlog="${NODEAGENT_CACHE}/build/apt.log"
	: >"${aptlog}"
	run_logged "${aptlog}" apt-get update -q ||
		die "apt-get update failed (log: ${aptlog})"
	run_logged "${aptlog}" apt-get install -y -q --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		"${missing[@]}" || die "apt-get install failed (log: ${aptlog})"
	log "apt: installed ${missing[*]}"
	CHANGED=1
}

# ---------------------------------------------------------------- CNI plugins
cni_plugins_version() {
	local v=""
	if [[ -n "${CNI_PLUGINS_VERSION:-}" ]]; then
		printf '%s\n' "${CNI_PLUGINS_VERSION}"
		return 0
	fi
	v="$(cd "${REPO_ROOT}" &&
		go list -m -f '{{.Version}}' github.com/containernetworking/plugins 2>/dev/null)" || v=""
	if [[ -z "${v}" ]]; then
		# go list can fail while go.mod is mid-edit; read the file itself.
		v="$(awk '$1 == "github.com/containernetworking/plugins" { print $2; exit }
			$1 == "require" && $2 == "github.com/containernetworking/plugins" { print $3; exit }' \
			"${REPO_ROOT}/go.mod")"
	fi
	[[ -n "${v}" ]] || die "cannot find github.com/containernetworking/plugins in ${REPO_ROOT}/go.mod"
	printf '%s\n' "${v}"
}

install_cni_plugins() {
	local version missing=() p
	version="$(cni_plugins_version)"
	for p in "${CNI_REQUIRED[@]}"; do
		[[ -x "${CNI_BIN_DIR}/${p}" ]] || missing+=("${p}")
	done
	if [[ "${FORCE}" != 1 && ${#missing[@]} -eq 0 &&
		"$(read_stamp cni-plugins)" == "${version}" ]]; then
		log "cni: plugins ${version} present in ${CNI_BIN_DIR}"
		return 0
	fi

	local dir="${NODEAGENT_CACHE}/build/cni-plugins-${version}"
	local buildlog="${dir}.log" t0 mod=github.com/containernetworking/plugins
	log "cni: building plugins ${version} into ${CNI_BIN_DIR} (log: ${buildlog})"
	t0="$(now_s)"
	: >"${buildlog}"
	(
		go_env_for_tools
		# errexit is off inside "( ... ) || die": check each step.
		new_tool_module "${dir}" nodeagent.local/cni-plugins-build || exit 1
		cd "${dir}" || exit 1
		run_logged "${buildlog}" go get "${mod}@${version}" || exit 1
		# Every linux plugin (windows ones are excluded by build constraints;
		# plugins/sample is left out, as upstream's build_linux.sh does).
		CGO_ENABLED=0 run_logged "${buildlog}" go build -trimpath \
			-ldflags "-s -w -X ${mod}/pkg/utils/buildversion.BuildVersion=${version}" \
			-o "${dir}/out/" "${mod}/plugins/main/..." "${mod}/plugins/ipam/..." \
			"${mod}/plugins/meta/..." || exit 1
	) || die "building CNI plugins ${version} failed (log: ${buildlog})"

	for p in "${CNI_REQUIRED[@]}"; do
		[[ -x "${dir}/out/${p}" ]] || die "CNI build did not produce ${p}"
	done
	mkdir -p "${CNI_BIN_DIR}"
	local installed=()
	for p in "${dir}"/out/*; do
		# install(1) unlinks the target first, so plugins in use are safe.
		install -m 0755 "${p}" "${CNI_BIN_DIR}/"
		installed+=("$(basename "${p}")")
	done
	write_stamp cni-plugins "${version}"
	log "cni: installed ${version} in $(elapsed "${t0}")s: ${installed[*]}"
	CHANGED=1
}

# ---------------------------------------------------------------- runc
# runc_idmap_ok BIN: `runc features` reports idmapped mount support.
runc_idmap_ok() {
	"$1" features 2>/dev/null | tr -d ' \t\n' | grep -q '"idmap":{"enabled":true}'
}

install_runc() {
	local want="${RUNC_VERSION#v}" have=""
	if [[ -x "${RUNC_INSTALL}" ]]; then
		have="$("${RUNC_INSTALL}" --version 2>/dev/null | awk 'NR == 1 { print $3 }')" || have=""
	fi
	if [[ "${FORCE}" != 1 && "${have}" == "${want}" &&
		"$(read_stamp runc)" == "${RUNC_VERSION}" ]]; then
		log "runc: ${RUNC_VERSION} present at ${RUNC_INSTALL}"
		return 0
	fi

	local dir="${NODEAGENT_CACHE}/build/runc-${RUNC_VERSION}"
	local buildlog="${dir}.log" t0
	log "runc: building ${RUNC_VERSION} (tags: ${RUNC_BUILDTAGS}) as ${RUNC_INSTALL} (log: ${buildlog})"
	t0="$(now_s)"
	: >"${buildlog}"
	(
		go_env_for_tools
		new_tool_module "${dir}" nodeagent.local/runc-build || exit 1
		cd "${dir}" || exit 1
		run_logged "${buildlog}" go get "github.com/opencontainers/runc@${RUNC_VERSION}" || exit 1
		CGO_ENABLED=1 run_logged "${buildlog}" go build -trimpath \
			-tags "${RUNC_BUILDTAGS}" \
			-ldflags "-X main.version=${want} -X main.gitCommit=${RUNC_VERSION}-modproxy" \
			-o "${dir}/out/runc" github.com/opencontainers/runc || exit 1
	) || die "building runc ${RUNC_VERSION} failed (log: ${buildlog})"

	"${dir}/out/runc" --version >/dev/null || die "built runc does not run"
	runc_idmap_ok "${dir}/out/runc" ||
		die "built runc ${RUNC_VERSION} does not report idmap mount support"
	mkdir -p "$(dirname "${RUNC_INSTALL}")"
	install -m 0755 "${dir}/out/runc" "${RUNC_INSTALL}"
	write_stamp runc "${RUNC_VERSION}"
	log "runc: installed ${RUNC_VERSION} in $(elapsed "${t0}")s"
	CHANGED=1
}

verify_runc() {
	local first
	first="$(command -v runc || true)"
	if [[ "${first}" != "${RUNC_INSTALL}" ]]; then
		warn "runc in PATH is '${first:-none}', not ${RUNC_INSTALL}; put $(dirname "${RUNC_INSTALL}") first in PATH"
	fi
	runc_idmap_ok "${RUNC_INSTALL}" ||
		die "${RUNC_INSTALL} does not report idmap mount support (runc features)"
	log "runc: $("${RUNC_INSTALL}" --version | awk 'NR == 1 { v = $3 } /^libseccomp:/ { s = $2 } END { printf "version %s, libseccomp %s, idmap mounts supported", v, s }')"
}

install_apt_packages
install_cni_plugins
install_runc
verify_runc

if [[ ${CHANGED} -eq 1 ]]; then
	log "done in $(elapsed "${START}")s"
else
	log "everything already installed ($(elapsed "${START}")s)"
fi
