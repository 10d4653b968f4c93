#!/usr/bin/env bash
# Builds the programs of the kind node image that come from Go modules other than Kubernetes,
# static, at the versions of versions.env, into the directory given as $1:
#   coredns                  github.com/coredns/coredns
#   flanneld                 github.com/flannel-io/flannel (the node image's default CNI), built
#                            without its Tencent Cloud backend, whose SDK module the Go module
#                            proxy does not serve: its main.go, with that one import line
#                            removed, in a wrapper module that requires flannel
#   local-path-provisioner   github.com/rancher/local-path-provisioner (kind's default storage)
#   crictl                   sigs.k8s.io/cri-tools/cmd/crictl (on the node, as in kind's base image)
#   etcd                     go.etcd.io/etcd/server/v3 (its go.mod replaces its sibling modules
#                            with directories, so it is built from a wrapper module that requires it)
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

# Writes into directory $1 a wrapper module that requires module $2 at version $3.
write_wrapper_module() {
  local dir=$1 module=$2 version=$3 module_dir
  module_dir=$(go_module_dir "$module" "$version")
  printf 'module sluice.local/kind-node/%s\n\n%s\n\nrequire %s %s\n' "${module##*/}" \
    "$(grep '^go ' "$module_dir/go.mod")" "$module" "$version" >"$dir/go.mod"
}

build_etcd() {
  local out=$1 work
  work=$(mktemp -d)
  write_wrapper_module "$work" go.etcd.io/etcd/server/v3 "$ETCD_MODULE_VERSION"
  log "building etcd from go.etcd.io/etcd/server/v3@$ETCD_MODULE_VERSION"
  (cd "$work" && CGO_ENABLED=0 heavy go build -mod=mod -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3) ||
    die "go build of etcd failed (output above)"
  rm -rf "$work"
}

build_flanneld() {
  local out=$1 module work
  module=$(go_module_dir github.com/flannel-io/flannel "$FLANNEL_MODULE_VERSION")
  work=$(mktemp -d)
  sed '/"github.com\/flannel-io\/flannel\/pkg\/backend\/tencentvpc"/d' "$module/main.go" >"$work/main.go"
  write_wrapper_module "$work" github.com/flannel-io/flannel "$FLANNEL_MODULE_VERSION"
  log "building flanneld from github.com/flannel-io/flannel@$FLANNEL_MODULE_VERSION (no tencentvpc backend)"
  # cgo, linked static, as flannel's Makefile does (its udp backend is C); Go's own resolver and user lookup
  (cd "$work" && CGO_ENABLED=1 heavy go build -mod=mod -trimpath -tags netgo,osusergo -ldflags "-s -w -extldflags -static \
    -X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_MODULE_VERSION" -o "$out/flanneld" .) ||
    die "go build of flanneld failed (output above)"
  rm -rf "$work"
}

main() {
  [[ $# -eq 1 ]] || die "usage: $0 OUT_DIR"
  require_cmd go
  mkdir -p "$1"
  install_tool github.com/coredns/coredns "$COREDNS_MODULE_VERSION" "$1" coredns
  build_flanneld "$1"
  install_tool github.com/rancher/local-path-provisioner "$LOCAL_PATH_PROVISIONER_MODULE_VERSION" "$1" local-path-provisioner
  install_tool sigs.k8s.io/cri-tools/cmd/crictl "$CRI_TOOLS_MODULE_VERSION" "$1" crictl
  build_etcd "$1"
}

main "$@"
