#!/usr/bin/env bash
# Makes sure a Docker engine answers `docker info`. On machines without systemd it starts
# dockerd in the background itself (nohup dockerd >/var/log/dockerd.log) and waits until the
# engine is ready, failing with the end of the engine's log after a deadline.
# Environment: DOCKER_START_TIMEOUT (seconds, default 30), DOCKERD_LOG (default /var/log/dockerd.log).
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

#: How long to wait for a freshly started dockerd to answer.
DOCKER_START_TIMEOUT=${DOCKER_START_TIMEOUT:-30}
#: Where the engine started by this script writes its output.
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
DOCKERD_PIDFILE=/var/run/docker.pid

docker_ready() { docker info >/dev/null 2>&1; }

# The pid of a dockerd that is still alive, from its pid file; empty when there is none.
running_dockerd_pid() {
  local pid
  pid=$(cat "$DOCKERD_PIDFILE" 2>/dev/null) || return 0
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]]; then
    echo "$pid"
  fi
}

# Starts dockerd in its own session (it must outlive this script and the caller's process
# group) with no descriptor of ours but the log: an inherited lock or pipe would otherwise stay
# open for the engine's whole life, blocking whoever waits on it.
start_detached_dockerd() {
  (
    for fd in /proc/"$BASHPID"/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-"; fi
    done
    exec setsid nohup dockerd >"$DOCKERD_LOG" 2>&1 </dev/null
  ) &
}

main() {
  require_cmd docker
  if docker_ready; then
    log "docker engine is already running"
    return 0
  fi
  if [[ -n ${DOCKER_HOST:-} ]]; then
    die "DOCKER_HOST=$DOCKER_HOST does not answer 'docker info'; start that engine, or unset DOCKER_HOST"
  fi
  require_cmd dockerd
  require_root "starts dockerd"

  local pid
  pid=$(running_dockerd_pid)
  if [[ -n $pid ]]; then
    log "dockerd (pid $pid) is running but not answering yet; waiting"
  else
    # A pid file left by an engine that died makes dockerd refuse to start.
    rm -f "$DOCKERD_PIDFILE"
    log "starting dockerd (log: $DOCKERD_LOG)"
    start_detached_dockerd
    pid=$!
  fi

  local deadline=$(($(now) + DOCKER_START_TIMEOUT))
  until docker_ready; do
    if ! kill -0 "$pid" 2>/dev/null && [[ -z $(running_dockerd_pid) ]]; then
      tail -n 20 "$DOCKERD_LOG" >&2 || true
      die "dockerd exited during startup; see $DOCKERD_LOG (last lines above)"
    fi
    if (($(now) >= deadline)); then
      tail -n 20 "$DOCKERD_LOG" >&2 || true
      die "docker engine not ready after ${DOCKER_START_TIMEOUT}s; see $DOCKERD_LOG (last lines above)"
    fi
    sleep 0.2
  done
  log "docker engine is ready (server $(docker version -f '{{.Server.Version}}' 2>/dev/null || echo unknown))"
}

main "$@"
