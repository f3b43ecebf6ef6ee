# shellcheck shell=bash
# Shared helpers for the scripts under hack/. Source it, do not run it:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# The sourcing script is expected to have `set -euo pipefail` already.

# Name used as the prefix of every log line ("install-deps: ...").
LOG_NAME="${LOG_NAME:-$(basename "${0%.sh}")}"

# Repository root (the parent of hack/).
# shellcheck disable=SC2034 # used by the scripts that source this file
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Everything the machine-setup scripts build or download lives here.
NODEAGENT_CACHE="${NODEAGENT_CACHE:-/var/cache/nodeagent}"
NODEAGENT_STAMPS="${NODEAGENT_CACHE}/stamps"

# cri-tools release the conformance run uses (see shared/critest-images.md).
CRI_TOOLS_VERSION="${CRI_TOOLS_VERSION:-v1.36.0}"
# shellcheck disable=SC2034
CRI_TOOLS_BIN="${NODEAGENT_CACHE}/cri-tools-${CRI_TOOLS_VERSION}/bin"

# Go >= 1.26 lives here on every machine of this project.
case ":${PATH}:" in
*:/usr/local/go/bin:*) ;;
*) PATH="/usr/local/go/bin:${PATH}" ;;
esac
export PATH

log() { printf '%s: %s\n' "${LOG_NAME}" "$*" >&2; }
warn() { printf '%s: WARNING: %s\n' "${LOG_NAME}" "$*" >&2; }
die() {
	printf '%s: ERROR: %s\n' "${LOG_NAME}" "$*" >&2
	exit 1
}

# need_root: abort unless running as root.
need_root() {
	[[ "$(id -u)" -eq 0 ]] || die "must run as root"
}

# now_s: seconds since the epoch with sub-second precision (for timings).
now_s() { date +%s.%N; }

# elapsed START: seconds (one decimal) since START, a value from now_s.
elapsed() { awk -v s="$1" -v e="$(now_s)" 'BEGIN { printf "%.1f", e - s }'; }

# read_stamp NAME: print the content of a stamp file, or nothing.
read_stamp() {
	local f="${NODEAGENT_STAMPS}/$1"
	[[ -f "$f" ]] && cat "$f"
	return 0
}

# write_stamp NAME CONTENT: record that NAME was built as CONTENT.
write_stamp() {
	mkdir -p "${NODEAGENT_STAMPS}"
	printf '%s\n' "$2" >"${NODEAGENT_STAMPS}/$1.tmp"
	mv -f "${NODEAGENT_STAMPS}/$1.tmp" "${NODEAGENT_STAMPS}/$1"
}

# go_env_for_tools: environment for `go get`/`go build` in throwaway modules.
# GONOSUMDB: cri-tools is not in the checksum database the proxy mirrors.
go_env_for_tools() {
	export GONOSUMDB="${GONOSUMDB:+${GONOSUMDB},}sigs.k8s.io"
	export GOFLAGS="${GOFLAGS:+${GOFLAGS} }-mod=mod"
	export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
}

# new_tool_module DIR MODNAME: (re)create an empty throwaway module in DIR.
new_tool_module() {
	local dir="$1" name="$2"
	rm -rf "${dir}"
	mkdir -p "${dir}"
	(cd "${dir}" && go mod init "${name}" >/dev/null 2>&1)
}

# run_logged LOGFILE CMD...: run CMD with its output in LOGFILE; on failure
# show the tail of the log and return the command's status.
run_logged() {
	local logfile="$1" rc=0
	shift
	"$@" >>"${logfile}" 2>&1 || rc=$?
	if [[ ${rc} -ne 0 ]]; then
		warn "command failed (exit ${rc}): $*"
		tail -n 40 "${logfile}" | sed "s/^/${LOG_NAME}:   | /" >&2
	fi
	return "${rc}"
}

# wait_for_socket PATH TIMEOUT_S [PID]: wait until PATH is a unix socket.
# Fails early when PID (the process expected to create it) exits.
wait_for_socket() {
	local path="$1" timeout="$2" pid="${3:-}" i
	for ((i = 0; i < timeout * 10; i++)); do
		[[ -S "${path}" ]] && return 0
		if [[ -n "${pid}" ]] && ! kill -0 "${pid}" 2>/dev/null; then
			warn "process ${pid} exited before creating ${path}"
			return 1
		fi
		sleep 0.1
	done
	warn "timed out after ${timeout}s waiting for socket ${path}"
	return 1
}

