#!/usr/bin/env bash
# Prints a directory holding `prometheus` and `promtool` 3.5.3 (the LTS line that
# kube-prometheus-stack deploys), installing them into .tools/ if needed:
#   1. .tools/prometheus-3.5.3/, installed by an earlier run;
#   2. Debian sid's prometheus and promtool packages, downloaded with apt-get into a private apt
#      state (the host's own sources and packages are left alone) and unpacked with dpkg-deb.
# The binaries need only libc; the version each prints is checked before it is installed.
#
# Usage: scripts/get-prometheus.sh
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

#: The Prometheus version the observability suite runs, and Debian sid's package of it.
PROMETHEUS_VERSION=3.5.3
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
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
  local apt_opts version package
  work=$(mktemp -d)  # global: the EXIT trap runs after main returns
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
  # Signatures are checked; only the Release file's expiry is not (a mirror may serve a sid snapshot
  # past its Valid-Until date).
  echo "deb [check-valid-until=no] $DEBIAN_MIRROR sid main" >"$work/sources.list"
  apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root -q)
  log "reading Debian sid's package lists"
  apt-get "${apt_opts[@]}" update >"$work/update.log" 2>&1 || { tail -n 5 "$work/update.log" >&2; die "apt-get update for sid failed"; }
  for package in prometheus promtool; do
    version=$(apt-cache "${apt_opts[@]}" show "$package" 2>/dev/null | sed -n 's/^Version: //p' | sed -n 1p)
    [[ $version == "$PROMETHEUS_VERSION"+* || $version == "$PROMETHEUS_VERSION"-* ]] ||
      die "Debian sid has $package ${version:-nothing}, not $PROMETHEUS_VERSION"
    log "downloading $package $version"
    (cd "$work/debs" && apt-get "${apt_opts[@]}" download "$package=$version" >&2)
  done
  for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
  mkdir -p "$TARGET.tmp"
  cp "$work/root/usr/bin/prometheus" "$work/root/usr/bin/promtool" "$TARGET.tmp/"
  rm -rf "$TARGET" && mv "$TARGET.tmp" "$TARGET"
  installed || die "the unpacked prometheus does not report version $PROMETHEUS_VERSION"
  log "installed prometheus and promtool $PROMETHEUS_VERSION into ${TARGET#"$REPO_ROOT"/}"
  echo "$TARGET"
}

main "$@"
