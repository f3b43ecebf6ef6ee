#!/usr/bin/env bash
# Benchmarks nodeagent and containerd 2.4 side by side on this machine
# (`make bench-compare`):
#   1. builds bin/nodeagent (make build), the bench tool (test/e2e/bench) and
#      containerd (hack/install-containerd.sh, cached)
#   2. writes one bridge CNI conflist per runtime (same plugins, separate
#      bridges and free 10.88.x.0/24 subnets)
#   3. starts nodeagent and containerd, each with its own root, state and
#      socket under one temp dir, every upstream registry host mirrored to
#      the test registry over plain HTTP
#   4. runs the bench tool against nodeagent, then containerd (one at a time,
#      so that they do not share the 2 CPUs); the tool serves the test
#      registry in-process on a port chosen here, so it counts blob GETs
#   5. prints both tables and the ratio table nodeagent/containerd
# and tears all of it down on exit, Ctrl-C or SIGTERM: processes by PID,
# mounts, bridges, cgroups, the temp dir.
#
# Outputs in _output/bench: <runtime>.json, <runtime>.txt (table),
# <runtime>.log (bench progress), <runtime>-daemon.log, compare.txt,
# containerd.toml.
#
# Environment:
#   BENCH_ARGS        extra bench flags for both runs, shell-quoted, e.g.
#                     BENCH_ARGS='--iterations 10 --list-pods 10'
#   BENCH_RUNTIMES    which to run, in order (default "nodeagent containerd")
#   NODEAGENT_BIN     use this binary instead of building bin/nodeagent
#   CONTAINERD_BIN_DIR  use containerd binaries from here instead of building
#   RUNC              runtime binary for both (default /usr/local/sbin/runc)
#   BENCH_OUT_DIR     outputs (default _output/bench)
#   BENCH_KEEP_TMP=1  keep the temp dir for debugging
set -euo pipefail

# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
-h | --help)
	sed -n '2,/^set -euo pipefail/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
esac

OUT_DIR="${BENCH_OUT_DIR:-${REPO_ROOT}/_output/bench}"
CNI_BIN_DIR="${CNI_BIN_DIR:-/opt/cni/bin}"
RUNC="${RUNC:-/usr/local/sbin/runc}"
read -r -a RUNTIMES <<<"${BENCH_RUNTIMES:-nodeagent containerd}"
SANDBOX_IMAGE="registry.k8s.io/pause:3.10"
# Upstream hosts of the images the bench (and critest) pulls; each one goes
# to the test registry.
MIRRORED_HOSTS=(
	registry.k8s.io k8s.gcr.io gcr.io docker.io registry-1.docker.io
	public.ecr.aws quay.io ghcr.io mcr.microsoft.com
)
# Pod names and the cgroup parent carry it, so teardown can find what a
# killed bench run left.
RUN_ID="$(random_hex 8)"

# State the teardown works from; empty until the thing exists.
TMP_DIR=""
BENCH_PID=""
NA_PID=""
CD_PID=""
BRIDGES=()
CLEANED_UP=0

# ---------------------------------------------------------------- teardown
# unmount_under DIR: unmount everything at or below DIR, deepest first, so
# that removing DIR never reaches into another file system.
unmount_under() {
	local dir="$1" mp failed=0
	while read -r mp; do
		[[ -n "${mp}" ]] || continue
		umount "${mp}" 2>/dev/null || umount -l "${mp}" 2>/dev/null || {
			warn "could not unmount ${mp}"
			failed=1
		}
	done < <(awk -v d="${dir}" '{
			mp = $5
			gsub(/\\040/, " ", mp); gsub(/\\011/, "\t", mp)
			gsub(/\\012/, "\n", mp); gsub(/\\134/, "\\", mp)
			if (mp == d || index(mp, d "/") == 1) print length(mp) "\t" mp
		}' /proc/self/mountinfo | sort -rn | cut -f2-)
	return "${failed}"
}

# pids_with_arg STRING: PIDs whose command line contains STRING. The
# pattern goes through a file so that grep's own command line does not
# match it.
pids_with_arg() {
	grep -lsFf <(printf '%s\n' "$1") /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 |
		grep -vx -e "$$" -e "${BASHPID}" || true
}

