#!/usr/bin/env bash
# Builds the programs of the kind node image that come from Go modules other than Kubernetes,
# static (CGO_ENABLED=0), at the versions of versions.env, into the directory given as $1:
#   coredns                  github.com/coredns/coredns
#   flanneld                 github.com/flannel-io/flannel (the node image's default CNI)
#   local-path-provisioner   github.com/rancher/local-path-provisioner (kind's default storage)
#   crictl                   sigs.k8s.io/cri-tools/cmd/crictl (on the node, as in kind's base image)
#   scripts/kind/build-go-tools.sh OUT_DIR
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# go install of package $1 at version $2 into $3, renamed to $4.
install_tool() {
  local pkg=$1 version=$2 out=$3 name=$4 gobin
  gobin=$(mktemp -d)
  log "building $name from $pkg@$version"
  GOBIN=$gobin CGO_ENABLED=0 heavy go install -trimpath -ldflags "-s -w" "$pkg@$version" ||
    die "go install $pkg@$version failed (output above)"
  mv "$gobin/${pkg##*/}" "$out/$name"
  rm -rf "$gobin"
}

main() {
  [[ $# -eq 1 ]] || die "usage: $0 OUT_DIR"
  require_cmd go
  mkdir -p "$1"
  install_tool github.com/coredns/coredns "$COREDNS_MODULE_VERSION" "$1" coredns
  install_tool github.com/flannel-io/flannel "$FLANNEL_MODULE_VERSION" "$1" flanneld
  install_tool github.com/rancher/local-path-provisioner "$LOCAL_PATH_PROVISIONER_MODULE_VERSION" "$1" local-path-provisioner
  install_tool sigs.k8s.io/cri-tools/cmd/crictl "$CRI_TOOLS_MODULE_VERSION" "$1" crictl
}

main "$@"
