#!/usr/bin/env bash
# Runs the CRI conformance suite (critest from cri-tools) against a private
# nodeagent instance:
#   1. builds crictl/critest/ginkgo if needed (hack/install-cri-tools.sh)
#   2. builds bin/testregistry, and bin/nodeagent when missing or stale
#   3. starts the test registry on 127.0.0.1 (it serves every image critest
#      pulls, see shared/critest-images.md)
#   4. writes a bridge CNI config on a free 10.88.x.0/24 and a unique bridge
#   5. starts nodeagent with its own root/state/socket under a temp dir, every
#      upstream registry host mirrored to the test registry
#   6. runs critest, keeps the JUnit report at _output/critest/junit.xml and
#      prints "critest: N passed, N failed, N skipped"
# and tears all of it down on exit, Ctrl-C or SIGTERM.
#
# Exit status: 0 when critest ran to its summary (whatever it counted),
# non-zero when setup failed or the run was interrupted.
#
# Environment:
#   CRITEST_ARGS          extra critest arguments, shell-quoted, e.g.
#                         CRITEST_ARGS='--ginkgo.focus="Image Manager"'
#   CRITEST_PARALLEL      N > 1 runs N ginkgo processes (critest --parallel=N,
#                         which drives the ginkgo CLI built beside critest)
#   NODEAGENT_ARGS        extra nodeagent flags, shell-quoted
#   NODEAGENT_BIN         use this binary instead of bin/nodeagent (which is
#                         rebuilt with `make build` when older than the sources)
#   REGISTRY_BIN          use this binary instead of building bin/testregistry
#   CRITEST_BIN           use this critest instead of the cri-tools build
#   NODEAGENT_TIMEOUT     seconds to wait for the CRI socket (default 60)
#   REGISTRY_TIMEOUT      seconds to wait for the registry (default 300)
#   CRITEST_KEEP_TMP=1    keep the temp dir (root/state/cni) for debugging
#   CRITEST_OUT_DIR       report and logs (default _output/critest)
#   CRITEST_GATE=FILE     fail unless every spec listed in FILE passed and at
#                         least its "# min-passed: N" specs passed (make test)
# Arguments after the options are passed to critest as they are:
#   hack/critest.sh --ginkgo.focus='Networking'
set -euo pipefail

# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HACK_DIR="${REPO_ROOT}/hack"
OUT_DIR="${CRITEST_OUT_DIR:-${REPO_ROOT}/_output/critest}"
JUNIT="${OUT_DIR}/junit.xml"
CNI_BIN_DIR="${CNI_BIN_DIR:-/opt/cni/bin}"
NODEAGENT_TIMEOUT="${NODEAGENT_TIMEOUT:-60}"
REGISTRY_TIMEOUT="${REGISTRY_TIMEOUT:-300}"
CRITEST_PARALLEL="${CRITEST_PARALLEL:-1}"

# Upstream hosts critest and its benchmarks pull from; each one is sent to the
# test registry (shared/critest-images.md).
MIRRORED_HOSTS=(
	registry.k8s.io k8s.gcr.io gcr.io docker.io registry-1.docker.io
	public.ecr.aws quay.io ghcr.io mcr.microsoft.com
)

case "${1:-}" in
-h | --help)
	sed -n '2,/^set -euo pipefail/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
esac

# State the teardown works from; empty until the thing exists.
TMP_DIR=""
BRIDGE=""
BRIDGE_CREATED_BY_US=0
REGISTRY_PID=""
NODEAGENT_PID=""
CRITEST_PID=""
CLEANED_UP=0

