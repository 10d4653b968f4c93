#!/usr/bin/env bash
# Makes sure a Python base image exists for the project's Dockerfiles and prints its name on the
# last line of stdout (progress goes to stderr):
#   1. python:3.12-slim when it is already present or can be pulled;
#   2. otherwise local/python-base:trixie, built once from Debian trixie packages with debootstrap
#      (no registry needed) and reused afterwards.
# With --suite sid it builds (or reuses) local/python-base:sid instead, from Debian unstable: the
# base of the RabbitMQ 4.3 test image (testing/rabbitmq), whose package only sid carries.
# The local image offers the same interface as python:3.12-slim: `python`, `python3` and `pip` in
# /usr/local/bin (a virtual environment over Debian's python3), so `pip install` works in an
# unchanged Dockerfile. It also trusts every CA the host trusts, so that pip inside `docker build`
# works through a TLS-intercepting proxy whose CA only the host knows.
#
# Usage: scripts/build-base-image.sh [--rebuild] [--suite trixie|sid]
# Environment:
#   SLUICE_BASE_IMAGE        use this image (pulled if missing) for trixie and skip everything else
#   SLUICE_BASE_IMAGE_PULL   0 to never try `docker pull python:3.12-slim` (default 1)
#   SLUICE_PULL_TIMEOUT      seconds allowed for that pull (default 20)
#   DEBIAN_MIRROR            default http://deb.debian.org/debian
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

#: The image the project's Dockerfiles default to.
UPSTREAM_IMAGE=python:3.12-slim
#: The image built here from Debian packages when no registry is reachable.
SUITE=trixie
LOCAL_IMAGE=local/python-base:$SUITE
PACKAGES=python3,python3-venv,python-is-python3,ca-certificates,netbase,tzdata
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
CACHE_DIR=/var/cache/sluice
SLUICE_BASE_IMAGE_PULL=${SLUICE_BASE_IMAGE_PULL:-1}
SLUICE_PULL_TIMEOUT=${SLUICE_PULL_TIMEOUT:-20}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

try_pull() {
  [[ $SLUICE_BASE_IMAGE_PULL == 1 ]] || return 1
  log "trying docker pull $1 (timeout ${SLUICE_PULL_TIMEOUT}s)"
  if timeout "$SLUICE_PULL_TIMEOUT" docker pull -q "$1" >/dev/null 2>&1; then
    return 0
  fi
  log "cannot pull $1 (no registry reachable?)"
  return 1
}

# Writes the certificates of bundle $2 that bundle $1 lacks, one PEM file each, into directory $3.
# Certificates are compared by their PEM text with the line breaks removed.
write_missing_certs() {
  awk -v out="$3" '
    /-----BEGIN CERTIFICATE-----/ { inside = 1; pem = ""; flat = "" }
    inside { pem = pem $0 "\n"; flat = flat $0 }
    /-----END CERTIFICATE-----/ {
      inside = 0
      if (FILENAME == ARGV[1]) { known[flat] = 1 }
      else if (!(flat in known)) { n++; f = sprintf("%s/sluice-host-ca-%03d.crt", out, n); printf "%s", pem > f; close(f) }
    }
  ' "$1" "$2"
}

