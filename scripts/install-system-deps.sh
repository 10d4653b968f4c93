#!/usr/bin/env bash
# Installs the Debian packages the local pipeline needs (docker.io, iptables, debootstrap, and wrk,
# the HTTP load generator of `make bench`) with --no-install-recommends (Prometheus 3.5 comes from
# scripts/get-prometheus.sh). Packages already installed are skipped, and `apt-get update` runs
# only when a package has no install candidate or an install fails on a stale package list. Pass
# package names as arguments to install those instead of the default set.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

DEFAULT_PACKAGES=(docker.io iptables debootstrap wrk)
APT=(apt-get -o DPkg::Lock::Timeout=300 -q -y)
export DEBIAN_FRONTEND=noninteractive

is_installed() {
  local status
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) || return 1
  [[ $status == ii* ]]
}

has_candidate() {
  local policy
  policy=$(apt-cache policy "$1" 2>/dev/null) || return 1
  [[ $policy == *"Candidate:"* && $policy != *"Candidate: (none)"* ]]
}

apt_update() {
  log "running apt-get update"
  "${APT[@]}" update >&2 || die "apt-get update failed (is deb.debian.org reachable?)"
}

main() {
  local packages=("${@:-${DEFAULT_PACKAGES[@]}}")
  local missing=() pkg
  for pkg in "${packages[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "already installed: ${packages[*]}"
    return 0
  fi
  require_root "installs packages: ${missing[*]}"
  require_cmd apt-get dpkg-query apt-cache

  local updated=0
  for pkg in "${missing[@]}"; do
    if ! has_candidate "$pkg"; then
      log "no install candidate for $pkg in the current package lists"
      apt_update
      updated=1
      break
    fi
  done

  log "installing: ${missing[*]}"
  if ! "${APT[@]}" install --no-install-recommends "${missing[@]}" >&2; then
    [[ $updated -eq 0 ]] || die "apt-get install ${missing[*]} failed"
    log "install failed; the package lists may be stale, retrying after an update"
    apt_update
    "${APT[@]}" install --no-install-recommends "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
  fi
  for pkg in "${missing[@]}"; do
    is_installed "$pkg" || die "$pkg is still not installed after apt-get install"
  done
  log "installed: ${missing[*]}"
}

main "$@"
