#!/usr/bin/env bash
# Runs nodeagent in the foreground with the embedded default configuration
# (or /etc/nodeagent/config.toml when it exists). When /etc/cni/net.d holds no
# network configuration, installs deploy/cni/10-nodeagent-bridge.conflist first
# so pods get a network.
set -euo pipefail
# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_root
BIN="${1:-${REPO_ROOT}/bin/nodeagent}"
[[ $# -eq 0 ]] || shift
CNI_CONF_DIR=/etc/cni/net.d

mkdir -p "${CNI_CONF_DIR}"
if ! compgen -G "${CNI_CONF_DIR}/*.conf*" >/dev/null && ! compgen -G "${CNI_CONF_DIR}/*.json" >/dev/null; then
	log "no CNI network in ${CNI_CONF_DIR}: installing the default bridge network"
	install -m 0644 "${REPO_ROOT}/deploy/cni/10-nodeagent-bridge.conflist" "${CNI_CONF_DIR}/"
fi
log "starting ${BIN}; talk to it with: crictl --runtime-endpoint unix:///run/nodeagent/nodeagent.sock version"
exec "${BIN}" "$@"
