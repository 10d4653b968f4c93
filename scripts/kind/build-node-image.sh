#!/usr/bin/env bash
# Builds a kind node image for KUBERNETES_VERSION from Debian packages and Go modules only (no
# registry), following kind's node-image contract (kind's pkg/build/nodeimage): the base image files
# of the sigs.k8s.io/kind module, kubeadm/kubelet/kubectl in /usr/bin, /kind/version, the default CNI
# and storage manifests in /kind/manifests, and every image the cluster needs imported into the
# node's containerd. Prints the image name on the last line of stdout; `kind create cluster
# --image <name>` then pulls nothing.
#
# The image is cached by its inputs: its tag ends in a hash of versions.env and of the scripts in
# scripts/kind/, and each stage keeps its output under KIND_NODE_CACHE/<hash>/ (Go's build cache
# keeps compiled packages across hashes). An unchanged second run only checks that the image exists.
#   scripts/kind/build-node-image.sh [--print-name]   (--print-name: the name only, build nothing)
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

#: The repository of the local node images (the tag is <Kubernetes version>-<input hash>).
NODE_REPOSITORY=sluice.local/kind-node
BUILD_CONTAINER=

# A hash of everything that decides the image's content.
input_hash() {
  (cd "$SCRIPTS_DIR" && find kind lib -type f ! -name docker ! -name '*.md' -print0 | sort -z |
    xargs -0 sha256sum) | sha256sum | cut -c1-12
}

# Runs stage $1 (a script of scripts/kind/ with its arguments) unless its output directory $2
# already holds a finished run.
stage() {
  local out=$2
  if [[ -f $out/.done ]]; then
    log "cached: $(basename "$out")"
    return 0
  fi
  rm -rf --one-file-system "$out"
  local started=$SECONDS
  "$KIND_SCRIPTS_DIR/$1" "$out" "${@:3}" >"$out.list" || die "$1 failed (output above)"
  touch "$out/.done"
  log "$(basename "$out") built in $((SECONDS - started))s"
}

# Starts containerd in the build container and imports each archive into its k8s.io namespace,
# as kind's imageimporter does.
import_images() {
  local images=$1 archive
  docker exec "$BUILD_CONTAINER" bash -c 'nohup containerd >/var/log/containerd-build.log 2>&1 &'
  docker exec "$BUILD_CONTAINER" bash -c 'for i in $(seq 50); do [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1 && exit 0; sleep 0.2; done; cat /var/log/containerd-build.log; exit 1' >&2 ||
    die "containerd did not start in the build container (its log is above)"
  for archive in "$images"/*.tar; do
    heavy docker exec -i "$BUILD_CONTAINER" ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned \
      --all-platforms --no-unpack --digests - <"$archive" >/dev/null || die "ctr images import of $archive failed"
  done
  docker exec "$BUILD_CONTAINER" ctr --namespace=k8s.io images list -q | grep -v '^sha256:' >&2
  docker exec "$BUILD_CONTAINER" pkill containerd
  docker exec "$BUILD_CONTAINER" bash -c 'while pgrep -x containerd >/dev/null; do sleep 0.2; done; rm -f /var/log/containerd-build.log'
}

cleanup() {
  [[ -z $BUILD_CONTAINER ]] || docker rm -f -v "$BUILD_CONTAINER" >/dev/null 2>&1 || true
}

main() {
  local hash image base cache
  hash=$(input_hash)
  image=$NODE_REPOSITORY:$KUBERNETES_VERSION-$hash
  if [[ ${1:-} == --print-name ]]; then
    echo "$image"
    return 0
  fi
  require_cmd docker go gcc python3 jq debootstrap
  if docker image inspect "$image" >/dev/null 2>&1; then
    log "$image exists (inputs unchanged)"
    echo "$image"
    return 0
  fi
  cache=$KIND_NODE_CACHE/$hash
  mkdir -p "$cache"
  log "building $image (cache: $cache)"
  stage build-kubernetes.sh "$cache/kube-bin"
  stage build-go-tools.sh "$cache/tools-bin"
  stage build-manifests.sh "$cache/manifests"
  stage build-images.sh "$cache/images" "$cache/kube-bin" "$cache/tools-bin"
  if [[ ! -f $cache/rootfs.tar ]]; then
    rm -rf --one-file-system "$cache/rootfs"
    "$KIND_SCRIPTS_DIR/build-node-rootfs.sh" "$cache/rootfs" "$cache/kube-bin" "$cache/tools-bin" "$cache/manifests"
    tar --numeric-owner -C "$cache/rootfs" -cf "$cache/rootfs.tar.part" .
    mv "$cache/rootfs.tar.part" "$cache/rootfs.tar"
    rm -rf --one-file-system "$cache/rootfs"
  fi
  base=$NODE_REPOSITORY-base:$KUBERNETES_VERSION-$hash
  heavy docker import --change 'ENV container=docker' --change 'STOPSIGNAL SIGRTMIN+3' \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' "$cache/rootfs.tar" "$base" >/dev/null
  BUILD_CONTAINER=kind-node-build-$hash
  trap cleanup EXIT
  docker rm -f -v "$BUILD_CONTAINER" >/dev/null 2>&1 || true
  docker run -d --entrypoint=sleep --name "$BUILD_CONTAINER" --security-opt seccomp=unconfined "$base" infinity >/dev/null
  log "importing $(ls "$cache"/images/*.tar | wc -l) image archives into the node's containerd"
  import_images "$cache/images"
  docker commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
    --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' "$BUILD_CONTAINER" "$image" >/dev/null
  docker rmi "$base" >/dev/null
  log "built $image"
  echo "$image"
}

main "$@"
