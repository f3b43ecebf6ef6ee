#!/usr/bin/env bash
# Runs a static pod through nodeagent under a real kubelet, as root:
#
#   1. builds kubelet ${KUBELET_VERSION} from the Go module proxy (cached in
#      ${NODEAGENT_CACHE}/kubelet-VERSION; about 4 minutes on 2 cores the first
#      time). k8s.io/kubernetes is not an ordinary module: its go.mod points the
#      k8s.io/* staging modules at ./staging/src/..., which a module download does
#      not contain. A throwaway module requires k8s.io/kubernetes vX.Y.Z and
#      replaces each staging module with its published twin at v0.Y.Z, the
#      version Kubernetes tags together with vX.Y.Z;
#   2. starts the offline test registry (bin/testregistry) and a nodeagent on
#      private directories, socket and bridge network, whose registry mirrors send
#      docker.io to the test registry;
#   3. starts kubelet in standalone mode (no API server, no kubeconfig) with a
#      static pod manifest directory, its own root directory and cgroup root,
#      pointed at nodeagent's socket;
#   4. writes a static pod (busybox, with a readiness probe) and waits until
#      kubelet's read-only /pods endpoint reports it Ready, then until kubelet,
#      taking stats from the runtime (PodAndContainerStatsFromCRI), serves the
#      pod's cAdvisor-named metrics on /metrics/cadvisor and its usage on
#      /stats/summary;
#   5. deletes the manifest, waits until kubelet has stopped the pod, stops
#      kubelet and nodeagent, and removes every pod, cgroup and file it made.
#
# `make kubelet-smoke` runs it after what it needs: make build (bin/nodeagent),
# hack/install-deps.sh (runc, CNI plugins), hack/install-cri-tools.sh (crictl, for
# the final cleanup); curl. It builds bin/testregistry itself.
#
# Environment:
#   KUBELET_VERSION  default v1.36.3 (the newest v1.36 the module proxy serves)
#   SMOKE_TIMEOUT    seconds to wait for Ready, default 180
#   KEEP=1           keep the work directory and logs
set -euo pipefail

# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUBELET_VERSION="${KUBELET_VERSION:-v1.36.3}"
SMOKE_TIMEOUT="${SMOKE_TIMEOUT:-180}"
KEEP="${KEEP:-0}"
KUBELET_DIR="${NODEAGENT_CACHE}/kubelet-${KUBELET_VERSION}"
KUBELET_BIN="${KUBELET_DIR}/kubelet"
NODEAGENT_BIN="${NODEAGENT_BIN:-${REPO_ROOT}/bin/nodeagent}"
REGISTRY_BIN="${REGISTRY_BIN:-}"
CNI_BIN_DIR="${CNI_BIN_DIR:-/opt/cni/bin}"
CRICTL_BIN="${CRI_TOOLS_BIN}/crictl"
KUBELET_READONLY_PORT="${KUBELET_READONLY_PORT:-10255}"

need_root
if [[ -z "${REGISTRY_BIN}" ]]; then
	REGISTRY_BIN="${REPO_ROOT}/bin/testregistry"
	(cd "${REPO_ROOT}" && CGO_ENABLED=0 go build -o "${REGISTRY_BIN}" ./hack/testregistry) ||
		die "building the test registry (./hack/testregistry) failed"
fi
for f in "${NODEAGENT_BIN}" "${REGISTRY_BIN}" "${CRICTL_BIN}" "${CNI_BIN_DIR}/bridge"; do
	[[ -x "${f}" ]] || die "${f} missing (make build install-deps install-cri-tools)"
done
command -v curl >/dev/null || die "curl not installed"