# wait_for_file PATH TIMEOUT_S [PID]: wait until PATH exists and is non-empty.
wait_for_file() {
	local path="$1" timeout="$2" pid="${3:-}" i
	for ((i = 0; i < timeout * 10; i++)); do
		[[ -s "${path}" ]] && return 0
		if [[ -n "${pid}" ]] && ! kill -0 "${pid}" 2>/dev/null; then
			warn "process ${pid} exited before writing ${path}"
			return 1
		fi
		sleep 0.1
	done
	warn "timed out after ${timeout}s waiting for ${path}"
	return 1
}

# stop_pid PID NAME [GRACE_S]: SIGTERM a process we started, wait up to
# GRACE_S seconds (default 30), then SIGKILL it. Only ever by PID.
stop_pid() {
	local pid="$1" name="$2" grace="${3:-30}" i
	[[ -n "${pid}" ]] || return 0
	kill -0 "${pid}" 2>/dev/null || {
		wait "${pid}" 2>/dev/null || true
		return 0
	}
	log "stopping ${name} (pid ${pid}) with SIGTERM"
	kill -TERM "${pid}" 2>/dev/null || true
	for ((i = 0; i < grace * 10; i++)); do
		kill -0 "${pid}" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "${pid}" 2>/dev/null; then
		warn "${name} (pid ${pid}) still running after ${grace}s; sending SIGKILL"
		kill -KILL "${pid}" 2>/dev/null || true
	fi
	wait "${pid}" 2>/dev/null || true
}

# ip4_to_int A.B.C.D: print the address as a 32-bit integer.
ip4_to_int() {
	local a b c d
	IFS=. read -r a b c d <<<"$1"
	printf '%d\n' "$(((a << 24) | (b << 16) | (c << 8) | d))"
}

# host_ipv4_prefixes: every IPv4 prefix in use on this host (routes in all
# tables and interface addresses), one "A.B.C.D/LEN" a line. Default routes
# are left out: they overlap everything by design.
host_ipv4_prefixes() {
	{
		ip -4 -o route show table all 2>/dev/null || true
		ip -4 -o addr show 2>/dev/null | awk '{ print $4 }' || true
	} | awk '{
		for (i = 1; i <= NF; i++) {
			if ($i ~ /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+(\/[0-9]+)?$/) {
				p = $i
				if (p !~ /\//) p = p "/32"
				if (p != "0.0.0.0/0") print p
				break
			}
		}
	}' | sort -u
}

# ipv4_prefix_free CIDR [PREFIX...]: succeed when CIDR overlaps no prefix on
# this host and none of the extra PREFIXes given.
ipv4_prefix_free() {
	local cidr="$1" net len s e p pnet plen ps pe
	shift
	net="${cidr%/*}"
	len="${cidr#*/}"
	s=$(ip4_to_int "${net}")
	e=$((s + (1 << (32 - len)) - 1))
	while read -r p; do
		[[ -n "${p}" ]] || continue
		[[ "${p}" == */* ]] || p="${p}/32"
		pnet="${p%/*}"
		plen="${p#*/}"
		ps=$(ip4_to_int "${pnet}")
		ps=$((ps & ~((1 << (32 - plen)) - 1) & 0xffffffff))
		pe=$((ps + (1 << (32 - plen)) - 1))
		if ((s <= pe && ps <= e)); then
			return 1
		fi
	done < <(
		host_ipv4_prefixes
		if [[ $# -gt 0 ]]; then printf '%s\n' "$@"; fi
	)
	return 0
}

# pick_free_subnet [PREFIX...]: print a /24 inside 10.88.0.0/16 that no route
# or address on this host overlaps (nor any PREFIX given), starting at a
# random offset so that parallel runs rarely pick the same one.
pick_free_subnet() {
	local start i n cidr
	start=$((RANDOM % 254 + 1))
	for ((i = 0; i < 254; i++)); do
		n=$(((start + i - 1) % 254 + 1))
		cidr="10.88.${n}.0/24"
		if ipv4_prefix_free "${cidr}" "$@"; then
			printf '%s\n' "${cidr}"
			return 0
		fi
	done
	return 1
}

# random_hex N: N random lowercase hex digits.
random_hex() {
	od -An -N16 -tx1 /dev/urandom | tr -d ' \n' | cut -c1-"$1"
}