# stop_leftovers: what a killed bench run left once the daemons are gone:
# shims (by PID, found by the marker in their command line) and runc
# containers whose state lives under our temp dir.
stop_leftovers() {
	local pid state cdir
	for pid in $(pids_with_arg "${TMP_DIR}/"); do
		[[ -e "/proc/${pid}" ]] || continue
		warn "process ${pid} ($(tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | cut -c1-80)) left behind; stopping it"
		stop_pid "${pid}" leftover 10
	done
	while read -r state; do
		cdir="$(dirname "${state}")"
		warn "runc container $(basename "${cdir}") left behind; deleting it"
		"${RUNC}" --root "$(dirname "${cdir}")" delete --force "$(basename "${cdir}")" >/dev/null 2>&1 ||
			warn "runc delete --force $(basename "${cdir}") failed"
	done < <(find "${TMP_DIR}" -xdev -name state.json -type f \
		-exec grep -l '"init_process_pid"' {} + 2>/dev/null || true)
}

# remove_cgroups: the bench's cgroup parents, if a killed run left them.
remove_cgroups() {
	local d
	for d in /sys/fs/cgroup/nodeagent-bench-"${RUN_ID}"* /sys/fs/cgroup/*/nodeagent-bench-"${RUN_ID}"*; do
		[[ -d "${d}" ]] || continue
		find "${d}" -depth -type d -exec rmdir {} + 2>/dev/null || warn "cgroup ${d} is still in use"
	done
}

cleanup() {
	local rc=$? b
	[[ ${CLEANED_UP} -eq 0 ]] || return "${rc}"
	CLEANED_UP=1
	set +e
	trap '' INT TERM # finish tearing down even if interrupted again
	# The bench removes its pods itself on SIGTERM; give it time to.
	stop_pid "${BENCH_PID}" bench 300
	stop_pid "${NA_PID}" nodeagent 30
	stop_pid "${CD_PID}" containerd 30
	if [[ -n "${TMP_DIR}" && -d "${TMP_DIR}" ]]; then
		stop_leftovers
	fi
	remove_cgroups
	for b in "${BRIDGES[@]}"; do
		if ip link show dev "${b}" >/dev/null 2>&1; then
			ip link delete dev "${b}" || warn "could not delete bridge ${b}"
		fi
	done
	if [[ -n "${TMP_DIR}" && -d "${TMP_DIR}" ]]; then
		if ! unmount_under "${TMP_DIR}"; then
			warn "keeping ${TMP_DIR}: some mounts under it are still there"
		elif [[ "${BENCH_KEEP_TMP:-0}" == 1 ]]; then
			log "keeping ${TMP_DIR} (BENCH_KEEP_TMP=1)"
		else
			rm -rf --one-file-system "${TMP_DIR}" || warn "could not remove ${TMP_DIR}"
		fi
	fi
	return "${rc}"
}

on_signal() {
	warn "caught SIG$1; tearing down"
	cleanup
	trap - EXIT
	exit "$2"
}

trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM

# ---------------------------------------------------------------- helpers
# split_args STRING: STRING's shell-quoted words, NUL-separated, unevaluated.
split_args() {
	[[ -n "$1" ]] || return 0
	printf '%s' "$1" | xargs printf '%s\0'
}

# pick_free_port: a loopback TCP port nothing listens on. The bench binds
# it later (per run); the window is small and a clash fails loudly.
pick_free_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 20000))
		if [[ -z "$(ss -Hltn "sport = :${p}" 2>/dev/null)" ]]; then
			printf '%s\n' "${p}"
			return 0
		fi
	done
	return 1
}

# write_conflist FILE NAME BRIDGE SUBNET IPAM_DIR: the bridge network both
# runtimes get (as hack/critest.sh writes it).
write_conflist() {
	cat >"$1" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$2",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$3",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$5",
        "ranges": [[{ "subnet": "$4" }]],
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
}

# setup_networks: one conflist per runtime, on bridges and subnets nobody
# uses. The lock (shared with hack/critest.sh) keeps parallel runs from
# picking the same ones before either bridge exists.
setup_networks() {
	local rt subnet bridge taken=() i
	exec 8>/run/lock/nodeagent-critest-net.lock
	flock 8
	mapfile -t taken < <(cat "${TMPDIR:-/tmp}"/nodeagent-critest.*/cni/*.conflist \
		"${TMPDIR:-/tmp}"/nodeagent-bench.*/*/cni/*.conflist 2>/dev/null |
		sed -n 's/.*"subnet": *"\([0-9./]*\)".*/\1/p')
	for rt in nodeagent containerd; do
		subnet="$(pick_free_subnet "${taken[@]}")" || die "no free /24 in 10.88.0.0/16 (see ip route)"
		taken+=("${subnet}")
		for ((i = 0; i < 20; i++)); do
			bridge="nb$(random_hex 6)0"
			ip link show dev "${bridge}" >/dev/null 2>&1 || break
		done
		BRIDGES+=("${bridge}") # it does not exist yet: whoever creates it does so for us
		mkdir -p "${TMP_DIR}/${rt}/cni"
		write_conflist "${TMP_DIR}/${rt}/cni/10-bench.conflist" "bench-${rt}-${bridge}" \
			"${bridge}" "${subnet}" "${TMP_DIR}/${rt}/cni-ipam"
		log "${rt}: CNI bridge ${bridge}, subnet ${subnet}"
	done
	flock -u 8
	exec 8>&-
}

