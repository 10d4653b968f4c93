#!/usr/bin/env bash
# Builds every image a kind node runs, as `docker save` archives in directory $1 (one per image),
# from the binaries of build-kubernetes.sh ($2) and build-go-tools.sh ($3) and Debian packages:
#   - the images `kubeadm config images list` names for KUBERNETES_VERSION (control plane,
#     kube-proxy, coredns, pause, etcd), plus the sandbox image of
#     kind's containerd config;
#   - the default CNI (flannel) and storage (local-path-provisioner, busybox helper) images of the
#     node's /kind/manifests.
# kube-proxy and flannel need iptables: they share one Debian base layer. The other images hold a
# static binary only. The images kubeadm names are built as BUILD_IMAGE_PREFIX<name>, and all are
# removed from the Docker engine once saved.
# Prints the archive paths, one a line.
#   scripts/kind/build-images.sh OUT_DIR KUBE_BIN_DIR TOOLS_BIN_DIR
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

#: Debian packages of the base of the images that program the node's packet filter.
USERLAND_PACKAGES=iptables,nftables,conntrack,iproute2,ca-certificates,kmod
#: Where local images go while they are built (never pushed anywhere).
USERLAND_IMAGE=sluice.local/kind/userland:$DEBIAN_SUITE

OUT=
WORK=
BUILT=()

# docker build of image $1 from the files of directory $2: FROM $3, the rest of the Dockerfile on stdin.
build_image() {
  local image=$1 context=$2 from=$3
  { echo "FROM $from"; cat; } >"$context/Dockerfile"
  heavy docker build --force-rm -q -t "$image" "$context" >/dev/null || die "docker build of $image failed (output above)"
  BUILT+=("$image")
}

# A static image: binary $2 (from directory $3) as /usr/local/bin/$2, its entrypoint, for image $1.
static_image() {
  local image=$1 name=$2 dir=$3 context=$WORK/$2
  mkdir -p "$context"
  cp "$dir/$name" "$context/"
  build_image "$image" "$context" scratch <<DOCKERFILE
COPY $name /usr/local/bin/$name
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENTRYPOINT ["/usr/local/bin/$name"]
DOCKERFILE
}

userland_base() {
  local root=$WORK/userland
  debootstrap_rootfs "$root" "$USERLAND_PACKAGES"
  slim_rootfs "$root"
  tar --numeric-owner -C "$root" -c . | docker import - "$USERLAND_IMAGE" >/dev/null
  rm -rf --one-file-system "$root"
}

