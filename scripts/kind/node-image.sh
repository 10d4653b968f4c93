#!/usr/bin/env bash
# Prints (last line of stdout) the node image `make kind-up` gives kind:
#   1. KIND_NODE_IMAGE (the kindest/node the Makefile pins, by digest) when Docker has it or can
#      pull it;
#   2. otherwise a node image built here by scripts/kind/build-node-image.sh from Debian packages
#      and Go modules (cached: a second run takes seconds).
# Environment: KIND_NODE_IMAGE (required), KIND_NODE_PULL=0 to skip the pull, KIND_NODE_PULL_TIMEOUT
# (seconds, default 30).
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
  [[ -n ${KIND_NODE_IMAGE:-} ]] || die "KIND_NODE_IMAGE is not set (the Makefile sets it)"
  if docker image inspect "$KIND_NODE_IMAGE" >/dev/null 2>&1; then
    echo "$KIND_NODE_IMAGE"
    return 0
  fi
  if [[ ${KIND_NODE_PULL:-1} == 1 ]]; then
    log "trying docker pull $KIND_NODE_IMAGE"
    if timeout "${KIND_NODE_PULL_TIMEOUT:-30}" docker pull -q "$KIND_NODE_IMAGE" >/dev/null 2>&1; then
      echo "$KIND_NODE_IMAGE"
      return 0
    fi
    log "cannot pull $KIND_NODE_IMAGE (no registry reachable?); using a node image built here"
  fi
  local tag=${KIND_NODE_IMAGE#*:}
  tag=${tag%@*}
  [[ $tag == "$KUBERNETES_VERSION" ]] ||
    die "KIND_NODE_IMAGE is Kubernetes $tag but scripts/kind/versions.env builds $KUBERNETES_VERSION; keep them in step"
  "$KIND_SCRIPTS_DIR/build-node-image.sh"
}

main "$@"
