#!/usr/bin/env bash
# Runs a throwaway RabbitMQ broker in Docker for tests and demos, and prints how to reach it.
#
# Usage: scripts/rabbitmq.sh COMMAND [NAME] [ARGS...]     (NAME defaults to sluice-rabbitmq)
#   start [NAME]    start the broker (building its image and starting dockerd if needed), wait
#                   until it serves AMQP, the management API and metrics, then print its env;
#                   a broker that already runs is only checked and its env printed again
#   stop [NAME]     remove the container and its data volume
#   restart [NAME]  docker restart (data kept), wait until ready, print the env again
#   kill [NAME]     SIGKILL the broker, start it again on the same volume, wait, print the env
#   env [NAME]      print the env of the running broker
#   logs [NAME] [docker logs options...]
#   image           build the broker image if needed and print its name
#
# The env is three shell-sourceable lines on stdout, also written to .state/rabbitmq-NAME.env:
#   SLUICE_AMQP_URL=amqp://sluice:PASS@127.0.0.1:PORT/%2F
#   SLUICE_MANAGEMENT_URL=http://sluice:PASS@127.0.0.1:PORT
#   SLUICE_RABBITMQ_METRICS_URL=http://127.0.0.1:PORT
# plus, for a broker created with SLUICE_RABBITMQ_TLS_DIR, a fourth:
#   SLUICE_AMQPS_URL=amqps://sluice:PASS@127.0.0.1:PORT/%2F
# Ports are published on 127.0.0.1 only, on free host ports picked when the container is created
# and kept across restart and kill, so clients reconnect to the same URL as they would to a Service.
# Everything else goes to stderr. Environment:
#   SLUICE_RABBITMQ_VERSION        the RabbitMQ version of the image built from testing/rabbitmq:
#                                  4.3.6 (default; what the chart deploys, from a Debian sid base)
#                                  or 4.0.5 (from a Debian trixie base); sluice/rabbitmq-test:VERSION
#   SLUICE_RABBITMQ_IMAGE          use this image instead of building one
#                                  (rabbitmq:4.3.6-management works too where a registry is reachable)
#   SLUICE_RABBITMQ_READY_TIMEOUT  seconds to wait for a broker to become ready (default 60)
#   SLUICE_RABBITMQ_TLS_DIR        on start of a new container: a directory with ca.crt, server.crt
#                                  and server.key (PEM); adds a mutual-TLS listener on 5671
#                                  (testing/rabbitmq-tls/20-tls.conf) next to the plain one
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

#: The tested RabbitMQ versions, and the Debian suite that packages each.
declare -A SUITE_OF_VERSION=([4.3.6]=sid [4.0.5]=trixie)
VERSION=${SLUICE_RABBITMQ_VERSION:-4.3.6}
[[ -n ${SUITE_OF_VERSION[$VERSION]:-} ]] ||
  die "SLUICE_RABBITMQ_VERSION=$VERSION is not a tested version (${!SUITE_OF_VERSION[*]})"
#: The image built from testing/rabbitmq.
BUILT_IMAGE=sluice/rabbitmq-test:$VERSION
IMAGE=${SLUICE_RABBITMQ_IMAGE:-$BUILT_IMAGE}
IMAGE_CONTEXT=$REPO_ROOT/testing/rabbitmq
#: How long a starting broker may take to serve AMQP, the management API and metrics.
READY_TIMEOUT=${SLUICE_RABBITMQ_READY_TIMEOUT:-60}
DEFAULT_NAME=sluice-rabbitmq
STATE_DIR=$REPO_ROOT/.state
BROKER_USER=sluice
TLS_DIR=${SLUICE_RABBITMQ_TLS_DIR:-}
TLS_CONF=$REPO_ROOT/testing/rabbitmq-tls/20-tls.conf
LABEL_PREFIX=org.sluice.rabbitmq

