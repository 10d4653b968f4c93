#!/usr/bin/env bash
# Starts Debian's own RabbitMQ (3.10.8 on bookworm) on this host, with the management plugin, for
# the compatibility run `make test-rabbitmq3`. It listens on 127.0.0.1:5672 / :15672 as guest
# (guest may only connect from loopback). Prints the two URLs the tests read.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

require_root "installs and starts rabbitmq-server"
"$SCRIPTS_DIR/install-system-deps.sh" rabbitmq-server
require_cmd rabbitmq-server rabbitmqctl rabbitmq-plugins curl
rabbitmq-plugins --offline enable rabbitmq_management >/dev/null
if ! rabbitmqctl status >/dev/null 2>&1; then
  log "starting rabbitmq-server $(dpkg-query -W -f='${Version}' rabbitmq-server) in the background"
  rabbitmq-server -detached
fi
deadline=$(($(now) + 60))
until curl -fsS --noproxy '*' -u guest:guest -o /dev/null http://127.0.0.1:15672/api/overview 2>/dev/null; do
  (($(now) < deadline)) || die "rabbitmq-server did not serve its management API within 60s"
  sleep 1
done
log "RabbitMQ $(rabbitmqctl version) is ready"
echo "SLUICE_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2F"
echo "SLUICE_TEST_MANAGEMENT_URL=http://guest:guest@127.0.0.1:15672"