in_chroot() { chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

cleanup() {
  if [[ -n ${ROOTFS:-} && -d $ROOTFS ]]; then
    umount "$ROOTFS/proc" 2>/dev/null || true
    rm -rf --one-file-system "$WORKDIR"
  fi
}

configure_rootfs() {
  rm -f "$ROOTFS/etc/apt/sources.list"
  if [[ $SUITE == sid ]]; then
    log "configuring apt sources (sid: no updates or security suites) and slim settings"
    # Signatures are checked as always; only the Release file's expiry is not: a mirror may
    # serve an unstable snapshot past its Valid-Until date (seen on a mirror frozen for weeks).
    cat >"$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $DEBIAN_MIRROR
Suites: sid
Components: main
Signed-By: $KEYRING
Check-Valid-Until: no
EOF
  else
    log "configuring apt sources ($SUITE, $SUITE-updates, $SUITE-security) and slim settings"
    cat >"$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $DEBIAN_MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: $KEYRING

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: $KEYRING
EOF
  fi
  # The same slimming debian:*-slim images apply: later installs skip docs and man pages too.
  cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
  cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
EOF
  # Package scripts must not try to start services inside an image build.
  printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
  chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
}

upgrade_rootfs() {
  log "applying the latest $SUITE updates"
  mount -t proc proc "$ROOTFS/proc"
  in_chroot apt-get -q update >&2
  in_chroot apt-get -q -y -o Dpkg::Options::=--force-confold upgrade >&2
}

trust_host_cas() {
  [[ -r $HOST_CA_BUNDLE ]] || die "host CA bundle $HOST_CA_BUNDLE not found"
  local extra=$ROOTFS/usr/local/share/ca-certificates count
  mkdir -p "$extra"
  write_missing_certs "$ROOTFS/etc/ssl/certs/ca-certificates.crt" "$HOST_CA_BUNDLE" "$extra"
  count=$(find "$extra" -name 'sluice-host-ca-*.crt' | wc -l)
  log "adding $count CA certificate(s) the host trusts and Debian's bundle lacks"
  # Installed as local CAs rather than by overwriting the bundle, so that they survive any
  # later update-ca-certificates run (a ca-certificates upgrade in a derived image, say).
  in_chroot update-ca-certificates >&2
  local leftover=$WORKDIR/leftover
  mkdir -p "$leftover"
  write_missing_certs "$ROOTFS/etc/ssl/certs/ca-certificates.crt" "$HOST_CA_BUNDLE" "$leftover"
  [[ -z $(ls -A "$leftover") ]] || die "the image's CA bundle still lacks some host CAs"
}

# A virtual environment at /usr/local over Debian's python3: `python`, `pip` and `pip install`
# then behave as in python:3.12-slim (console scripts land in /usr/local/bin, on PATH), without
# overriding Debian's "externally managed" protection of /usr.
create_python_env() {
  log "creating the Python environment at /usr/local"
  in_chroot python3 -m venv /usr/local
  in_chroot /usr/local/bin/pip --version >&2
  in_chroot sh -c 'rm -rf /root/.cache'
}

slim_rootfs() {
  log "removing caches, logs and docs"
  umount "$ROOTFS/proc"
  in_chroot apt-get clean
  rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/debconf/*-old \
    "$ROOTFS"/var/lib/dpkg/*-old "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/usr/share/groff/* "$ROOTFS"/usr/share/locale/* "$ROOTFS"/usr/share/lintian "$ROOTFS"/tmp/* "$ROOTFS"/root/.cache
  find "$ROOTFS"/usr/share/doc -mindepth 1 -not -type d -not -name copyright -delete
  find "$ROOTFS"/usr/share/doc -mindepth 1 -type d -empty -delete
  find "$ROOTFS"/var/log -type f -delete
  : >"$ROOTFS/etc/resolv.conf"
  : >"$ROOTFS/etc/machine-id"
}

build_local_image() {
  require_root "runs debootstrap and chroot"
  require_cmd debootstrap chroot
  [[ -r $KEYRING ]] || die "$KEYRING not found; install debian-archive-keyring"
  mkdir -p "$CACHE_DIR/debs"
  WORKDIR=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
  ROOTFS=$WORKDIR/rootfs
  trap cleanup EXIT

  log "debootstrap $SUITE (minbase, $PACKAGES) into $ROOTFS"
  # --cache-dir keeps the downloaded .debs, so a rebuild downloads only what changed.
  if ! debootstrap --variant=minbase --include="$PACKAGES" --keyring="$KEYRING" \
    --cache-dir="$CACHE_DIR/debs" "$SUITE" "$ROOTFS" "$DEBIAN_MIRROR" >"$WORKDIR/debootstrap.log" 2>&1; then
    tail -n 20 "$WORKDIR/debootstrap.log" >&2
    [[ ! -f $ROOTFS/debootstrap/debootstrap.log ]] || tail -n 20 "$ROOTFS/debootstrap/debootstrap.log" >&2
    die "debootstrap failed (last lines above)"
  fi
  configure_rootfs
  upgrade_rootfs
  trust_host_cas
  create_python_env
  slim_rootfs

  log "importing the root filesystem as $LOCAL_IMAGE"
  local old_id
  old_id=$(docker image inspect -f '{{.Id}}' "$LOCAL_IMAGE" 2>/dev/null) || old_id=""
  tar --numeric-owner --xattrs -C "$ROOTFS" -c . |
    docker import \
      --change 'ENV LANG=C.UTF-8' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["python3"]' \
      --change "LABEL org.opencontainers.image.description=\"Python from Debian $SUITE packages, built by scripts/build-base-image.sh\"" \
      - "$LOCAL_IMAGE" >/dev/null
  cleanup
  trap - EXIT
  # The image this one replaces; kept only while containers or child images still use it.
  [[ -z $old_id ]] || docker rmi "$old_id" >/dev/null 2>&1 || true
  log "built $LOCAL_IMAGE ($(docker image inspect -f '{{.Size}}' "$LOCAL_IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}'))"
}

main() {
  local rebuild=0
  while [[ $# -gt 0 ]]; do
    case $1 in
      --rebuild) rebuild=1 ;;
      --suite)
        [[ ${2:-} == trixie || ${2:-} == sid ]] || die "--suite takes trixie or sid, not '${2:-}'"
        SUITE=$2
        LOCAL_IMAGE=local/python-base:$SUITE
        shift
        ;;
      *) die "unknown argument '$1' (usage: $0 [--rebuild] [--suite trixie|sid])" ;;
    esac
    shift
  done
  "$SCRIPTS_DIR/start-docker.sh"

  if [[ -n ${SLUICE_BASE_IMAGE:-} && $SUITE == trixie ]]; then
    image_exists "$SLUICE_BASE_IMAGE" || try_pull "$SLUICE_BASE_IMAGE" ||
      die "SLUICE_BASE_IMAGE=$SLUICE_BASE_IMAGE is neither present nor pullable"
    echo "$SLUICE_BASE_IMAGE"
    return 0
  fi
  if ((!rebuild)) && [[ $SUITE != trixie ]] && image_exists "$LOCAL_IMAGE"; then
    log "using $LOCAL_IMAGE (present)"
    echo "$LOCAL_IMAGE"
    return 0
  fi
  # python:3.12-slim stands in for the trixie image only: nothing upstream matches sid.
  if ((!rebuild)) && [[ $SUITE == trixie ]]; then
    if image_exists "$UPSTREAM_IMAGE"; then
      log "using $UPSTREAM_IMAGE (present)"
      echo "$UPSTREAM_IMAGE"
      return 0
    fi
    if image_exists "$LOCAL_IMAGE"; then
      log "using $LOCAL_IMAGE (present)"
      echo "$LOCAL_IMAGE"
      return 0
    fi
    if try_pull "$UPSTREAM_IMAGE"; then
      log "using $UPSTREAM_IMAGE (pulled)"
      echo "$UPSTREAM_IMAGE"
      return 0
    fi
  fi

  # One build at a time; a second caller waits and then finds the image.
  mkdir -p "$CACHE_DIR"
  exec 9>"$CACHE_DIR/base-image-$SUITE.lock"
  flock 9
  if ((rebuild)) || ! image_exists "$LOCAL_IMAGE"; then
    build_local_image
  fi
  exec 9>&-
  echo "$LOCAL_IMAGE"
}

main "$@"
