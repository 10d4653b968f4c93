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
# With --if-built it does nothing (and says so) unless the images are built already: a cold build
# takes long enough that `make kind-e2e` leaves it to `make kind-keda` or a warm cache (KIND_KEDA).
# Environment: KIND_CLUSTER (sluice-e2e).
#   scripts/kind-addons/keda.sh [--if-built]
set -euo pipefail
# shellcheck source=scripts/kind-addons/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

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
  local work program
  work=$(mktemp -d)
  # Upstream builds from a vendor directory, which the module does not ship.
  module_copy "$MODULE" "$KEDA_MODULE_VERSION" "$work/src"
  for program in operator adapter webhooks; do
    scratch_program_image "$work/src" "./cmd/$program" "-s -w -X=github.com/kedacore/keda/v2/version.Version=$VERSION" \
      "${IMAGES[$program]}" "/${BINARIES[$program]}" 65532:65532 "${FLAGS[$program]}" "$MODULE@$KEDA_MODULE_VERSION"
  done
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
  local flag
  flag=$(if_built_flag "$@")
  require_cmd go docker kind kubectl
  if ! images_built "${IMAGES[@]}"; then
    if [[ $flag == --if-built ]]; then
      log "KEDA $VERSION is not built here (\`make kind-keda\` builds it): not installed"
      return 0
    fi
    build_images
  fi
  kind_load "${IMAGES[@]}"
  # Server-side: the ScaledJob CRD is larger than client-side apply's annotation allows.
  apply_module_manifests "$MODULE" "$KEDA_MODULE_VERSION" config k8s-tests/kind/keda/kustomization.yaml "$VERSION" \
    --server-side --force-conflicts
  wait_ready
}

main "$@"