# ------------------------------------------------------------------ kubelet
# build_kubelet: the throwaway module described above, then go build.
build_kubelet() {
	local mod dir buildlog staging minor
	if [[ -x "${KUBELET_BIN}" && "$(read_stamp "kubelet-${KUBELET_VERSION}")" == "${KUBELET_VERSION}" ]]; then
		return 0
	fi
	dir="${NODEAGENT_CACHE}/build/kubelet-${KUBELET_VERSION}"
	buildlog="${dir}.log"
	staging="v0.${KUBELET_VERSION#v1.}"
	minor="${KUBELET_VERSION#v1.}"
	minor="${minor%%.*}"
	log "building kubelet ${KUBELET_VERSION} (staging modules at ${staging}; log: ${buildlog})"
	: >"${buildlog}"
	go_env_for_tools
	new_tool_module "${dir}" nodeagent.local/kubelet-build
	mod="$(cd "${dir}" && go mod download -json "k8s.io/kubernetes@${KUBELET_VERSION}" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')"
	[[ -f "${mod}" ]] || die "go mod download k8s.io/kubernetes@${KUBELET_VERSION} failed"
	{
		printf 'require k8s.io/kubernetes %s\n\nreplace (\n' "${KUBELET_VERSION}"
		sed -n 's|^\t\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*|\t\1 => \1 '"${staging}"'|p' "${mod}"
		printf ')\n'
	} >>"${dir}/go.mod"
	printf '//go:build tools\n\npackage tools\n\nimport _ "k8s.io/kubernetes/cmd/kubelet"\n' >"${dir}/tools.go"
	(cd "${dir}" && run_logged "${buildlog}" go mod tidy) || die "go mod tidy (throwaway module) failed"
	(cd "${dir}" && CGO_ENABLED=0 run_logged "${buildlog}" go build -trimpath -o "${KUBELET_BIN}" \
		-ldflags "-s -w -X k8s.io/component-base/version.gitVersion=${KUBELET_VERSION} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}" \
		k8s.io/kubernetes/cmd/kubelet) || die "go build kubelet failed"
	write_stamp "kubelet-${KUBELET_VERSION}" "${KUBELET_VERSION}"
	log "built ${KUBELET_BIN}"
}
mkdir -p "${NODEAGENT_CACHE}/build"
build_kubelet

# ------------------------------------------------------------------ cleanup
WORK="$(mktemp -d /tmp/nodeagent-kubelet-smoke.XXXXXX)"
CGROUP_ROOT="/nodeagent-kubelet-smoke-$(random_hex 6)"
SOCK="${WORK}/state/nodeagent.sock"
printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 30\n' "${SOCK}" "${SOCK}" >"${WORK}/crictl.yaml"
crictl() { "${CRICTL_BIN}" --config "${WORK}/crictl.yaml" "$@"; }
BRIDGE=""
REGISTRY_PID=""
NODEAGENT_PID=""
KUBELET_PID=""

