#!/usr/bin/env bash
# Checks that each tool named on the command line is on PATH; for every missing one, prints how to
# install the version the Makefile pins, then fails. A tool of another version only gets a note.
#   scripts/require-tools.sh kind kubectl          (versions from KIND_VERSION, KUBECTL_VERSION, ...)
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

KIND_VERSION=${KIND_VERSION:-v0.33.0}
KUBECTL_VERSION=${KUBECTL_VERSION:-v1.36.4}
SKAFFOLD_VERSION=${SKAFFOLD_VERSION:-v2.16.1}

# How to install tool $1 at its pinned version (linux-amd64; other platforms: the linked page).
install_hint() {
  case $1 in
    kind) echo "curl -fsSLo /usr/local/bin/kind https://kind.sigs.k8s.io/dl/$KIND_VERSION/kind-linux-amd64 && chmod +x /usr/local/bin/kind  (https://kind.sigs.k8s.io/docs/user/quick-start/#installation), or \`make kind-tools\` (from Debian's packages, into .tools/bin)" ;;
    kubectl) echo "curl -fsSLo /usr/local/bin/kubectl https://dl.k8s.io/release/$KUBECTL_VERSION/bin/linux/amd64/kubectl && chmod +x /usr/local/bin/kubectl  (https://kubernetes.io/docs/tasks/tools/), or \`make kind-tools\`" ;;
    skaffold) echo "make skaffold-tool  (builds $SKAFFOLD_VERSION from its Go module into .tools/bin; or https://skaffold.dev/docs/install/)" ;;
    docker) echo "make system-deps  (or https://docs.docker.com/engine/install/)" ;;
    helm) echo "scripts/get-helm.sh  (installs a pinned helm into .tools/)" ;;
    *) echo "see the tool's documentation" ;;
  esac
}

# The version tool $1 reports, for the mismatch note.
reported_version() {
  case $1 in
    kind) kind version 2>/dev/null | sed -n 's/^kind \(v[0-9.]*\).*/\1/p' ;;
    kubectl) kubectl version --client -o yaml 2>/dev/null | sed -n 's/^ *gitVersion: //p' ;;
    skaffold) skaffold version 2>/dev/null ;;
  esac
}

pinned_version() {
  case $1 in
    kind) echo "$KIND_VERSION" ;;
    kubectl) echo "$KUBECTL_VERSION" ;;
    skaffold) echo "$SKAFFOLD_VERSION" ;;
  esac
}

main() {
  [[ $# -gt 0 ]] || die "usage: $0 TOOL..."
  local tool missing=0 have want
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      log "'$tool' is not on PATH; install it with: $(install_hint "$tool")"
      missing=1
      continue
    fi
    want=$(pinned_version "$tool")
    have=$(reported_version "$tool" || true)
    if [[ -n $want && -n $have && $have != "$want" ]]; then
      log "note: $tool is $have; the Makefile pins $want"
    fi
  done
  ((missing == 0)) || die "missing tools (install hints above)"
}

main "$@"