# ---------------------------------------------------------------- teardown
# unmount_under DIR: unmount everything mounted at or below DIR, deepest
# first, so that removing DIR can never reach into another file system.
unmount_under() {
	local dir="$1" mp n=0 failed=0 shown=()
	[[ -n "${dir}" ]] || return 0
	while read -r mp; do
		[[ -n "${mp}" ]] || continue
		n=$((n + 1))
		if [[ ${#shown[@]} -lt 3 ]]; then shown+=("${mp#"${dir}"/}"); fi
		if ! umount "${mp}" 2>/dev/null && ! umount -l "${mp}" 2>/dev/null; then
			warn "could not unmount ${mp}"
			failed=$((failed + 1))
		fi
	done < <(awk -v d="${dir}" '{
			mp = $5
			# mountinfo escapes space, tab, newline and backslash as \ooo.
			gsub(/\\040/, " ", mp); gsub(/\\011/, "\t", mp)
			gsub(/\\012/, "\n", mp); gsub(/\\134/, "\\", mp)
			if (mp == d || index(mp, d "/") == 1) print length(mp) "\t" mp
		}' /proc/self/mountinfo | sort -rn | cut -f2-)
	if [[ ${n} -gt 0 ]]; then
		warn "nodeagent left ${n} mount(s) under ${dir}; unmounted $((n - failed)) (e.g. ${shown[*]})"
	fi
	[[ ${failed} -eq 0 ]]
}

# delete_leftover_containers DIR: force-delete runc containers whose state
# lives under DIR (nodeagent should have removed them; say so if not).
delete_leftover_containers() {
	local dir="$1" state cdir id root
	[[ -n "${dir}" && -d "${dir}" ]] || return 0
	command -v runc >/dev/null 2>&1 || return 0
	while read -r state; do
		cdir="$(dirname "${state}")"
		id="$(basename "${cdir}")"
		root="$(dirname "${cdir}")"
		warn "container ${id} left behind (runc root ${root}); deleting it"
		runc --root "${root}" delete --force "${id}" >/dev/null 2>&1 ||
			warn "runc delete --force ${id} failed"
	done < <(find "${dir}" -xdev -name state.json -type f \
		-exec grep -l '"init_process_pid"' {} + 2>/dev/null || true)
}

# remove_all_pods: what critest left (an interrupted run) is removed through
# CRI, as kubelet would, so the daemon itself cleans up what it owns.
remove_all_pods() {
	[[ -n "${SOCK:-}" && -S "${SOCK}" ]] || return 0
	local ids
	ids="$(timeout 30 "${CRI_TOOLS_BIN}/crictl" --runtime-endpoint "unix://${SOCK}" pods -q 2>/dev/null || true)"
	[[ -n "${ids}" ]] || return 0
	warn "removing $(wc -w <<<"${ids}") pod(s) left by critest"
	# shellcheck disable=SC2086 # one argument per id
	timeout 120 "${CRI_TOOLS_BIN}/crictl" --runtime-endpoint "unix://${SOCK}" rmp -f ${ids} >/dev/null 2>&1 ||
		warn "crictl rmp failed"
}

# stop_leftover_shims DIR: stop shim processes whose state lives under DIR,
# by PID.
stop_leftover_shims() {
	local dir="$1" file pid
	[[ -n "${dir}" ]] || return 0
	while read -r file; do
		pid="$(cut -d/ -f3 <<<"${file}")"
		[[ "${pid}" != "$$" && "${pid}" != "${BASHPID}" ]] || continue
		warn "shim ${pid} left behind; stopping it"
		stop_pid "${pid}" shim 10
	done < <(shim_pids "${dir}" | sed 's|^|/proc/|; s|$|/cmdline|')
}

cleanup() {
	local rc=$?
	[[ ${CLEANED_UP} -eq 0 ]] || return "${rc}"
	CLEANED_UP=1
	set +e
	trap '' INT TERM # finish tearing down even if interrupted again
	if [[ -n "${CRITEST_PID}" ]]; then
		stop_pid "${CRITEST_PID}" critest 60
		CRITEST_PID=""
	fi
	if [[ -n "${NODEAGENT_PID}" ]]; then
		remove_all_pods
		stop_pid "${NODEAGENT_PID}" nodeagent 30
		NODEAGENT_PID=""
	fi
	delete_leftover_containers "${TMP_DIR}"
	stop_leftover_shims "${TMP_DIR}"
	if [[ -n "${REGISTRY_PID}" ]]; then
		stop_pid "${REGISTRY_PID}" testregistry 10
		REGISTRY_PID=""
	fi
	if [[ -n "${BRIDGE}" && ${BRIDGE_CREATED_BY_US} -eq 1 ]] &&
		ip link show dev "${BRIDGE}" >/dev/null 2>&1; then
		log "deleting bridge ${BRIDGE}"
		ip link delete dev "${BRIDGE}" || warn "could not delete bridge ${BRIDGE}"
	fi
	if [[ -n "${TMP_DIR}" && -d "${TMP_DIR}" ]]; then
		if ! unmount_under "${TMP_DIR}"; then
			warn "keeping ${TMP_DIR}: some mounts under it are still there"
		elif [[ "${CRITEST_KEEP_TMP:-0}" == 1 ]]; then
			log "keeping ${TMP_DIR} (CRITEST_KEEP_TMP=1)"
		else
			log "removing ${TMP_DIR}"
			rm -rf --one-file-system "${TMP_DIR}" || warn "could not remove ${TMP_DIR}"
		fi
	fi
	return "${rc}"
}

# shellcheck disable=SC2317 # called through trap
on_signal() {
	local sig="$1" code="$2"
	warn "caught SIG${sig}; tearing down"
	cleanup
	trap - EXIT
	exit "${code}"
}

trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM

# ---------------------------------------------------------------- helpers
# split_args STRING: print STRING's shell-quoted words NUL-separated, without
# evaluating anything (xargs understands '...' and "..." quoting).
split_args() {
	[[ -n "$1" ]] || return 0
	printf '%s' "$1" | xargs printf '%s\0'
}

# http_get_status HOST PORT PATH: print the HTTP status code of GET PATH.
http_get_status() {
	local host="$1" port="$2" path="$3" line=""
	exec 3<>"/dev/tcp/${host}/${port}" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "${path}" "${host}" "${port}" >&3
	IFS=' ' read -r -t 10 _ line _ <&3 || true
	exec 3<&- 3>&-
	printf '%s\n' "${line}"
}

# summarize_junit FILE: print failed specs, then the one summary line.
# Specs filtered out by focus/skip (ginkgo marks them skipped with the bare
# message "skipped") are not counted; Skip()s at run time count as skipped.
summarize_junit() {
	awk -v name="${LOG_NAME}" '
		BEGIN { RS = "</testcase>" }
		function attr(s, a,   v) {
			if (!match(s, a "=\"[^\"]*\"")) return ""
			v = substr(s, RSTART + length(a) + 2, RLENGTH - length(a) - 3)
			gsub(/&#34;|&quot;/, "\"", v); gsub(/&#39;|&apos;/, "\047", v)
			gsub(/&lt;/, "<", v); gsub(/&gt;/, ">", v); gsub(/&amp;/, "\\&", v)
			return v
		}
		{
			i = index($0, "<testcase ")
			if (i == 0) next
			rec = substr($0, i)
			tag = substr(rec, 1, index(rec, ">"))
			n = attr(tag, "name"); st = attr(tag, "status")
			isspec = (n ~ /^\[It\]/)
			cases++
			if (st == "passed") { if (isspec) passed++ }
			else if (st == "skipped") {
				j = index(rec, "<skipped ")
				msg = (j > 0) ? attr(substr(rec, j), "message") : ""
				if (!isspec) next
				if (msg == "skipped") filtered++
				else skipped++
			}
			else if (st == "pending") { if (isspec) skipped++ }
			else { failed++; printf "%s: %s: %s\n", name, toupper(st), n }
		}
		END {
			if (cases == 0) exit 1
			if (filtered > 0)
				printf "%s: %d specs not run (filtered out by focus/skip)\n", name, filtered
			printf "%s: %d passed, %d failed, %d skipped\n", name, passed, failed, skipped
		}' "$1"
}

# passed_specs FILE: the names of the specs that passed, one per line.
passed_specs() {
	awk '
		BEGIN { RS = "</testcase>" }
		{
			i = index($0, "<testcase ")
			if (i == 0) next
			tag = substr($0, i); tag = substr(tag, 1, index(tag, ">"))
			if (tag !~ /status="passed"/) next
			if (!match(tag, /name="[^"]*"/)) next
			n = substr(tag, RSTART + 6, RLENGTH - 7)
			gsub(/&#34;|&quot;/, "\"", n); gsub(/&#39;|&apos;/, "\047", n)
			gsub(/&lt;/, "<", n); gsub(/&gt;/, ">", n); gsub(/&amp;/, "\\&", n)
			if (n ~ /^\[It\] /) print substr(n, 6)
		}' "$1"
}

# gate JUNIT LIST: every spec of LIST passed, and at least min-passed did.
gate() {
	local junit="$1" list="$2" min passed missing
	min="$(sed -n 's/^# min-passed: *\([0-9][0-9]*\).*/\1/p' "${list}" | head -n1)"
	passed="$(passed_specs "${junit}")"
	missing="$(grep -v '^#' "${list}" | grep -v '^$' | grep -vxF -f <(printf '%s\n' "${passed}") || true)"
	if [[ -n "${missing}" ]]; then
		printf '%s: gate: expected to pass but did not:\n%s\n' "${LOG_NAME}" "${missing}" >&2
		return 1
	fi
	if [[ -n "${min}" ]] && (($(grep -c . <<<"${passed}") < min)); then
		printf '%s: gate: %d specs passed, fewer than the minimum %d\n' "${LOG_NAME}" "$(grep -c . <<<"${passed}")" "${min}" >&2
		return 1
	fi
	log "gate: all $(grep -v '^#' "${list}" | grep -c .) listed specs passed"
}

# shim_pids DIR: PIDs of shims whose state lives under DIR. The pattern goes
# to grep through a file so that grep's own command line cannot match it.
shim_pids() {
	grep -lsF -f <(printf '%s\n' "$1/state/shims/") /proc/[0-9]*/cmdline 2>/dev/null |
		cut -d/ -f3 | grep -vx -e "$$" -e "${BASHPID}" || true
}

# leak_check: after critest removed its pods, nothing a removed pod owned may
# remain: pins, pod dirs, bundles, shims and their state, runtime state,
# mounts, veths on our bridge, IPAM reservations, iptables rules, cgroups.
leak_check() {
	local leaks=() f pods
	pods="$("${CRI_TOOLS_BIN}/crictl" --runtime-endpoint "unix://${SOCK}" pods -q 2>/dev/null || true)"
	[[ -z "${pods}" ]] || leaks+=("pods still listed: $(wc -w <<<"${pods}")")
	for f in "${TMP_DIR}"/state/ns/* "${TMP_DIR}"/state/sandboxes/* "${TMP_DIR}"/state/shims/* \
		"${TMP_DIR}"/state/infra/* "${TMP_DIR}"/state/runtime/*/* "${TMP_DIR}"/root/containers/*; do
		[[ -e "${f}" ]] && leaks+=("left behind: ${f#"${TMP_DIR}"/}")
	done
	while read -r f; do
		leaks+=("mount: ${f}")
	done < <(awk -v d="${TMP_DIR}/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo)
	while read -r f; do
		leaks+=("veth on ${BRIDGE}: ${f}")
	done < <(ip -o link show master "${BRIDGE}" 2>/dev/null | awk -F': ' '{ print $2 }')
	while read -r f; do
		leaks+=("IPAM reservation: ${f}")
	done < <(find "${TMP_DIR}/cni-ipam" -type f ! -name 'lock' ! -name 'last_reserved_ip*' 2>/dev/null)
	while read -r f; do
		leaks+=("iptables: ${f}")
	done < <(iptables-save 2>/dev/null | grep -F -e "${SUBNET%.*}." -e "${NET_NAME}" || true)
	while read -r f; do
		leaks+=("shim: ${f}")
	done < <(shim_pids "${TMP_DIR}")
	while read -r f; do
		grep -qxF "${f}" <<<"${CGROUPS_BEFORE}" || leaks+=("cgroup: ${f}")
	done < <(list_pod_cgroups)
	if [[ ${#leaks[@]} -gt 0 ]]; then
		printf '%s: leak check: %d item(s) left by removed pods:\n' "${LOG_NAME}" "${#leaks[@]}" >&2
		printf '  %s\n' "${leaks[@]}" >&2
		return 1
	fi
	log "leak check: nothing left by removed pods"
}

# list_pod_cgroups: container cgroups under nodeagent's default parent.
list_pod_cgroups() {
	find /sys/fs/cgroup/*/nodeagent -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort || true
}

# ---------------------------------------------------------------- preflight
need_root
command -v go >/dev/null 2>&1 || die "go not found; install Go >= 1.26 first"
[[ "${CRITEST_PARALLEL}" =~ ^[0-9]+$ && "${CRITEST_PARALLEL}" -ge 1 ]] ||
	die "CRITEST_PARALLEL must be a positive integer, not '${CRITEST_PARALLEL}'"
split_args "${CRITEST_ARGS:-}" >/dev/null || die "cannot parse CRITEST_ARGS (unbalanced quotes?)"
split_args "${NODEAGENT_ARGS:-}" >/dev/null || die "cannot parse NODEAGENT_ARGS (unbalanced quotes?)"
[[ -x "${CNI_BIN_DIR}/bridge" && -x "${CNI_BIN_DIR}/host-local" && -x "${CNI_BIN_DIR}/portmap" ]] ||
	die "CNI plugins missing in ${CNI_BIN_DIR}; run hack/install-deps.sh"
# runc >= 1.2 from hack/install-deps.sh lives in /usr/local/sbin; the CRI
# tools (critest runs `ginkgo` from PATH when parallel) in the cache.
export PATH="/usr/local/sbin:${CRI_TOOLS_BIN}:${PATH}"
RUNC_VERSION_SEEN="$(runc --version 2>/dev/null | awk 'NR == 1 { print $3 }')" || true
case "${RUNC_VERSION_SEEN}" in
1.[2-9].* | 1.[1-9][0-9].* | [2-9].*) ;;
*) die "runc ${RUNC_VERSION_SEEN:-not found} is older than 1.2; run hack/install-deps.sh" ;;
esac

mkdir -p "${OUT_DIR}"
rm -f "${JUNIT}" "${OUT_DIR}"/*.log

# 1. cri-tools
"${HACK_DIR}/install-cri-tools.sh"
CRITEST="${CRITEST_BIN:-${CRI_TOOLS_BIN}/critest}"
CRICTL="${CRI_TOOLS_BIN}/crictl"

# 2. binaries
cd "${REPO_ROOT}"
if [[ -n "${NODEAGENT_BIN:-}" ]]; then
	[[ -x "${NODEAGENT_BIN}" ]] || die "NODEAGENT_BIN=${NODEAGENT_BIN} is not executable"
	log "using nodeagent ${NODEAGENT_BIN}"
else
	# `make critest` has just run `make build`; rebuild only when bin/nodeagent
	# is missing or older than a Go source or go.mod (hack/ is not part of it).
	NODEAGENT_BIN="${REPO_ROOT}/bin/nodeagent"
	if [[ ! -x "${NODEAGENT_BIN}" ]] || [[ -n "$(find "${REPO_ROOT}" \
		\( -path "${REPO_ROOT}/.git" -o -path "${REPO_ROOT}/_output" -o -path "${REPO_ROOT}/hack" \) -prune \
		-o \( -name '*.go' -o -name go.mod -o -name go.sum \) -newer "${NODEAGENT_BIN}" -print -quit)" ]]; then
		log "bin/nodeagent is missing or older than the sources: building it"
		if [[ -f "${REPO_ROOT}/Makefile" ]]; then
			make -C "${REPO_ROOT}" --no-print-directory build || die "make build failed"
		else
			CGO_ENABLED=0 go build -o "${NODEAGENT_BIN}" ./cmd/nodeagent ||
				die "building nodeagent (./cmd/nodeagent) failed"
		fi
	fi
	[[ -x "${NODEAGENT_BIN}" ]] || die "no ${NODEAGENT_BIN} after the build"
	log "using ${NODEAGENT_BIN}"
fi
if [[ -n "${REGISTRY_BIN:-}" ]]; then
	[[ -x "${REGISTRY_BIN}" ]] || die "REGISTRY_BIN=${REGISTRY_BIN} is not executable"
	log "using test registry ${REGISTRY_BIN}"
else
	REGISTRY_BIN="${REPO_ROOT}/bin/testregistry"
	compgen -G "${HACK_DIR}/testregistry/*.go" >/dev/null ||
		die "the test registry (hack/testregistry) does not exist yet; cannot serve critest's images"
	log "building ${REGISTRY_BIN}"
	CGO_ENABLED=0 go build -o "${REGISTRY_BIN}" ./hack/testregistry ||
		die "building the test registry (./hack/testregistry) failed"
fi

TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/nodeagent-critest.XXXXXX")"
chmod 0755 "${TMP_DIR}"
log "work dir ${TMP_DIR}, logs and report in ${OUT_DIR}"

# 3. test registry
ADDR_FILE="${TMP_DIR}/registry.addr"
log "starting test registry (log: ${OUT_DIR}/testregistry.log)"
"${REGISTRY_BIN}" --listen 127.0.0.1:0 --addr-file "${ADDR_FILE}" \
	>"${OUT_DIR}/testregistry.log" 2>&1 &
REGISTRY_PID=$!
wait_for_file "${ADDR_FILE}" "${REGISTRY_TIMEOUT}" "${REGISTRY_PID}" || {
	tail -n 20 "${OUT_DIR}/testregistry.log" | sed "s/^/${LOG_NAME}:   | /" >&2
	die "test registry did not write its address to ${ADDR_FILE}"
}
# Wait for a complete line: the file may be written in several steps.
for ((i = 0; i < 50; i++)); do
	[[ "$(tail -c1 "${ADDR_FILE}" | od -An -c | tr -d ' ')" == '\n' ]] && break
	sleep 0.1
done
REGISTRY_ADDR="$(head -n1 "${ADDR_FILE}" | tr -d '[:space:]')"
REGISTRY_ADDR="${REGISTRY_ADDR#http://}"
REGISTRY_ADDR="${REGISTRY_ADDR%/}"
[[ "${REGISTRY_ADDR}" =~ ^127\.[0-9.]+:[0-9]+$ ]] ||
	die "test registry wrote '${REGISTRY_ADDR}' to ${ADDR_FILE}; expected 127.x.x.x:PORT"
STATUS="$(http_get_status "${REGISTRY_ADDR%:*}" "${REGISTRY_ADDR##*:}" /v2/ || true)"
[[ "${STATUS}" == 200 || "${STATUS}" == 401 ]] ||
	die "test registry at ${REGISTRY_ADDR} answered GET /v2/ with '${STATUS:-nothing}'"
log "test registry serving at http://${REGISTRY_ADDR} (pid ${REGISTRY_PID})"

# 4. CNI: a bridge name and subnet nobody uses. The lock keeps two runs from
# picking the same pair before either bridge exists.
CNI_DIR="${TMP_DIR}/cni"
mkdir -p "${CNI_DIR}"
exec 8>/run/lock/nodeagent-critest-net.lock
flock 8
mapfile -t OTHER_SUBNETS < <(cat "${TMPDIR:-/tmp}"/nodeagent-critest.*/cni/*.conflist 2>/dev/null |
	sed -n 's/.*"subnet": *"\([0-9./]*\)".*/\1/p')
SUBNET="$(pick_free_subnet "${OTHER_SUBNETS[@]}")" ||
	die "no free /24 in 10.88.0.0/16 (see ip route)"
for ((i = 0; i < 20; i++)); do
	BRIDGE="na$(random_hex 6)0"
	ip link show dev "${BRIDGE}" >/dev/null 2>&1 || break
done
ip link show dev "${BRIDGE}" >/dev/null 2>&1 && die "cannot find an unused bridge name"
BRIDGE_CREATED_BY_US=1 # it does not exist yet: whoever creates it does so for us
NET_NAME="nodeagent-critest-${BRIDGE}"
cat >"${CNI_DIR}/10-nodeagent-critest.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "${NET_NAME}",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${BRIDGE}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "${TMP_DIR}/cni-ipam",
        "ranges": [[{ "subnet": "${SUBNET}" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    {
      "type": "portmap",
      "capabilities": { "portMappings": true }
    }
  ]
}
EOF
flock -u 8
exec 8>&-
cp "${CNI_DIR}/10-nodeagent-critest.conflist" "${OUT_DIR}/cni.conflist"
log "CNI network ${NET_NAME}: bridge ${BRIDGE}, subnet ${SUBNET}"

# 5. nodeagent
SOCK="${TMP_DIR}/state/nodeagent.sock"
ENDPOINT="unix://${SOCK}"
mkdir -p "${TMP_DIR}/root" "${TMP_DIR}/state"
cat >"${TMP_DIR}/crictl.yaml" <<EOF
runtime-endpoint: ${ENDPOINT}
image-endpoint: ${ENDPOINT}
timeout: 30
EOF
# An explicit, empty configuration file: the embedded defaults, untouched by
# /etc/nodeagent/config.toml and its config.d/ on this machine.
printf '# nodeagent configuration for hack/critest.sh: defaults + flags\n' \
	>"${TMP_DIR}/nodeagent.toml"
NA_ARGS=(
	--config "${TMP_DIR}/nodeagent.toml"
	--root "${TMP_DIR}/root"
	--state "${TMP_DIR}/state"
	--socket "${SOCK}"
	--cni-conf-dir "${CNI_DIR}"
	--cni-bin-dir "${CNI_BIN_DIR}"
)
for host in "${MIRRORED_HOSTS[@]}"; do
	NA_ARGS+=(--registry-mirror "${host}=http://${REGISTRY_ADDR}")
done
mapfile -d '' -t EXTRA_NA_ARGS < <(split_args "${NODEAGENT_ARGS:-}")
NA_ARGS+=("${EXTRA_NA_ARGS[@]}")
log "starting nodeagent (log: ${OUT_DIR}/nodeagent.log): ${NODEAGENT_BIN} ${NA_ARGS[*]}"
"${NODEAGENT_BIN}" "${NA_ARGS[@]}" >"${OUT_DIR}/nodeagent.log" 2>&1 &
NODEAGENT_PID=$!
wait_for_socket "${SOCK}" "${NODEAGENT_TIMEOUT}" "${NODEAGENT_PID}" || {
	tail -n 20 "${OUT_DIR}/nodeagent.log" | sed "s/^/${LOG_NAME}:   | /" >&2
	die "nodeagent did not create ${SOCK}"
}
READY=0
for ((i = 0; i < NODEAGENT_TIMEOUT; i++)); do
	if VERSION_OUT="$("${CRICTL}" --config "${TMP_DIR}/crictl.yaml" --timeout 5s version 2>&1)"; then
		READY=1
		break
	fi
	kill -0 "${NODEAGENT_PID}" 2>/dev/null || break
	sleep 1
done
if [[ ${READY} -ne 1 ]]; then
	printf '%s\n' "${VERSION_OUT:-}" | sed "s/^/${LOG_NAME}:   | /" >&2
	tail -n 20 "${OUT_DIR}/nodeagent.log" | sed "s/^/${LOG_NAME}:   | /" >&2
	die "nodeagent does not answer CRI Version on ${ENDPOINT}"
fi
log "nodeagent ready (pid ${NODEAGENT_PID}): $(printf '%s\n' "${VERSION_OUT}" |
	awk -F': *' '/^RuntimeName|^RuntimeVersion|^RuntimeApiVersion/ { printf "%s=%s ", $1, $2 }')"

# 6. critest
CT_ARGS=(
	--config "${TMP_DIR}/crictl.yaml"
	--runtime-endpoint "${ENDPOINT}"
	--image-endpoint "${ENDPOINT}"
	--ginkgo.v
	# critest v1.36.0 accepts --report-dir but writes nothing there; the
	# JUnit report comes from ginkgo itself.
	"--ginkgo.junit-report=${JUNIT}"
)
[[ -t 1 ]] || CT_ARGS+=(--ginkgo.no-color)
if [[ "${CRITEST_PARALLEL}" -gt 1 ]]; then
	CT_ARGS+=("--parallel=${CRITEST_PARALLEL}")
fi
mapfile -d '' -t EXTRA_CT_ARGS < <(split_args "${CRITEST_ARGS:-}")
CT_ARGS+=("${EXTRA_CT_ARGS[@]}" "$@")
CGROUPS_BEFORE="$(list_pod_cgroups)"
log "running: critest ${CT_ARGS[*]} (log: ${OUT_DIR}/critest.log)"
# In the background so that a signal to this script is acted on at once.
# TMPDIR: critest --parallel leaves a temp dir behind; keep it in ours.
mkdir -p "${TMP_DIR}/tmp"
TMPDIR="${TMP_DIR}/tmp" "${CRITEST}" "${CT_ARGS[@]}" > >(tee "${OUT_DIR}/critest.log") 2>&1 &
CRITEST_PID=$!
CRITEST_RC=0
wait "${CRITEST_PID}" || CRITEST_RC=$?
CRITEST_PID=""
log "critest exited with status ${CRITEST_RC}"
LEAK_RC=0
leak_check || LEAK_RC=1

if [[ ! -s "${JUNIT}" ]]; then
	die "critest wrote no JUnit report (${JUNIT}); see ${OUT_DIR}/critest.log"
fi
SUMMARY="$(summarize_junit "${JUNIT}")" ||
	die "could not read any test case from ${JUNIT}"
# Tear down first so that the summary is the last line printed.
cleanup || true
log "JUnit report: ${JUNIT}"
GATE_RC=0
if [[ -n "${CRITEST_GATE:-}" ]]; then
	gate "${JUNIT}" "${CRITEST_GATE}" || GATE_RC=1
	[[ ${LEAK_RC} -eq 0 ]] || GATE_RC=1
fi
printf '%s\n' "${SUMMARY}"
exit "${GATE_RC}"
