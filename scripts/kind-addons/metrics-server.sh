#!/usr/bin/env bash
# Installs metrics-server, which the chart's CPU HorizontalPodAutoscaler needs, in the kind cluster
# KIND_CLUSTER, with no registry:
#   1. builds it from its Go module sigs.k8s.io/metrics-server at METRICS_SERVER_MODULE_VERSION
#      (versions.env), static, into an image FROM scratch named as upstream's release image
#      (registry.k8s.io/metrics-server/metrics-server:<version>); kept in Docker, so a second run
#      only loads it;
#   2. loads it into the nodes with `kind load docker-image`;
#   3. applies the module's own manifests (manifests/base) through k8s-tests/kind/metrics-server/
#      and waits until the API server serves metrics.k8s.io with a usage for every node.
# Environment: KIND_CLUSTER (sluice-e2e).
#   scripts/kind-addons/metrics-server.sh
set -euo pipefail
# shellcheck source=scripts/kind-addons/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODULE=sigs.k8s.io/metrics-server
IMAGE=registry.k8s.io/metrics-server/metrics-server:$METRICS_SERVER_MODULE_VERSION
#: How long the API server may take to serve the first node metrics (metrics-server scrapes every 15 s).
READY_TIMEOUT_S=300

build_image() {
  local work
  work=$(mktemp -d)
  log "building metrics-server from $MODULE@$METRICS_SERVER_MODULE_VERSION"
  GOBIN=$work CGO_ENABLED=0 heavy go install -trimpath \
    -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_MODULE_VERSION" \
    "$MODULE/cmd/metrics-server@$METRICS_SERVER_MODULE_VERSION" || die "go install of metrics-server failed (output above)"
  # As upstream's image: the binary alone, run as an unprivileged user.
  printf 'FROM scratch\nCOPY metrics-server /metrics-server\nUSER 65534\nENTRYPOINT ["/metrics-server"]\n' >"$work/Dockerfile"
  heavy docker build -q -t "$IMAGE" --label "org.sluice.source=$MODULE@$METRICS_SERVER_MODULE_VERSION" "$work" >/dev/null ||
    die "docker build of $IMAGE failed"
  rm -rf "$work"
}

wait_ready() {
  local deadline nodes
  kubectl --context "$CONTEXT" -n kube-system rollout status deployment/metrics-server --timeout "${READY_TIMEOUT_S}s" >&2
  deadline=$(($(now) + READY_TIMEOUT_S))
  nodes=$(kubectl --context "$CONTEXT" get nodes -o name | wc -l)
  until [[ $(kubectl --context "$CONTEXT" top nodes --no-headers 2>/dev/null | wc -l) -eq $nodes ]]; do
    (($(now) < deadline)) || die "metrics.k8s.io has no usage for all $nodes nodes after ${READY_TIMEOUT_S}s"
    sleep 2
  done
  log "metrics-server $METRICS_SERVER_MODULE_VERSION serves the usage of $nodes nodes"
}

main() {
  require_cmd go docker kind kubectl
  docker image inspect "$IMAGE" >/dev/null 2>&1 || build_image
  kind_load "$IMAGE"
  apply_module_manifests "$MODULE" "$METRICS_SERVER_MODULE_VERSION" manifests/base \
    k8s-tests/kind/metrics-server/kustomization.yaml "$METRICS_SERVER_MODULE_VERSION"
  wait_ready
}

main "$@"