# ---------------------------------------------------------------- daemons
start_nodeagent() {
	local dir="${TMP_DIR}/nodeagent" args host
	mkdir -p "${dir}/root" "${dir}/state"
	printf '# hack/bench-compare.sh: defaults + flags\n' >"${dir}/nodeagent.toml"
	args=(
		--config "${dir}/nodeagent.toml" --root "${dir}/root" --state "${dir}/state"
		--socket "${dir}/state/nodeagent.sock"
		--cni-conf-dir "${dir}/cni" --cni-bin-dir "${CNI_BIN_DIR}"
	)
	for host in "${MIRRORED_HOSTS[@]}"; do
		args+=(--registry-mirror "${host}=http://${REGISTRY_ADDR}")
	done
	# setsid: a terminal's Ctrl-C goes to its whole process group; the
	# daemons must outlive it so that the bench can remove its pods
	# through them. setsid execs in place (we are no group leader), so $!
	# is the daemon's PID.
	setsid "${NODEAGENT_BIN}" "${args[@]}" >"${OUT_DIR}/nodeagent-daemon.log" 2>&1 &
	NA_PID=$!
	wait_for_socket "${dir}/state/nodeagent.sock" 60 "${NA_PID}" ||
		die "nodeagent did not start (log: ${OUT_DIR}/nodeagent-daemon.log)"
	log "nodeagent running (pid ${NA_PID})"
}