cleanup() {
	local rc=$? ids d
	set +e
	trap '' INT TERM
	stop_pid "${KUBELET_PID}" kubelet 30
	# kubelet bind-mounts its root directory onto itself (rshared propagation).
	while awk -v d="${WORK}/kubelet" '$5 == d { found = 1 } END { exit !found }' /proc/self/mountinfo; do
		umount "${WORK}/kubelet" || break
	done
	if [[ -n "${NODEAGENT_PID}" ]]; then
		ids="$(timeout 30 "${CRICTL_BIN}" --config "${WORK}/crictl.yaml" pods -q 2>/dev/null)"
		[[ -z "${ids}" ]] || {
			log "removing pods kubelet left: ${ids//$'\n'/ }"
			# shellcheck disable=SC2086 # one id a word
			timeout 120 "${CRICTL_BIN}" --config "${WORK}/crictl.yaml" rmp -f ${ids} >/dev/null 2>&1 || warn "crictl rmp failed"
		}
		stop_pid "${NODEAGENT_PID}" nodeagent 30
	fi
	stop_pid "${REGISTRY_PID}" testregistry 10
	if [[ -n "${BRIDGE}" ]] && ip link show dev "${BRIDGE}" >/dev/null 2>&1; then
		ip link delete dev "${BRIDGE}" || warn "could not delete bridge ${BRIDGE}"
	fi
	# kubelet's cgroups (cgroupsPerQOS) under our private cgroup root, deepest first.
	for d in /sys/fs/cgroup/*"${CGROUP_ROOT}" /sys/fs/cgroup"${CGROUP_ROOT}"; do
		[[ -d "${d}" ]] || continue
		find "${d}" -depth -type d -exec rmdir {} \; 2>/dev/null || warn "cgroups left under ${d}"
	done
	if awk -v d="${WORK}/" 'index($5, d) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
		warn "mounts left under ${WORK}; keeping it"
	elif [[ "${KEEP}" == 1 || ${rc} -ne 0 ]]; then
		log "logs kept in ${WORK}"
	else
		rm -rf "${WORK}"
	fi
	return "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ registry
"${REGISTRY_BIN}" --listen 127.0.0.1:0 --addr-file "${WORK}/registry.addr" >"${WORK}/testregistry.log" 2>&1 &
REGISTRY_PID=$!
wait_for_file "${WORK}/registry.addr" 300 "${REGISTRY_PID}" || die "test registry did not start (${WORK}/testregistry.log)"
sleep 0.2
REGISTRY_ADDR="$(head -n1 "${WORK}/registry.addr" | tr -d '[:space:]')"
REGISTRY_ADDR="${REGISTRY_ADDR#http://}"
log "test registry at http://${REGISTRY_ADDR}"

# ------------------------------------------------------------------ nodeagent
mkdir -p "${WORK}/cni" "${WORK}/root" "${WORK}/state" "${WORK}/manifests" "${WORK}/kubelet" "${WORK}/pod-logs"
# shellcheck disable=SC2119 # no extra prefixes to avoid
SUBNET="$(pick_free_subnet)" || die "no free /24 in 10.88.0.0/16"
BRIDGE="nak$(random_hex 6)0"
cat >"${WORK}/cni/10-smoke.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "nodeagent-kubelet-smoke",
  "plugins": [
    {
      "type": "bridge", "bridge": "${BRIDGE}", "isGateway": true, "ipMasq": false,
      "ipam": {
        "type": "host-local", "dataDir": "${WORK}/cni-ipam",
        "ranges": [[{ "subnet": "${SUBNET}" }]], "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
printf '# hack/kubelet-smoke.sh: defaults + flags\n' >"${WORK}/nodeagent.toml"
"${NODEAGENT_BIN}" --config "${WORK}/nodeagent.toml" --root "${WORK}/root" --state "${WORK}/state" \
	--socket "${SOCK}" --cni-conf-dir "${WORK}/cni" --cni-bin-dir "${CNI_BIN_DIR}" \
	--registry-mirror "docker.io=http://${REGISTRY_ADDR}" >"${WORK}/nodeagent.log" 2>&1 &
NODEAGENT_PID=$!
wait_for_socket "${SOCK}" 60 "${NODEAGENT_PID}" || die "nodeagent did not start (${WORK}/nodeagent.log)"
log "nodeagent serving on ${SOCK} (bridge ${BRIDGE}, ${SUBNET})"

# ------------------------------------------------------------------ kubelet
FAIL_CGROUP_V1=""
if [[ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]]; then
	FAIL_CGROUP_V1="failCgroupV1: false"
fi
# kubelet 1.36 takes the driver from nodeagent (RuntimeConfig); this is nodeagent's
# own detection, for the record.
DRIVER=cgroupfs
[[ -d /run/systemd/system ]] && DRIVER=systemd
cat >"${WORK}/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://${SOCK}
cgroupDriver: ${DRIVER}
${FAIL_CGROUP_V1}
cgroupRoot: ${CGROUP_ROOT}
staticPodPath: ${WORK}/manifests
fileCheckFrequency: 2s
podLogsDir: ${WORK}/pod-logs
address: 127.0.0.1
readOnlyPort: ${KUBELET_READONLY_PORT}
healthzPort: 0
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
failSwapOn: false
evictionHard: {}
# Stats and /metrics/cadvisor from the runtime (CRI), not from cAdvisor.
featureGates:
  PodAndContainerStatsFromCRI: true
EOF
# kubelet wants its cgroup root to exist in every hierarchy; a v1 cpuset child
# starts with no CPUs or memory nodes, so it gets its parent's.
for d in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
	[[ -L "${d%/}" ]] && continue
	if [[ "${d}" == /sys/fs/cgroup/ ]]; then
		[[ "$(stat -fc %T /sys/fs/cgroup)" == cgroup2fs ]] || continue
	fi
	mkdir -p "${d%/}${CGROUP_ROOT}"
	if [[ -f "${d}cpuset.cpus" && ! -f "${d}cgroup.controllers" ]]; then
		cat "${d}cpuset.cpus" >"${d%/}${CGROUP_ROOT}/cpuset.cpus"
		cat "${d}cpuset.mems" >"${d%/}${CGROUP_ROOT}/cpuset.mems"
	fi
done
"${KUBELET_BIN}" --config "${WORK}/kubelet.yaml" --root-dir "${WORK}/kubelet" \
	--hostname-override nodeagent-smoke -v 2 >"${WORK}/kubelet.log" 2>&1 &
KUBELET_PID=$!
log "kubelet $("${KUBELET_BIN}" --version) started (log: ${WORK}/kubelet.log)"

# ------------------------------------------------------------------ the pod
cat >"${WORK}/manifests/smoke.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: smoke
  namespace: default
spec:
  containers:
    - name: web
      image: docker.io/library/busybox:1.37.0
      command: ["sh", "-c", "echo ready > /tmp/ready; exec sleep 3600"]
      readinessProbe:
        exec: {command: ["cat", "/tmp/ready"]}
        periodSeconds: 2
EOF
# pod_ready: kubelet's /pods reports the static pod with condition Ready=True.
pod_ready() {
	curl -fsS "http://127.0.0.1:${KUBELET_READONLY_PORT}/pods" 2>/dev/null |
		grep -qE '"type":"Ready"(,"observedGeneration":[0-9]+)?,"status":"True"'
}
START="$(now_s)"
until pod_ready; do
	kill -0 "${KUBELET_PID}" 2>/dev/null || {
		tail -n 30 "${WORK}/kubelet.log" | sed "s/^/${LOG_NAME}:   | /" >&2
		die "kubelet exited"
	}
	if (($(printf '%.0f' "$(elapsed "${START}")") > SMOKE_TIMEOUT)); then
		crictl ps -a >&2 || true
		die "static pod not Ready after ${SMOKE_TIMEOUT}s (logs in ${WORK})"
	fi
	sleep 2
done
log "static pod default/smoke-nodeagent-smoke Ready after $(elapsed "${START}")s"
curl -fsS "http://127.0.0.1:${KUBELET_READONLY_PORT}/pods" >"${WORK}/pods.json"
crictl ps >&2

# ------------------------------------------------------------------ stats
# wait_until SECONDS MESSAGE CMD...: runs CMD every 2 s until it succeeds;
# dies with MESSAGE after SECONDS.
wait_until() {
	local limit=$1 message=$2 start
	shift 2
	start="$(now_s)"
	until "$@"; do
		(($(printf '%.0f' "$(elapsed "${start}")") < limit)) || die "${message}"
		sleep 2
	done
}

# With PodAndContainerStatsFromCRI, kubelet's summary API and its
# /metrics/cadvisor come from nodeagent's stats and pod-metrics RPCs.
# cadvisor_ready: the container's cAdvisor-named working set, labelled as
# cAdvisor labels it, is on kubelet's /metrics/cadvisor.
cadvisor_ready() {
	curl -fsS "http://127.0.0.1:${KUBELET_READONLY_PORT}/metrics/cadvisor" >"${WORK}/cadvisor.txt" 2>/dev/null &&
		grep -E '^container_memory_working_set_bytes\{' "${WORK}/cadvisor.txt" |
		grep 'container="web"' | grep 'namespace="default"' | grep -q 'pod="smoke-nodeagent-smoke"'
}
wait_until 60 "kubelet's /metrics/cadvisor has no working set for container web (see ${WORK}/cadvisor.txt)" cadvisor_ready
for m in container_cpu_usage_seconds_total container_network_receive_bytes_total container_spec_memory_limit_bytes; do
	grep -q "^${m}{" "${WORK}/cadvisor.txt" || die "kubelet's /metrics/cadvisor lacks ${m} (see ${WORK}/cadvisor.txt)"
done
log "kubelet serves nodeagent's pod metrics on /metrics/cadvisor ($(grep -c '^container_' "${WORK}/cadvisor.txt") series)"
# summary_ready: the summary API has the container's working set from the CRI.
summary_ready() {
	curl -fsS "http://127.0.0.1:${KUBELET_READONLY_PORT}/stats/summary" >"${WORK}/summary.json" 2>/dev/null &&
		tr -d ' \n' <"${WORK}/summary.json" | grep -qE '"name":"web","startTime":"[^"]*","cpu":\{[^}]*"usageCoreNanoSeconds":[0-9]+[^}]*\},"memory":\{[^}]*"workingSetBytes":[0-9]+'
}
wait_until 60 "kubelet's /stats/summary has no CPU and memory for container web (see ${WORK}/summary.json)" summary_ready
log "kubelet's /stats/summary reports container web from nodeagent's stats"

# ------------------------------------------------------------------ teardown
rm -f "${WORK}/manifests/smoke.yaml"
START="$(now_s)"
while [[ -n "$(crictl ps -q 2>/dev/null)" || -n "$(crictl pods --state ready -q 2>/dev/null)" ]]; do
	(($(printf '%.0f' "$(elapsed "${START}")") < 120)) || die "kubelet did not stop the pod within 120s"
	sleep 2
done
log "ok: kubelet ran a static pod through nodeagent to Ready, then stopped it ($(elapsed "${START}")s)"
