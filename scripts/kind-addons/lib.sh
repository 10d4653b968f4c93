# shellcheck shell=bash
# Shared steps of the scripts in scripts/kind-addons/. Source it, do not run it. It loads
# scripts/kind/lib.sh (log, die, heavy, go_module_dir) and the pinned versions (versions.env).
# shellcheck source=scripts/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../kind/lib.sh"
# shellcheck source=scripts/kind-addons/versions.env
source "$SCRIPTS_DIR/kind-addons/versions.env"

CLUSTER=${KIND_CLUSTER:-sluice-e2e}
CONTEXT=kind-$CLUSTER

# Applies directory $3 of Go module $1 at version $2 through the kustomization $4 of the repository
# (next to which it is copied, under its own name), with VERSION_PLACEHOLDER in $4 replaced by $5;
# further arguments go to `kubectl apply`.
apply_module_manifests() {
  local module=$1 version=$2 subdir=$3 overlay=$4 value=$5 dir work
  shift 5
  dir=$(go_module_dir "$module" "$version")
  work=$(mktemp -d)
  cp -r "$dir/$subdir" "$work/$(basename "$subdir")"
  chmod -R u+w "$work"
  sed "s/VERSION_PLACEHOLDER/$value/" "$REPO_ROOT/$overlay" >"$work/kustomization.yaml"
  kubectl --context "$CONTEXT" apply "$@" -k "$work" >&2
  rm -rf "$work"
}

# Copies Go module $1 at version $2 into directory $3, writable, to build it as the main module:
# then its own go.mod, replace lines included, decides every dependency.
module_copy() {
  mkdir -p "$(dirname "$3")"
  cp -r "$(go_module_dir "$1" "$2")" "$3"
  chmod -R u+w "$3"
}

# In module copy $1, builds package $2 (static, -ldflags $3) and makes image $4 FROM scratch of it:
# the binary as path $5, run as user $6, with the entrypoint's further arguments $7 (JSON strings,
# comma-separated, may be empty). $8 names the source, for the image's label.
scratch_program_image() {
  local src=$1 package=$2 ldflags=$3 image=$4 path=$5 user=$6 args=$7 source=$8 work
  work=$(mktemp -d)
  log "building ${path##*/} from $source ($package)"
  (cd "$src" && CGO_ENABLED=0 heavy go build -mod=mod -trimpath -ldflags "$ldflags" -o "$work/program" "$package") ||
    die "go build of $package of $source failed (output above)"
  printf 'FROM scratch\nCOPY program %s\nUSER %s\nENTRYPOINT ["%s"%s]\n' "$path" "$user" "$path" "${args:+, $args}" \
    >"$work/Dockerfile"
  heavy docker build -q -t "$image" --label "org.sluice.source=$source" "$work" >/dev/null ||
    die "docker build of $image failed"
  rm -rf "$work"
}

# Whether every image $@ is in Docker.
images_built() {
  local image
  for image in "$@"; do
    docker image inspect "$image" >/dev/null 2>&1 || return 1
  done
}

# The add-on scripts' argument check: none, or --if-built. Prints the argument (empty for none).
if_built_flag() {
  [[ $# -eq 0 || $* == --if-built ]] || die "usage: $0 [--if-built]"
  echo "${1:-}"
}

# Loads the local images $@ into the nodes of the kind cluster.
kind_load() {
  PATH="$KIND_SCRIPTS_DIR:$PATH" kind load docker-image --name "$CLUSTER" "$@" >&2
}
