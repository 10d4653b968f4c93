#!/usr/bin/env bash
# Prints a directory holding `prometheus` and `promtool` 3.5.3 (the LTS line that
# kube-prometheus-stack deploys), installing them into .tools/ if needed:
#   1. .tools/prometheus-3.5.3/, installed by an earlier run;
#   2. Debian sid's prometheus and promtool packages, downloaded with the private sid apt state of
#      scripts/kind/lib.sh (`sid_download`; the host's own sources and packages are left alone) and
#      unpacked with dpkg-deb.
# The binaries need only libc; the version each prints is checked before it is installed.
#
# Usage: scripts/get-prometheus.sh
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/kind/lib.sh"

#: The Prometheus version the observability suite runs, and Debian sid's package of it.
PROMETHEUS_VERSION=3.5.3
PROMETHEUS_DEB_VERSION=$PROMETHEUS_VERSION+ds1-6
TARGET=$REPO_ROOT/.tools/prometheus-$PROMETHEUS_VERSION

installed() {
  [[ -x $TARGET/prometheus && -x $TARGET/promtool ]] &&
    [[ $("$TARGET/prometheus" --version 2>&1) == "prometheus, version $PROMETHEUS_VERSION"* ]]
}

main() {
  if installed; then
    echo "$TARGET"
    return 0
  fi
  require_cmd apt-get dpkg-deb
  work=$(mktemp -d)  # global: the EXIT trap runs after main returns
  trap 'rm -rf "$work"' EXIT
  log "downloading prometheus and promtool $PROMETHEUS_DEB_VERSION from Debian sid"
  sid_download "$work/debs" "prometheus=$PROMETHEUS_DEB_VERSION" "promtool=$PROMETHEUS_DEB_VERSION"
  for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
  mkdir -p "$TARGET.tmp"
  cp "$work/root/usr/bin/prometheus" "$work/root/usr/bin/promtool" "$TARGET.tmp/"
  rm -rf "$TARGET" && mv "$TARGET.tmp" "$TARGET"
  installed || die "the unpacked prometheus does not report version $PROMETHEUS_VERSION"
  log "installed prometheus and promtool $PROMETHEUS_VERSION into ${TARGET#"$REPO_ROOT"/}"
  echo "$TARGET"
}

main "$@"