usage() {
  sed -n '/^# Usage:/,/^#   image/p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

container_status() { docker inspect -f '{{.State.Status}}' "$1" 2>/dev/null || true; }

label() { docker inspect -f "{{index .Config.Labels \"$LABEL_PREFIX.$2\"}}" "$1"; }

# The host port that container $1 publishes for its port $2, e.g. 49153.
host_port() {
  local mapping
  mapping=$(docker port "$1" "$2/tcp" 2>/dev/null) || return 1
  mapping=$(sed -n 1p <<<"$mapping")
  [[ -n $mapping ]] || return 1
  echo "${mapping##*:}"
}

# True when port $1 completes the start of an AMQP 0-9-1 handshake: the server answers the
# protocol header with a connection.start method frame. A plain TCP connect proves nothing,
# since docker-proxy accepts connections before the broker listens.
amqp_accepts() {
  local reply
  # shellcheck disable=SC2016 # $1 is expanded by the inner bash
  reply=$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1"
    printf "AMQP\x00\x00\x09\x01" >&3
    head -c 11 <&3 | od -An -v -tx1 | tr -d " \n"
  ' _ "$1" 2>/dev/null) || return 1
  # Frame type 1 on channel 0, then class 10 / method 10 (connection.start).
  [[ ${reply:0:6} == 010000 && ${reply:14:8} == 000a000a ]]
}

http_ok() { curl -fsS --noproxy '*' --max-time 3 -o /dev/null "$@" 2>/dev/null; }

# Writes the broker's env to .state/rabbitmq-NAME.env and prints it.
print_env() {
  local name=$1 password amqp_port mgmt_port metrics_port amqps_port env_file env
  password=$(label "$name" password)
  if ! amqp_port=$(host_port "$name" 5672) || ! mgmt_port=$(host_port "$name" 15672) ||
    ! metrics_port=$(host_port "$name" 15692); then
    die "container $name publishes no ports; is it running?"
  fi
  env="SLUICE_AMQP_URL=amqp://$BROKER_USER:$password@127.0.0.1:$amqp_port/%2F
SLUICE_MANAGEMENT_URL=http://$BROKER_USER:$password@127.0.0.1:$mgmt_port
SLUICE_RABBITMQ_METRICS_URL=http://127.0.0.1:$metrics_port"
  if amqps_port=$(host_port "$name" 5671); then
    env+="
SLUICE_AMQPS_URL=amqps://$BROKER_USER:$password@127.0.0.1:$amqps_port/%2F"
  fi
  mkdir -p "$STATE_DIR"
  env_file=$STATE_DIR/rabbitmq-$name.env
  (umask 077 && printf '%s\n' "$env" >"$env_file.tmp") && mv "$env_file.tmp" "$env_file"
  log "env written to ${env_file#"$REPO_ROOT"/}"
  printf '%s\n' "$env"
}

wait_ready() {
  local name=$1 started deadline status password amqp_port mgmt_port metrics_port
  started=$(now)
  deadline=$((started + READY_TIMEOUT))
  password=$(label "$name" password)
  log "waiting for $name to serve AMQP, the management API and metrics (up to ${READY_TIMEOUT}s)"
  while :; do
    status=$(container_status "$name")
    if [[ $status != running && $status != restarting ]]; then
      docker logs --tail 30 "$name" >&2 || true
      die "container $name is '${status:-gone}' instead of running (last log lines above)"
    fi
    if amqp_port=$(host_port "$name" 5672) && mgmt_port=$(host_port "$name" 15672) &&
      metrics_port=$(host_port "$name" 15692) &&
      amqp_accepts "$amqp_port" &&
      http_ok -u "$BROKER_USER:$password" "http://127.0.0.1:$mgmt_port/api/overview" &&
      http_ok "http://127.0.0.1:$metrics_port/metrics"; then
      log "$name is ready after $(($(now) - started))s"
      return 0
    fi
    if (($(now) >= deadline)); then
      docker logs --tail 30 "$name" >&2 || true
      die "$name not ready after ${READY_TIMEOUT}s (last log lines above)"
    fi
    sleep 0.5
  done
}

# A hash of everything the built image depends on: the build context and the base image.
context_hash() {
  (
    cd "$IMAGE_CONTEXT"
    find . -type f -print0 | sort -z | xargs -0 sha256sum
    echo "$1"
  ) | sha256sum | cut -c1-16
}

ensure_image() {
  if [[ $IMAGE != "$BUILT_IMAGE" ]]; then
    docker image inspect "$IMAGE" >/dev/null 2>&1 || docker pull -q "$IMAGE" >&2 ||
      die "SLUICE_RABBITMQ_IMAGE=$IMAGE is neither present nor pullable"
    return 0
  fi
  local base base_id want have build_log old_id
  base=$("$SCRIPTS_DIR/build-base-image.sh" --suite "${SUITE_OF_VERSION[$VERSION]}" | tail -n 1)
  base_id=$(docker image inspect -f '{{.Id}}' "$base") || die "base image $base not found"
  want=$(context_hash "$base_id $VERSION")
  have=$(docker image inspect -f "{{index .Config.Labels \"$LABEL_PREFIX.build\"}}" "$IMAGE" 2>/dev/null) || true
  [[ $have != "$want" ]] || return 0

  mkdir -p "$STATE_DIR"
  exec 8>"$STATE_DIR/rabbitmq-image-$VERSION.lock"
  flock 8
  have=$(docker image inspect -f "{{index .Config.Labels \"$LABEL_PREFIX.build\"}}" "$IMAGE" 2>/dev/null) || true
  if [[ $have != "$want" ]]; then
    old_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null) || old_id=""
    build_log=$STATE_DIR/rabbitmq-image-$VERSION-build.log
    log "building $IMAGE from ${IMAGE_CONTEXT#"$REPO_ROOT"/} on $base (log: ${build_log#"$REPO_ROOT"/})"
    if ! docker build --force-rm --build-arg BASE_IMAGE="$base" --build-arg RABBITMQ_VERSION="$VERSION" --label "$LABEL_PREFIX.build=$want" \
      -t "$IMAGE" "$IMAGE_CONTEXT" >"$build_log" 2>&1; then
      tail -n 20 "$build_log" >&2
      die "docker build of $IMAGE failed (last lines above, full log in $build_log)"
    fi
    log "built $IMAGE"
    # The image this one replaces, unless a container still uses it.
    [[ -z $old_id ]] || docker rmi "$old_id" >/dev/null 2>&1 || true
  fi
  exec 8>&-
}

