#!/usr/bin/env bash
# Installs skaffold SKAFFOLD_VERSION (the Makefile pins it) into .tools/bin, which the Makefile puts
# first on PATH, built from its Go module github.com/GoogleContainerTools/skaffold/v2, for machines
# that reach the Go module proxy but not skaffold's release downloads. The module's go.mod has
# replace lines, so it is built as the main module (a copy of it), with the version flags of
# upstream's Makefile. The build is kept in SKAFFOLD_CACHE (default ~/.cache/sluice/skaffold, outside
# the repository, so that a fresh clone on the same machine reuses it) and copied into .tools/bin.
# Prints the binary's path last.
# With --if-built it builds nothing: it prints the path only if that skaffold is there already (a
# cold build takes about 7 minutes on 2 cores; `make kind-e2e` leaves it to a warm cache, KIND_SKAFFOLD).
#   scripts/get-skaffold.sh [--if-built]
set -euo pipefail
# shellcheck source=scripts/kind-addons/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/kind-addons/lib.sh"

SKAFFOLD_VERSION=${SKAFFOLD_VERSION:-v2.16.1}
MODULE=github.com/GoogleContainerTools/skaffold/v2
BIN=$REPO_ROOT/.tools/bin/skaffold
CACHED=${SKAFFOLD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice/skaffold}/$SKAFFOLD_VERSION/skaffold

main() {
  local flag have work version_package
  flag=$(if_built_flag "$@")
  have=$("$BIN" version 2>/dev/null || true)
  if [[ $have == "$SKAFFOLD_VERSION" ]]; then
    log "skaffold $SKAFFOLD_VERSION is in $(dirname "$BIN")"
    echo "$BIN"
    return 0
  fi
  if [[ $("$CACHED" version 2>/dev/null || true) == "$SKAFFOLD_VERSION" ]]; then
    install -D -m 0755 "$CACHED" "$BIN"
    log "installed skaffold $SKAFFOLD_VERSION into $(dirname "$BIN") from $(dirname "$CACHED")"
    echo "$BIN"
    return 0
  fi
  if [[ $flag == --if-built ]]; then
    log "skaffold $SKAFFOLD_VERSION is not built here (\`make skaffold-tool\` builds it)"
    return 0
  fi
  require_cmd go
  work=$(mktemp -d)
  module_copy "$MODULE" "$SKAFFOLD_VERSION" "$work/src"
  version_package=$MODULE/pkg/skaffold/version
  log "building skaffold $SKAFFOLD_VERSION from $MODULE (cold: several minutes)"
  (cd "$work/src" && CGO_ENABLED=0 heavy go build -mod=mod -trimpath \
    -ldflags "-s -w -X $version_package.version=$SKAFFOLD_VERSION -X $version_package.gitCommit=module" \
    -o "$work/skaffold" ./cmd/skaffold) || die "go build of skaffold $SKAFFOLD_VERSION failed (output above)"
  install -D -m 0755 "$work/skaffold" "$CACHED"
  install -D -m 0755 "$CACHED" "$BIN"
  rm -rf "$work"
  log "installed skaffold $("$BIN" version) into $(dirname "$BIN")"
  echo "$BIN"
}

main "$@"
