#!/usr/bin/env bash
# Installs kind and kubectl at the versions the Makefile pins (KIND_VERSION, KUBECTL_VERSION) into
# .tools/bin, which the Makefile puts first on PATH, from Debian sid's packages (the binaries
# only, extracted with dpkg-deb; the host's packages are left alone), for machines that reach
# Debian's mirror but not the official downloads. A tool already in .tools/bin at its pinned
# version is kept.
#   scripts/get-kind-tools.sh
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/kind/lib.sh"

KIND_VERSION=${KIND_VERSION:-v0.33.0}
KUBECTL_VERSION=${KUBECTL_VERSION:-v1.36.4}
#: The Debian sid package versions that hold them.
KIND_DEB_VERSION=${KIND_VERSION#v}-1
KUBECTL_DEB_VERSION=${KUBECTL_VERSION#v}+ds-1
BIN_DIR=$REPO_ROOT/.tools/bin

# Extracts /usr/bin/$1 of sid package $1=$2 into BIN_DIR unless it reports version $3 already.
install_tool() {
  local tool=$1 deb_version=$2 want=$3 have work
  have=$("$BIN_DIR/$tool" version --client 2>/dev/null || "$BIN_DIR/$tool" version 2>/dev/null || true)
  if [[ $have == *"$want"* ]]; then
    log "$tool $want is in $BIN_DIR"
    return 0
  fi
  work=$(mktemp -d)
  sid_download "$work" "$tool=$deb_version"
  dpkg-deb -x "$work"/"${tool}"_*.deb "$work/root"
  install -D -m 0755 "$work/root/usr/bin/$tool" "$BIN_DIR/$tool"
  rm -rf "$work"
  log "installed $tool $want into $BIN_DIR"
}

main() {
  require_cmd apt-get dpkg-deb
  install_tool kind "$KIND_DEB_VERSION" "$KIND_VERSION"
  install_tool kubectl "$KUBECTL_DEB_VERSION" "$KUBECTL_VERSION"
}

main "$@"
