#!/usr/bin/env bash
# Installs KEDA (queue-length autoscaling of the chart's consumer groups) in the kind cluster
# KIND_CLUSTER, with no registry:
#   1. builds its three programs from the Go module github.com/kedacore/keda/v2 at
#      KEDA_MODULE_VERSION (versions.env), static, as upstream's Makefile does (operator, adapter,
#      webhooks), into images FROM scratch named as upstream's release images
#      (ghcr.io/kedacore/keda, keda-metrics-apiserver, keda-admission-webhooks:<version>), run as
#      upstream's unprivileged user; kept in Docker, so a second run only loads them;
#   2. loads them into the nodes with `kind load docker-image`;
#   3. applies the module's own manifests (config/default) through k8s-tests/kind/keda/ and waits
#      until the operator and its metrics API server are ready and external.metrics.k8s.io is served.
# Environment: KIND_CLUSTER (sluice-e2e).
#   scripts/kind-addons/keda.sh
set -euo pipefail
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../kind/lib.sh"
# shellcheck source=scripts/kind-addons/versions.env
source "$SCRIPTS_DIR/kind-addons/versions.env"

CLUSTER=${KIND_CLUSTER:-sluice-e2e}
CONTEXT=kind-$CLUSTER
MODULE=github.com/kedacore/keda/v2
VERSION=${KEDA_MODULE_VERSION#v}
#: program (cmd/<dir> of the module) -> image, and the flags of upstream's Dockerfile ENTRYPOINT.
declare -A IMAGES=([operator]=ghcr.io/kedacore/keda:$VERSION
  [adapter]=ghcr.io/kedacore/keda-metrics-apiserver:$VERSION
  [webhooks]=ghcr.io/kedacore/keda-admission-webhooks:$VERSION)
declare -A BINARIES=([operator]=keda [adapter]=keda-adapter [webhooks]=keda-admission-webhooks)
declare -A FLAGS=([operator]='"--zap-log-level=info", "--zap-encoder=console"'
  [adapter]='"--secure-port=6443", "--zap-log-level=info", "--zap-encoder=console"'
  [webhooks]='"--zap-log-level=info", "--zap-encoder=console"')
READY_TIMEOUT_S=300

build_images() {
  local module work program binary
  module=$(go_module_dir "$MODULE" "$KEDA_MODULE_VERSION")
  work=$(mktemp -d)
  # The module is the main module here, so its own go.mod (with its replace lines) decides every
  # dependency; upstream builds from a vendor directory, which the module does not ship.
  cp -r "$module" "$work/src"
  chmod -R u+w "$work/src"
  for program in operator adapter webhooks; do
    binary=${BINARIES[$program]}
    log "building $binary from $MODULE@$KEDA_MODULE_VERSION (cmd/$program)"
    (cd "$work/src" && CGO_ENABLED=0 heavy go build -mod=mod -trimpath \
      -ldflags "-s -w -X=github.com/kedacore/keda/v2/version.Version=$VERSION" -o "$work/$program/$binary" \
      "./cmd/$program") || die "go build of KEDA's $program failed (output above)"
    printf 'FROM scratch\nCOPY %s /%s\nUSER 65532:65532\nENTRYPOINT ["/%s", %s]\n' \
      "$binary" "$binary" "$binary" "${FLAGS[$program]}" >"$work/$program/Dockerfile"
    heavy docker build -q -t "${IMAGES[$program]}" --label "org.sluice.source=$MODULE@$KEDA_MODULE_VERSION" \
      "$work/$program" >/dev/null || die "docker build of ${IMAGES[$program]} failed"
  done
  rm -rf "$work"
}

apply_manifests() {
  local module work
  module=$(go_module_dir "$MODULE" "$KEDA_MODULE_VERSION")
  work=$(mktemp -d)
  cp -r "$module/config" "$work/config"
  chmod -R u+w "$work"
  sed "s/KEDA_VERSION/$VERSION/" "$REPO_ROOT/k8s-tests/kind/keda/kustomization.yaml" >"$work/kustomization.yaml"
  # Server-side: the ScaledJob CRD is larger than client-side apply's annotation allows.
  kubectl --context "$CONTEXT" apply --server-side --force-conflicts -k "$work" >&2
  rm -rf "$work"
}

wait_ready() {
  local deployment deadline
  for deployment in keda-operator keda-metrics-apiserver keda-admission; do
    kubectl --context "$CONTEXT" -n keda rollout status "deployment/$deployment" --timeout "${READY_TIMEOUT_S}s" >&2
  done
  deadline=$(($(now) + READY_TIMEOUT_S))
  until kubectl --context "$CONTEXT" get --raw /apis/external.metrics.k8s.io/v1beta1 >/dev/null 2>&1; do
    (($(now) < deadline)) || die "external.metrics.k8s.io is not served after ${READY_TIMEOUT_S}s"
    sleep 2
  done
  log "KEDA $VERSION is ready"
}

main() {
  local image missing=0
  require_cmd go docker kind kubectl
  for image in "${IMAGES[@]}"; do
    docker image inspect "$image" >/dev/null 2>&1 || missing=1
  done
  ((missing == 0)) || build_images
  PATH="$KIND_SCRIPTS_DIR:$PATH" kind load docker-image --name "$CLUSTER" "${IMAGES[@]}" >&2
  apply_manifests
  wait_ready
}

main "$@"
