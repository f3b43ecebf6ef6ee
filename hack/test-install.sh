#!/usr/bin/env bash
# Tests `make install` and `make uninstall` into a DESTDIR under a temporary
# directory (no root needed, the machine is not touched), and runs
# `systemd-analyze verify` on the installed unit. Run by `make lint`.
#
# What it checks:
#   - install puts the binaries, the unit (ExecStart rewritten for PREFIX), the
#     README, /etc/nodeagent/config.toml and /etc/crictl.yaml in place;
#   - a second install keeps an edited config.toml and an existing crictl.yaml;
#   - uninstall removes what install put, keeps the edited config, never
#     touches var/lib/nodeagent, and can run twice;
#   - the unit passes `systemd-analyze verify --root=DESTDIR`. --root makes
#     verify look for ExecStart's binary inside DESTDIR, so no binary has to
#     exist at /usr/local/bin on this machine; the distribution's units
#     (sysinit.target, network-online.target, ...) are copied into DESTDIR for
#     it. verify needs no systemd running as PID 1.
# The binaries installed are stand-ins: this tests the install, not the build.
set -euo pipefail

# shellcheck source=hack/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "${REPO_ROOT}"
TMP="$(mktemp -d)"
trap 'rm -rf "${TMP}"' EXIT
FAKEBIN="${TMP}/bin"
mkdir -p "${FAKEBIN}"
for b in nodeagent crictl-lite; do
	printf '#!/bin/sh\necho %s\n' "${b}" >"${FAKEBIN}/${b}"
	chmod 0755 "${FAKEBIN}/${b}"
done

FAILED=0
fail() {
	warn "$*"
	FAILED=1
}
expect_file() { [[ -f "$1" ]] || fail "missing after install: ${1#"${ROOT}"}"; }
expect_gone() { [[ ! -e "$1" ]] || fail "left behind by uninstall: ${1#"${ROOT}"}"; }
expect_same() { cmp -s "$1" "$2" || fail "${2#"${ROOT}"} differs from $1"; }
mk() { make --no-print-directory -s "$@" BIN="${FAKEBIN}" DESTDIR="${ROOT}" >"${TMP}/make.log" 2>&1 ||
	{
		cat "${TMP}/make.log" >&2
		die "make $* failed"
	}; }

# verify_unit UNIT: systemd-analyze verify against the staged tree.
verify_unit() {
	if ! command -v systemd-analyze >/dev/null; then
		warn "systemd-analyze not installed (Debian package systemd): unit not verified"
		return 0
	fi
	mkdir -p "${ROOT}/usr/lib/systemd"
	cp -a /usr/lib/systemd/system "${ROOT}/usr/lib/systemd/"
	systemd-analyze verify --root="${ROOT}" "$1" >"${TMP}/verify.log" 2>&1 ||
		fail "systemd-analyze verify $1: $(cat "${TMP}/verify.log")"
	# verify exits 0 on some warnings; a clean unit prints nothing.
	[[ ! -s "${TMP}/verify.log" ]] || fail "systemd-analyze verify $1: $(cat "${TMP}/verify.log")"
	rm -rf "${ROOT}/usr/lib/systemd/system"
}

# ------------------------------------------------ default PREFIX (/usr/local)
ROOT="${TMP}/root"
mkdir -p "${ROOT}/var/lib/nodeagent"
echo keep >"${ROOT}/var/lib/nodeagent/meta.db"

mk install
for f in usr/local/bin/nodeagent usr/local/bin/crictl-lite etc/systemd/system/nodeagent.service \
	usr/local/share/doc/nodeagent/README.md etc/nodeagent/config.toml etc/crictl.yaml; do
	expect_file "${ROOT}/${f}"
done
[[ -x "${ROOT}/usr/local/bin/nodeagent" ]] || fail "nodeagent not executable"
expect_same deploy/systemd/nodeagent.service "${ROOT}/etc/systemd/system/nodeagent.service"
expect_same deploy/config.toml "${ROOT}/etc/nodeagent/config.toml"
expect_same deploy/crictl.yaml "${ROOT}/etc/crictl.yaml"
verify_unit nodeagent.service

# A reinstall (an upgrade) keeps the operator's files.
echo '# edited' >>"${ROOT}/etc/nodeagent/config.toml"
cp "${ROOT}/etc/nodeagent/config.toml" "${TMP}/edited.toml"
mk install
expect_same "${TMP}/edited.toml" "${ROOT}/etc/nodeagent/config.toml"

mk uninstall
for f in usr/local/bin/nodeagent usr/local/bin/crictl-lite etc/systemd/system/nodeagent.service \
	usr/local/share/doc/nodeagent etc/crictl.yaml; do
	expect_gone "${ROOT}/${f}"
done
expect_same "${TMP}/edited.toml" "${ROOT}/etc/nodeagent/config.toml"
[[ "$(cat "${ROOT}/var/lib/nodeagent/meta.db")" == keep ]] || fail "uninstall touched var/lib/nodeagent"
mk uninstall # twice is fine

# An unedited config goes with the rest, and so does its directory.
rm -f "${ROOT}/etc/nodeagent/config.toml"
mk install
mk uninstall
expect_gone "${ROOT}/etc/nodeagent"
[[ -z "$(find "${ROOT}" -type f ! -path "*/var/lib/nodeagent/*")" ]] ||
	fail "uninstall left: $(find "${ROOT}" -type f ! -path "*/var/lib/nodeagent/*")"

# ------------------------------------------------ PREFIX=/usr
ROOT="${TMP}/root-usr"
mk install PREFIX=/usr
expect_file "${ROOT}/usr/bin/nodeagent"
grep -qx 'ExecStart=/usr/bin/nodeagent --config /etc/nodeagent/config.toml' \
	"${ROOT}/etc/systemd/system/nodeagent.service" || fail "PREFIX=/usr: ExecStart not rewritten"
grep -qx 'Documentation=file:///usr/share/doc/nodeagent/README.md' \
	"${ROOT}/etc/systemd/system/nodeagent.service" || fail "PREFIX=/usr: Documentation not rewritten"
expect_file "${ROOT}/usr/share/doc/nodeagent/README.md"
verify_unit nodeagent.service
mk uninstall PREFIX=/usr
[[ -z "$(find "${ROOT}" -type f)" ]] || fail "PREFIX=/usr: uninstall left: $(find "${ROOT}" -type f)"

[[ "${FAILED}" -eq 0 ]] || die "make install/uninstall test failed"
log "ok: install, reinstall, uninstall (PREFIX=/usr/local and /usr); unit verified"