# Renders the image's rabbitmq.conf with our user and password into directory $1.
write_config() {
  sed -e "s/^default_user = .*/default_user = $BROKER_USER/" -e "s/^default_pass = .*/default_pass = $2/" \
    "$IMAGE_CONTEXT/rabbitmq.conf" >"$1/rabbitmq.conf"
  grep -q "^default_pass = $2\$" "$1/rabbitmq.conf" || die "no default_pass line in $IMAGE_CONTEXT/rabbitmq.conf"
}

new_password() {
  local hex
  hex=$(head -c 16 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
  echo "${hex:0:24}"
}

# Prints $1 TCP ports that are free on 127.0.0.1 right now, on one line.
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))
PY
}

create_container() {
  local name=$1 volume=$1-data password tmp file amqp_port mgmt_port metrics_port amqps_port
  # Users live in the data volume: a volume left from an earlier broker keeps that broker's
  # password, so reuse it when the env file still has it; otherwise start from an empty volume.
  password=""
  if docker volume inspect "$volume" >/dev/null 2>&1; then
    password=$(sed -n "s|^SLUICE_AMQP_URL=amqp://$BROKER_USER:\([^@]*\)@.*|\1|p" \
      "$STATE_DIR/rabbitmq-$name.env" 2>/dev/null) || true
    if [[ -z $password ]]; then
      log "removing volume $volume left without credentials"
      docker volume rm "$volume" >/dev/null
    fi
  fi
  [[ -n $password ]] || password=$(new_password)

  read -r amqp_port mgmt_port metrics_port amqps_port < <(free_ports 4)
  local ports=(-p "127.0.0.1:$amqp_port:5672" -p "127.0.0.1:$mgmt_port:15672" -p "127.0.0.1:$metrics_port:15692")
  if [[ -n $TLS_DIR ]]; then
    for file in ca.crt server.crt server.key; do
      [[ -r $TLS_DIR/$file ]] || die "SLUICE_RABBITMQ_TLS_DIR=$TLS_DIR has no readable $file"
    done
    ports+=(-p "127.0.0.1:$amqps_port:5671")
  fi

  log "creating container $name from $IMAGE (volume $volume${TLS_DIR:+, TLS listener})"
  docker create --name "$name" \
    --label "$LABEL_PREFIX.password=$password" --label "$LABEL_PREFIX.image=$IMAGE" \
    -v "$volume:/var/lib/rabbitmq" \
    "${ports[@]}" \
    "$IMAGE" >/dev/null
  # Copied into the container rather than bind-mounted, so the container does not depend on
  # .state/ surviving; readable by the broker's user only.
  tmp=$(mktemp -d)
  write_config "$tmp" "$password"
  tar -C "$tmp" -c --owner=999 --group=999 --mode=0640 rabbitmq.conf | docker cp - "$name:/etc/rabbitmq/"
  if [[ -n $TLS_DIR ]]; then
    mkdir -p "$tmp/tls/tls" "$tmp/tls/conf.d"
    cp "$TLS_DIR/ca.crt" "$TLS_DIR/server.crt" "$TLS_DIR/server.key" "$tmp/tls/tls/"
    cp "$TLS_CONF" "$tmp/tls/conf.d/"
    tar -C "$tmp/tls" -c --owner=999 --group=999 --mode=u=rwX,g=,o= tls conf.d | docker cp - "$name:/etc/rabbitmq/"
  fi
  rm -rf "$tmp"
}