busybox_image() {
  local image=$1 context=$WORK/busybox applet
  sid_download "$WORK/busybox-deb" "busybox-static=$BUSYBOX_DEB_VERSION"
  dpkg-deb -x "$WORK"/busybox-deb/busybox-static_*.deb "$WORK/busybox-root"
  mkdir -p "$context/bin"
  cp "$WORK/busybox-root/usr/bin/busybox" "$context/bin/busybox"
  for applet in $("$context/bin/busybox" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$context/bin/$applet"
  done
  build_image "$image" "$context" scratch <<'DOCKERFILE'
COPY bin /bin
ENV PATH=/bin
CMD ["sh"]
DOCKERFILE
}

# Saves image $1 (and the extra tags $2...) into one archive.
save() {
  local image=$1 file
  file=$OUT/$(echo "$image" | tr '/:' '__').tar
  local tag
  for tag in "${@:2}"; do docker tag "$image" "$tag"; BUILT+=("$tag"); done
  docker save "$@" -o "$file"
  echo "$file"
}

cleanup() {
  ((${#BUILT[@]} == 0)) || docker rmi "${BUILT[@]}" >/dev/null 2>&1 || true
  docker rmi "$USERLAND_IMAGE" >/dev/null 2>&1 || true
  [[ -z $WORK ]] || rm -rf --one-file-system "$WORK"
}

main() {
  [[ $# -eq 3 ]] || die "usage: $0 OUT_DIR KUBE_BIN_DIR TOOLS_BIN_DIR"
  OUT=$1
  local kube=$2 tools=$3 required image missing=() bin
  require_cmd docker dpkg-deb
  mkdir -p "$OUT"
  WORK=$(mktemp -d)
  trap cleanup EXIT
  required=$("$kube/kubeadm" config images list --kubernetes-version "$KUBERNETES_VERSION")
  local registry=registry.k8s.io
  for image in $required; do
    case $image in
      "$registry"/kube-apiserver:* | "$registry"/kube-controller-manager:* | "$registry"/kube-scheduler:* | "$registry"/pause:* | "$registry"/etcd:* | "$registry/coredns/coredns:$COREDNS_MODULE_VERSION" | "$registry/kube-proxy:$KUBERNETES_VERSION") ;;
      *) missing+=("$image") ;;
    esac
  done
  ((${#missing[@]} == 0)) || die "kubeadm needs images this script does not build: ${missing[*]} (update versions.env)"
  [[ $required == *"$registry/pause:$PAUSE_VERSION"* ]] || die "kubeadm does not name pause:$PAUSE_VERSION; set PAUSE_VERSION in versions.env"

  log "building the images kubeadm names: $(echo $required)"
  registry=$BUILD_IMAGE_PREFIX$registry
  for bin in kube-apiserver kube-controller-manager kube-scheduler; do
    static_image "$registry/$bin:$KUBERNETES_VERSION" "$bin" "$kube"
    save "$registry/$bin:$KUBERNETES_VERSION"
  done
  local context=$WORK/pause
  mkdir -p "$context" && cp "$kube/pause" "$context/"
  build_image "$registry/pause:$PAUSE_VERSION" "$context" scratch <<'DOCKERFILE'
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
DOCKERFILE
  save "$registry/pause:$PAUSE_VERSION" "$BUILD_IMAGE_PREFIX$(sandbox_image)"
  context=$WORK/coredns
  mkdir -p "$context" && cp "$tools/coredns" "$context/"
  build_image "$registry/coredns/coredns:$COREDNS_MODULE_VERSION" "$context" scratch <<'DOCKERFILE'
COPY coredns /coredns
EXPOSE 53 53/udp
ENTRYPOINT ["/coredns"]
DOCKERFILE
  save "$registry/coredns/coredns:$COREDNS_MODULE_VERSION"

  userland_base
  context=$WORK/kube-proxy
  mkdir -p "$context" && cp "$kube/kube-proxy" "$context/"
  build_image "$registry/kube-proxy:$KUBERNETES_VERSION" "$context" "$USERLAND_IMAGE" <<'DOCKERFILE'
COPY kube-proxy /usr/local/bin/kube-proxy
ENTRYPOINT ["/usr/local/bin/kube-proxy"]
DOCKERFILE
  save "$registry/kube-proxy:$KUBERNETES_VERSION"
  image=$(echo "$required" | grep "/etcd:")
  [[ $image == "registry.k8s.io/etcd:${ETCD_MODULE_VERSION#v}-0" ]] || die "kubeadm names $image; set ETCD_MODULE_VERSION in versions.env"
  static_image "$BUILD_IMAGE_PREFIX$image" etcd "$tools"
  save "$BUILD_IMAGE_PREFIX$image"

  log "building the default CNI and storage images"
  context=$WORK/flannel
  mkdir -p "$context" && cp "$tools/flanneld" "$context/"
  build_image "$FLANNEL_IMAGE" "$context" "$USERLAND_IMAGE" <<'DOCKERFILE'
COPY flanneld /opt/bin/flanneld
ENTRYPOINT ["/opt/bin/flanneld"]
DOCKERFILE
  save "$FLANNEL_IMAGE"
  static_image "$LOCAL_PATH_PROVISIONER_IMAGE" local-path-provisioner "$tools"
  save "$LOCAL_PATH_PROVISIONER_IMAGE"
  busybox_image "$LOCAL_PATH_HELPER_IMAGE"
  save "$LOCAL_PATH_HELPER_IMAGE"
}

# The sandbox (pause) image of kind's containerd config.
sandbox_image() {
  local kind_dir
  kind_dir=$(go_module_dir sigs.k8s.io/kind "$KIND_MODULE_VERSION")
  sed -n 's/^ *sandbox_image = "\(.*\)"$/\1/p' "$kind_dir/images/base/files/etc/containerd/config.toml"
}

main "$@"
