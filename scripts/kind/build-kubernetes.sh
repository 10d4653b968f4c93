#!/usr/bin/env bash
# Builds the Kubernetes binaries of the kind node image from the Go module k8s.io/kubernetes at
# KUBERNETES_VERSION (versions.env): kube-apiserver, kube-controller-manager, kube-scheduler,
# kube-proxy, kubelet, kubeadm and kubectl, static (CGO_ENABLED=0), into the directory given as $1.
# `go install k8s.io/kubernetes/cmd/...@version` is refused because that module's go.mod replaces
# its staging modules (k8s.io/api, ...) with local directories; a small wrapper module requires
# k8s.io/kubernetes and replaces each staging module with its published v0.<minor>.<patch> instead.
# Also builds pause from the module's build/pause/linux/pause.c (gcc -static).
#   scripts/kind/build-kubernetes.sh OUT_DIR
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubeadm kubectl)
WORK=

# Writes the wrapper module's go.mod into directory $1, one replace line per staging module of $2.
write_wrapper_module() {
  local dir=$1 module=$2 staging
  {
    echo "// Builds k8s.io/kubernetes commands with its staging modules at their published versions."
    echo "module sluice.local/kind-node/kubernetes"
    echo
    sed -n 's/^go \(.*\)/go \1/p' "$module/go.mod"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    for staging in $(sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$module/go.mod"); do
      echo "	$staging => $staging $KUBERNETES_STAGING_VERSION"
    done
    echo ")"
  } >"$dir/go.mod"
}

main() {
  [[ $# -eq 1 ]] || die "usage: $0 OUT_DIR"
  local out=$1 module minor pkgs=() bin
  require_cmd go gcc
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  module=$(go_module_dir k8s.io/kubernetes "$KUBERNETES_VERSION")
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  write_wrapper_module "$WORK" "$module"
  minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  for bin in "${BINARIES[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$bin"); done
  local v=k8s.io/component-base/version cv=k8s.io/client-go/pkg/version ldflags="-s -w"
  for p in $v $cv; do
    ldflags+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    # no commit: the module zip has none (the default would be the placeholder "$Format:%H$")
    ldflags+=" -X $p.gitCommit= -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  log "building ${BINARIES[*]} $KUBERNETES_VERSION (GOMAXPROCS=$GOMAXPROCS; a cold build takes tens of minutes)"
  (cd "$WORK" && CGO_ENABLED=0 heavy go build -mod=mod -trimpath -tags selinux,notest -ldflags "$ldflags" \
    -o "$out/" "${pkgs[@]}") || die "go build of Kubernetes failed (output above)"
  log "building pause $PAUSE_VERSION from build/pause/linux/pause.c"
  heavy gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-sluice" -o "$out/pause" \
    "$module/build/pause/linux/pause.c" || die "gcc of pause.c failed; install gcc and libc6-dev"
  "$out/kubeadm" version -o short
}

main "$@"
