# shellcheck shell=bash disable=SC2034
# Shared helpers for the machine-setup scripts in scripts/. Source it, do not run it:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# Progress and errors go to stderr, prefixed with the calling script's name, so that stdout
# stays free for the one thing a script prints for its caller (an image name, a path, env lines).

SCRIPT_NAME=$(basename "$0" .sh)
SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_ROOT=$(cd "$SCRIPTS_DIR/.." && pwd)

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }

die() {
  printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2
  exit 1
}

require_root() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (it $1)"
}

require_cmd() {
  local cmd
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' not found on PATH; run scripts/install-system-deps.sh first"
  done
}

# Seconds since the epoch; used for deadlines.
now() { date +%s; }
