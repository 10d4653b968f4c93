#!/usr/bin/env bash
# Installs prometheus-operator and a Prometheus it runs in the kind cluster KIND_CLUSTER, with no
# registry:
#   1. builds the operator and its config reloader from the Go module
#      github.com/prometheus-operator/prometheus-operator at PROMETHEUS_OPERATOR_MODULE_VERSION
#      (versions.env), static, as upstream's Makefile does, into images FROM scratch named as
#      upstream's (quay.io/prometheus-operator/prometheus-operator, prometheus-config-reloader);
#   2. builds sluice.local/prometheus:<version> from Debian's prometheus package
#      (scripts/get-prometheus.sh) on the project's Debian sid base image;
#   3. loads the three into the nodes, applies the module's bundle.yaml (CRDs and the operator, in
#      namespace default, server-side) and k8s-tests/kind/prometheus/prometheus.yaml (namespace
#      monitoring), and waits until that Prometheus is ready.
# Images already in Docker are reused. With --if-built it does nothing (and says so) unless the
# operator's images are built already, as keda.sh does. Environment: KIND_CLUSTER (sluice-e2e).
#   scripts/kind-addons/prometheus-operator.sh [--if-built]
set -euo pipefail
# shellcheck source=scripts/kind-addons/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODULE=github.com/prometheus-operator/prometheus-operator
VERSION=$PROMETHEUS_OPERATOR_MODULE_VERSION
OPERATOR_IMAGE=quay.io/prometheus-operator/prometheus-operator:$VERSION
RELOADER_IMAGE=quay.io/prometheus-operator/prometheus-config-reloader:$VERSION
READY_TIMEOUT_S=300

build_operator_images() {
  local work nested
  work=$(mktemp -d)
  # Its go.mod replaces two modules of its own (pkg/apis/monitoring, pkg/client) with their
  # directories, which its module zip leaves out: put both back.
  module_copy "$MODULE" "$VERSION" "$work/src"
  for nested in pkg/apis/monitoring pkg/client; do
    rm -rf "${work:?}/src/$nested"
    module_copy "$MODULE/$nested" "$VERSION" "$work/src/$nested"
  done
  # As upstream's images: the binary in /bin, run as nobody.
  scratch_program_image "$work/src" ./cmd/operator "-s -X github.com/prometheus/common/version.Version=${VERSION#v}" \
    "$OPERATOR_IMAGE" /bin/operator 65534 "" "$MODULE@$VERSION"
  scratch_program_image "$work/src" ./cmd/prometheus-config-reloader \
    "-s -X github.com/prometheus/common/version.Version=${VERSION#v}" "$RELOADER_IMAGE" /bin/prometheus-config-reloader \
    65534 "" "$MODULE@$VERSION"
  rm -rf "$work"
}

# Prints the Prometheus image, built from Debian's package if missing.
prometheus_image() {
  local dir version base image work
  dir=$("$SCRIPTS_DIR/get-prometheus.sh" | tail -n 1)
  version=$("$dir/prometheus" --version 2>&1 | sed -n 's/^prometheus, version \([0-9.]*\).*/\1/p')
  image=sluice.local/prometheus:$version
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    base=$("$SCRIPTS_DIR/build-base-image.sh" --suite sid | tail -n 1)
    work=$(mktemp -d)
    cp "$dir/prometheus" "$dir/promtool" "$work/"
    # As upstream's image: /bin/prometheus, data in /prometheus, run as nobody.
    printf 'FROM %s\nCOPY prometheus promtool /bin/\nRUN mkdir -p /prometheus && chown 65534:65534 /prometheus\nUSER 65534\nWORKDIR /prometheus\nENTRYPOINT ["/bin/prometheus"]\n' \
      "$base" >"$work/Dockerfile"
    heavy docker build -q -t "$image" --label "org.sluice.source=debian:prometheus=$version" "$work" >/dev/null ||
      die "docker build of $image failed"
    rm -rf "$work"
  fi
  echo "$image"
}

main() {
  local flag prometheus version deadline
  flag=$(if_built_flag "$@")
  require_cmd go docker kind kubectl
  if ! images_built "$OPERATOR_IMAGE" "$RELOADER_IMAGE"; then
    if [[ $flag == --if-built ]]; then
      log "prometheus-operator $VERSION is not built here (\`make kind-prometheus\` builds it): not installed"
      return 0
    fi
    build_operator_images
  fi
  prometheus=$(prometheus_image)
  version=${prometheus##*:}
  kind_load "$OPERATOR_IMAGE" "$RELOADER_IMAGE" "$prometheus"
  # Server-side: the CRDs are larger than client-side apply's annotation allows.
  kubectl --context "$CONTEXT" apply --server-side --force-conflicts \
    -f "$(go_module_dir "$MODULE" "$VERSION")/bundle.yaml" >/dev/null
  kubectl --context "$CONTEXT" -n default rollout status deployment/prometheus-operator --timeout "${READY_TIMEOUT_S}s" >&2
  kubectl --context "$CONTEXT" wait --for condition=Established --timeout 60s crd/prometheuses.monitoring.coreos.com >&2
  sed -e "s|PROMETHEUS_IMAGE|$prometheus|" -e "s|PROMETHEUS_VERSION|$version|" \
    "$REPO_ROOT/k8s-tests/kind/prometheus/prometheus.yaml" | kubectl --context "$CONTEXT" apply -f - >&2
  deadline=$(($(now) + READY_TIMEOUT_S))
  until kubectl --context "$CONTEXT" -n monitoring get statefulset prometheus-sluice >/dev/null 2>&1; do
    (($(now) < deadline)) || die "the operator made no StatefulSet for Prometheus sluice in ${READY_TIMEOUT_S}s"
    sleep 2
  done
  kubectl --context "$CONTEXT" -n monitoring rollout status statefulset/prometheus-sluice --timeout "${READY_TIMEOUT_S}s" >&2
  log "prometheus-operator ${VERSION} runs Prometheus $version (Debian's package) in namespace monitoring"
}

main "$@"
