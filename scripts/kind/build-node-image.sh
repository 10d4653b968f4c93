#!/usr/bin/env bash
# Builds a kind node image for KUBERNETES_VERSION from Debian packages and Go modules only (no
# registry), following kind's node-image contract (kind's pkg/build/nodeimage): the base image files
# of the sigs.k8s.io/kind module, kubeadm/kubelet/kubectl in /usr/bin, /kind/version, the default CNI
# and storage manifests in /kind/manifests, and every image the cluster needs imported into the
# node's containerd. Prints the image name on the last line of stdout; `kind create cluster
# --image <name>` then pulls nothing.
#
# The image is cached by its inputs: its tag ends in a hash of versions.env and of the scripts in
# scripts/kind/, and each stage keeps its output under KIND_NODE_CACHE/stages/<stage>-<hash of its
# inputs>/ (Go's build cache keeps compiled packages across hashes). An unchanged second run only checks that the image exists.
#   scripts/kind/build-node-image.sh [--print-name]   (--print-name: the name only, build nothing)
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

#: The repository of the local node images (the tag is <Kubernetes version>-<input hash>).
NODE_REPOSITORY=sluice.local/kind-node
#: kind's entrypoint, after node/unprivileged-entrypoint.
ENTRYPOINT='["/usr/local/bin/unprivileged-entrypoint", "/usr/local/bin/entrypoint", "/sbin/init"]'
BUILD_CONTAINER=
BASE_IMAGE=

# A hash of files $@ (paths relative to scripts/), of the pinned versions and of the shared helpers.
files_hash() {
  (cd "$SCRIPTS_DIR" && sha256sum lib/common.sh kind/lib.sh kind/versions.env "$@") | sha256sum | cut -c1-12
}

# A hash of everything that decides the image's content: every file of scripts/kind but the docker
# wrapper and the docs.
input_hash() {
  local files
  mapfile -t files < <(cd "$SCRIPTS_DIR" && find kind -type f ! -name docker ! -name '*.md' | sort)
  files_hash "${files[@]}"
}

# Runs the stage script $1 of scripts/kind/ into a directory of KIND_NODE_CACHE named for it and
# for the hash $2 of its inputs, unless that directory holds a finished run; the remaining
# arguments go to the script after the directory. Prints the directory.
stage() {
  local script=$1 out=$KIND_NODE_CACHE/stages/${1%.sh}-$2
  if [[ -f $out/.done ]]; then
    log "cached: ${script%.sh} ($out)"
    echo "$out"
    return 0
  fi
  rm -rf --one-file-system "$out"
  mkdir -p "$(dirname "$out")"
  local started=$SECONDS
  "$KIND_SCRIPTS_DIR/$script" "$out" "${@:3}" >"$out.list" || die "$script failed (output above)"
  touch "$out/.done"
  log "${script%.sh} done in $((SECONDS - started))s"
  # outputs of this stage for other inputs are not needed any more
  find "$(dirname "$out")" -maxdepth 1 -name "${script%.sh}-*" ! -name "$(basename "$out")*" -exec rm -rf --one-file-system {} +
  echo "$out"
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
  local name
  for name in $(docker exec "$BUILD_CONTAINER" ctr --namespace=k8s.io images list -q | grep "^$BUILD_IMAGE_PREFIX"); do
    docker exec "$BUILD_CONTAINER" ctr --namespace=k8s.io images tag --force "$name" "${name#"$BUILD_IMAGE_PREFIX"}" >/dev/null
    docker exec "$BUILD_CONTAINER" ctr --namespace=k8s.io images rm "$name" >/dev/null
  done
  docker exec "$BUILD_CONTAINER" ctr --namespace=k8s.io images list -q | grep -v '^sha256:' >&2
  docker exec "$BUILD_CONTAINER" pkill containerd
  # (an exited containerd stays a zombie: the container's PID 1 is sleep, which reaps nothing)
  docker exec "$BUILD_CONTAINER" bash -c 'while pgrep -r D,R,S,T -x containerd >/dev/null; do sleep 0.2; done; rm -f /var/log/containerd-build.log'
}

cleanup() {
  [[ -z $BUILD_CONTAINER ]] || docker rm -f -v "$BUILD_CONTAINER" >/dev/null 2>&1 || true
  [[ -z $BASE_IMAGE ]] || docker rmi "$BASE_IMAGE" >/dev/null 2>&1 || true
}

main() {
  local hash image
  hash=$(input_hash)
  image=$NODE_REPOSITORY:$KUBERNETES_VERSION-$hash
  if [[ ${1:-} == --print-name ]]; then
    echo "$image"
    return 0
  fi
  require_cmd docker
  if docker image inspect "$image" >/dev/null 2>&1; then
    log "$image exists (inputs unchanged)"
    echo "$image"
    return 0
  fi
  require_cmd go gcc python3 jq debootstrap
  log "building $image (cache: $KIND_NODE_CACHE/stages)"
  local kube tools manifests images rootfs
  kube=$(stage build-kubernetes.sh "$(files_hash kind/build-kubernetes.sh)")
  tools=$(stage build-go-tools.sh "$(files_hash kind/build-go-tools.sh)")
  manifests=$(stage build-manifests.sh "$(files_hash kind/build-manifests.sh kind/node/default-cni.yaml)")
  images=$(stage build-images.sh "$(files_hash kind/build-images.sh kind/build-kubernetes.sh kind/build-go-tools.sh)" \
    "$kube" "$tools")
  rootfs=$(stage build-node-rootfs.sh "$(files_hash kind/build-node-rootfs.sh kind/node/cni-template.conflist kind/node/unprivileged-entrypoint \
    kind/build-kubernetes.sh kind/build-go-tools.sh kind/build-manifests.sh kind/node/default-cni.yaml)" \
    "$kube" "$tools" "$manifests")
  BASE_IMAGE=$NODE_REPOSITORY-base:$KUBERNETES_VERSION-$hash
  trap cleanup EXIT
  tar --numeric-owner -C "$rootfs" -c . | heavy docker import --change 'ENV container=docker' \
    --change "ENTRYPOINT $ENTRYPOINT" - "$BASE_IMAGE" >/dev/null
  # systemd exits on SIGRTMIN+3 (kind's base image sets it; `docker import --change` cannot)
  printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\n' "$BASE_IMAGE" | docker build --force-rm -q -t "$BASE_IMAGE" - >/dev/null
  BUILD_CONTAINER=kind-node-build-$hash
  docker rm -f -v "$BUILD_CONTAINER" >/dev/null 2>&1 || true
  docker run -d --entrypoint=sleep --name "$BUILD_CONTAINER" --security-opt seccomp=unconfined "$BASE_IMAGE" infinity >/dev/null
  log "importing $(ls "$images"/*.tar | wc -l) image archives into the node's containerd"
  import_images "$images"
  docker commit --change "ENTRYPOINT $ENTRYPOINT" \
    --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' "$BUILD_CONTAINER" "$image" >/dev/null
  log "built $image"
  # node images of other inputs, unless a kind node still runs one (then docker refuses)
  docker images --format '{{.Repository}}:{{.Tag}}' "$NODE_REPOSITORY" | grep -vxF "$image" |
    xargs -r docker rmi >/dev/null 2>&1 || true
  echo "$image"
}

main "$@"
