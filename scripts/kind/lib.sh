# shellcheck shell=bash disable=SC2034
# Shared settings of the kind node image scripts in scripts/kind/. Source it, do not run it.
# It loads the pinned versions (versions.env) and says where builds are cached:
#   KIND_NODE_CACHE   default ${XDG_CACHE_HOME:-$HOME/.cache}/sluice/kind-node (outside the repo,
#                     so that a fresh clone on the same machine reuses it)
#   GOMAXPROCS        parallelism of Go builds (default 2)
# Heavy steps run through `heavy`: lowest CPU and I/O priority, so that other work on the machine
# keeps its timing.
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
KIND_SCRIPTS_DIR=$SCRIPTS_DIR/kind
# shellcheck source=scripts/kind/versions.env
source "$KIND_SCRIPTS_DIR/versions.env"

KIND_NODE_CACHE=${KIND_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice/kind-node}
export GOMAXPROCS=${GOMAXPROCS:-2}
export GOFLAGS=${GOFLAGS:--buildvcs=false}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

heavy() { nice -n 19 ionice -c3 "$@"; }

# The directory of Go module $1 at version $2 in the module cache, downloaded if missing.
go_module_dir() {
  local dir
  dir=$(go mod download -json "$1@$2" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [[ -n $dir && -d $dir ]] || die "cannot download Go module $1@$2 (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY))"
  echo "$dir"
}

# apt-get against Debian sid in a private directory (the host's own apt state is left alone).
sid_apt() {
  local root=$KIND_NODE_CACHE/apt-sid
  if [[ ! -f $root/etc/apt/sources.list ]]; then
    mkdir -p "$root"/etc/apt/{apt.conf.d,preferences.d,sources.list.d} "$root"/var/lib/apt/lists/partial \
      "$root"/var/cache/apt/archives/partial "$root"/var/lib/dpkg
    touch "$root/var/lib/dpkg/status"
    echo "deb [signed-by=$DEBIAN_KEYRING] $DEBIAN_MIRROR sid main" >"$root/etc/apt/sources.list"
  fi
  apt-get -q -o Dir="$root" -o Dir::State::status="$root/var/lib/dpkg/status" -o Debug::NoLocking=1 \
    -o APT::Sandbox::User=root "$@"
}

# Downloads the sid packages named PKG=VERSION into directory $1 (updating sid's package lists
# when a pinned version is not in them).
sid_download() {
  local dir=$1; shift
  mkdir -p "$dir"
  if ! (cd "$dir" && sid_apt download "$@" >&2); then
    sid_apt update >&2 || die "apt-get update of Debian sid failed ($DEBIAN_MIRROR reachable?)"
    (cd "$dir" && sid_apt download "$@" >&2) ||
      die "Debian sid no longer has $*: pick the current versions (apt-cache policy) in scripts/kind/versions.env"
  fi
}

# A Debian DEBIAN_SUITE root file system in directory $1 with the comma-separated packages $2
# (debootstrap minbase), its apt caches and docs removed.
debootstrap_rootfs() {
  local dir=$1 packages=$2
  require_cmd debootstrap
  require_root "runs debootstrap"
  log "debootstrap $DEBIAN_SUITE into $dir (+ $packages)"
  heavy debootstrap --variant=minbase --include="$packages" --keyring="$DEBIAN_KEYRING" \
    "$DEBIAN_SUITE" "$dir" "$DEBIAN_MIRROR" >"$dir.debootstrap.log" 2>&1 ||
    { tail -n 20 "$dir.debootstrap.log" >&2; die "debootstrap failed; see $dir.debootstrap.log"; }
  rm -f "$dir.debootstrap.log"
}

# Removes what an image does not need from root file system $1.
slim_rootfs() {
  rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/* "$1"/var/log/* "$1"/tmp/* \
    "$1"/var/tmp/* "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/info/* "$1"/var/cache/debconf/*-old
}

# Runs a command in chroot $1 with a clean environment.
in_chroot() {
  local dir=$1; shift
  chroot "$dir" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"
}

# The images kubeadm names are built in the host's Docker under this prefix (so that no image of
# the host named registry.k8s.io/... is ever replaced or removed), and renamed without it in the
# node's containerd.
BUILD_IMAGE_PREFIX=sluice.local/kind-build/

# The node image's own CNI and storage images (named by its /kind/manifests; built locally, never pushed).
FLANNEL_IMAGE=sluice.local/kind/flannel:$FLANNEL_MODULE_VERSION
LOCAL_PATH_PROVISIONER_IMAGE=sluice.local/kind/local-path-provisioner:$LOCAL_PATH_PROVISIONER_MODULE_VERSION
LOCAL_PATH_HELPER_IMAGE=sluice.local/kind/local-path-helper:busybox-${BUSYBOX_DEB_VERSION#*:}
LOCAL_PATH_HELPER_IMAGE=${LOCAL_PATH_HELPER_IMAGE%%+*}