lock_broker() {
  mkdir -p "$STATE_DIR"
  exec 9>"$STATE_DIR/rabbitmq-$1.lock"
  flock 9
}

# Removes container $1 and its volume.
remove_broker() {
  if [[ -n $(container_status "$1") ]]; then
    log "removing container $1"
    docker rm -f -v "$1" >/dev/null
  fi
  if docker volume inspect "$1-data" >/dev/null 2>&1; then
    log "removing volume $1-data"
    docker volume rm "$1-data" >/dev/null
  fi
}

cmd_start() {
  local name=$1 status created_from
  ensure_image
  lock_broker "$name"
  status=$(container_status "$name")
  if [[ -n $status ]]; then
    # A container of another RabbitMQ version (4.3.6 vs 4.0.5 runs) is no broker to reuse: its data
    # directory cannot move to another version either, so both go.
    created_from=$(label "$name" image)
    if [[ $created_from != "$IMAGE" ]]; then
      log "$name was created from ${created_from:-an unlabelled image}, this run asks for $IMAGE: recreating it"
      remove_broker "$name"
      status=""
    fi
  fi
  case $status in
    running | restarting)
      log "container $name is already running"
      if [[ $(docker inspect -f '{{.Image}}' "$name") != $(docker image inspect -f '{{.Id}}' "$IMAGE") ]]; then
        log "note: $name runs an older $IMAGE; 'stop' then 'start' to use the new one"
      fi
      ;;
    created | exited)
      log "starting existing container $name"
      docker start "$name" >/dev/null
      ;;
    paused) docker unpause "$name" >/dev/null ;;
    "")
      # The ports were free when picked; another process may take one before the start, so
      # pick again a few times before giving up.
      local try
      for try in 1 2 3; do
        create_container "$name"
        docker start "$name" >/dev/null && break
        docker rm -f "$name" >/dev/null 2>&1 || true
        ((try < 3)) || die "container $name did not start (docker's error above)"
      done
      ;;
    *) die "container $name is '$status'; run '$0 stop $name' first" ;;
  esac
  wait_ready "$name"
  print_env "$name"
}

cmd_stop() {
  local name=$1
  lock_broker "$name"
  remove_broker "$name"
  rm -f "$STATE_DIR/rabbitmq-$name.env"
  log "$name is gone"
}

require_container() {
  [[ -n $(container_status "$1") ]] || die "no container $1; run '$0 start $1' first"
}

cmd_restart() {
  local name=$1
  require_container "$name"
  lock_broker "$name"
  log "restarting $name"
  docker restart -t 30 "$name" >/dev/null
  wait_ready "$name"
  print_env "$name"
}

cmd_kill() {
  local name=$1
  require_container "$name"
  lock_broker "$name"
  if [[ $(container_status "$name") == running ]]; then
    log "killing $name with SIGKILL"
    docker kill -s KILL "$name" >/dev/null
  fi
  log "starting $name again on volume $name-data"
  docker start "$name" >/dev/null
  wait_ready "$name"
  print_env "$name"
}

cmd_env() {
  local name=$1
  require_container "$name"
  [[ $(container_status "$name") == running ]] || die "container $name is not running; run '$0 start $name'"
  print_env "$name"
}

main() {
  [[ $# -ge 1 ]] || usage
  local command=$1 name=$DEFAULT_NAME
  shift
  if [[ $# -gt 0 && $1 != -* ]]; then
    name=$1
    shift
  fi
  [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "invalid container name '$name'"
  case $command in
    start | stop | restart | kill | env | logs) ;;
    image)
      "$SCRIPTS_DIR/start-docker.sh"
      ensure_image
      echo "$IMAGE"
      return 0
      ;;
    -h | --help | help) usage ;;
    *) die "unknown command '$command' (start, stop, restart, kill, env, logs, image)" ;;
  esac
  require_cmd docker curl python3
  "$SCRIPTS_DIR/start-docker.sh"
  case $command in
    start) cmd_start "$name" ;;
    stop) cmd_stop "$name" ;;
    restart) cmd_restart "$name" ;;
    kill) cmd_kill "$name" ;;
    env) cmd_env "$name" ;;
    logs)
      require_container "$name"
      docker logs "$@" "$name"
      ;;
  esac
}

main "$@"