# write_containerd_config DIR: config version 3, which every containerd 2.x
# reads (2.4 migrates it to its version 4 at start, with a warning). Every
# path containerd would otherwise take from the host (/var/lib/containerd,
# /run/containerd, its shim sockets, /opt/containerd, the NRI socket, the
# global netns dir, /etc/containerd/certs.d) is moved under DIR or turned
# off, so this instance shares nothing with anything else.
write_containerd_config() {
	local dir="$1" host
	mkdir -p "${dir}/root" "${dir}/state" "${dir}/tmp" "${dir}/opt"
	for host in "${MIRRORED_HOSTS[@]}"; do
		mkdir -p "${dir}/certs.d/${host}"
		# The test registry serves every image at its path without the
		# host, as a mirror is asked; plain HTTP, so no TLS to verify.
		cat >"${dir}/certs.d/${host}/hosts.toml" <<EOF
server = "http://${REGISTRY_ADDR}"

[host."http://${REGISTRY_ADDR}"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
EOF
	done
	cat >"${dir}/containerd.toml" <<EOF
version = 3
root = "${dir}/root"
state = "${dir}/state"
temp = "${dir}/tmp"

[grpc]
  address = "${dir}/containerd.sock"

[ttrpc]
  address = "${dir}/containerd.sock.ttrpc"

[plugins.'io.containerd.internal.v1.opt']
  path = "${dir}/opt"

[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.shim.v1.manager']
  # At most 42 characters: the socket path limit.
  socket_dir = "${dir}/s"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"

  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "${SANDBOX_IMAGE}"

  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "${dir}/certs.d"

[plugins.'io.containerd.cri.v1.runtime']
  # No CAP_SYS_RESOURCE here: without it, setting a container's
  # oom_score_adj below containerd's own fails.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true

  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"

    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "${RUNC}"
        Root = "${dir}/state/runc"
        SystemdCgroup = false

  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["${CNI_BIN_DIR}"]
    conf_dir = "${dir}/cni"
    max_conf_num = 1

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
EOF
	cp "${dir}/containerd.toml" "${OUT_DIR}/containerd.toml"
}

start_containerd() {
	local dir="${TMP_DIR}/containerd"
	write_containerd_config "${dir}"
	# containerd finds containerd-shim-runc-v2 in its PATH.
	PATH="${CONTAINERD_BIN_DIR}:${PATH}" setsid "${CONTAINERD_BIN_DIR}/containerd" \
		--config "${dir}/containerd.toml" >"${OUT_DIR}/containerd-daemon.log" 2>&1 &
	CD_PID=$!
	wait_for_socket "${dir}/containerd.sock" 60 "${CD_PID}" ||
		die "containerd did not start (log: ${OUT_DIR}/containerd-daemon.log)"
	log "containerd running (pid ${CD_PID})"
}

# run_bench NAME SOCKET DAEMON_PID SHIM_MARKER: one bench run, in the
# background so that a signal to this script is acted on at once. The tees
# ignore Ctrl-C so that the bench's output during its cleanup still lands.
run_bench() {
	local name="$1" rc=0
	log "benchmarking ${name} (progress: ${OUT_DIR}/${name}.log)"
	# TMPDIR: the pods' log directories go under our temp dir, which the
	# teardown removes even if the bench could not.
	TMPDIR="${TMP_DIR}/tmp" "${BENCH}" --name "${name}" --endpoint "unix://$2" --daemon-pid "$3" --shim-marker "$4" \
		--registry-listen "${REGISTRY_ADDR}" --run-id "${RUN_ID}-${name:0:2}" \
		--ready-timeout 60s --json "${OUT_DIR}/${name}.json" "${EXTRA_BENCH_ARGS[@]}" \
		> >(trap '' INT TERM && tee "${OUT_DIR}/${name}.txt") \
		2> >(trap '' INT TERM && tee "${OUT_DIR}/${name}.log" >&2) &
	BENCH_PID=$!
	wait "${BENCH_PID}" || rc=$?
	BENCH_PID=""
	[[ ${rc} -eq 0 ]] || warn "bench against ${name} exited with status ${rc}; its figures may be incomplete"
}

# ---------------------------------------------------------------- main
need_root
mkdir -p "${OUT_DIR}"
rm -f "${OUT_DIR}"/*.json "${OUT_DIR}"/*.txt
mapfile -d '' -t EXTRA_BENCH_ARGS < <(split_args "${BENCH_ARGS:-}")
cd "${REPO_ROOT}"

if [[ -z "${NODEAGENT_BIN:-}" ]]; then
	make --no-print-directory build >&2 || die "make build failed"
	NODEAGENT_BIN="${REPO_ROOT}/bin/nodeagent"
fi
if [[ -z "${CONTAINERD_BIN_DIR:-}" ]]; then
	CONTAINERD_BIN_DIR="$("${REPO_ROOT}/hack/install-containerd.sh")" || die "building containerd failed"
fi
[[ -x "${CONTAINERD_BIN_DIR}/containerd" ]] || die "no containerd in ${CONTAINERD_BIN_DIR}"

TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/nodeagent-bench.XXXXXX")"
chmod 0755 "${TMP_DIR}"
mkdir -p "${TMP_DIR}/tmp"
# Outside TMP_DIR: the comparison runs after the teardown removed it.
BENCH="${OUT_DIR}/bench-tool"
log "building the bench tool"
CGO_ENABLED=0 go build -o "${BENCH}" ./test/e2e/bench || die "building test/e2e/bench failed"

REGISTRY_ADDR="127.0.0.1:$(pick_free_port)" || die "no free TCP port"
setup_networks
start_nodeagent
start_containerd

for rt in "${RUNTIMES[@]}"; do
	case "${rt}" in
	nodeagent) run_bench nodeagent "${TMP_DIR}/nodeagent/state/nodeagent.sock" "${NA_PID}" "${TMP_DIR}/nodeagent/state/shims/" ;;
	# Its shims are containerd-shim-runc-v2 -address <this socket> ...
	containerd) run_bench containerd "${TMP_DIR}/containerd/containerd.sock" "${CD_PID}" "${TMP_DIR}/containerd/containerd.sock" ;;
	*) die "unknown runtime ${rt} in BENCH_RUNTIMES" ;;
	esac
done

cleanup || true
for rt in "${RUNTIMES[@]}"; do
	[[ -s "${OUT_DIR}/${rt}.txt" ]] && cat "${OUT_DIR}/${rt}.txt"
done
if [[ -s "${OUT_DIR}/nodeagent.json" && -s "${OUT_DIR}/containerd.json" ]]; then
	"${BENCH}" compare --names nodeagent,containerd \
		"${OUT_DIR}/nodeagent.json" "${OUT_DIR}/containerd.json" | tee "${OUT_DIR}/compare.txt"
fi
