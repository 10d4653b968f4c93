"""A broker killed right after declaring a quorum queue can lose it: reproduced, and what sluice does then.

RabbitMQ registers a quorum queue's replica in Ra's ``names.dets``, written behind by about 0.5-2.4 s
(``sluice_testing.broker.RA_REGISTERED_ON_DISK``). A SIGKILL inside that window loses the
registration; on restart the broker logs ``name_not_registered`` and:

- 4.0.5 keeps the queue in its metadata, but every declare and ``basic.consume`` of it fails with
  ``541 INTERNAL_ERROR``. The consumers must say so: not ready, ``sluice_queue_unavailable`` 1, the
  queue and the runbook in the log.
- 4.3.6 starts the replica afresh and empty: the queue works again, and what it held is gone.
  No client can tell; the broker's log is the only witness (docs/runbooks.md, SluiceQueueUnavailable).

Every "restart loses nothing" test kills the broker with ``Broker.restart(hard=True)``, which waits
until :meth:`Broker.wait_durable` says the registrations are on disk; this test is the one that
kills it before (``durable_first=False``).
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
import requests

from sluice_testing.broker import owned_broker
from sluice_testing.events import READING
from sluice_testing.flaky_sink import FlakySink
from sluice_testing.processes import ServiceProcess
from sluice_testing.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Tries at killing the broker before the work queue's registration reaches the disk.
KILL_TRIES = 5


def _service(module: str, broker, prefix: str, sink: FlakySink) -> ServiceProcess:
    env = {"SLUICE_AMQP_URL": broker.amqp_url, "SLUICE_TOPOLOGY_PREFIX": prefix,
           "SLUICE_TOPOLOGY_EXCHANGE": f"{prefix}.events", "SLUICE_RETRY_DELAYS": "1s",
           "SLUICE_SINK_KIND": "http", "SLUICE_SINK_URL": sink.url, "SLUICE_SINK_TIMEOUT_SECONDS": "30",
           "SLUICE_CONSUMER_QUEUE_POLL_SECONDS": "0.5", "SLUICE_LOG_FORMAT": "json"}
    return ServiceProcess(module, env).start().wait_ready(60)


def _lost(broker, queue: str) -> bool:
    """The broker's log says it started ``queue``'s replica afresh: its registration was lost."""
    log = subprocess.run(["docker", "logs", broker.name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, check=True).stdout
    return any("name_not_registered" in line and f"'{queue}'" in line for line in log.splitlines())


def test_a_broker_killed_before_a_queue_is_durable_loses_it_and_sluice_says_so():
    sink = FlakySink().start()
    sink.delay_s = 30.0  # the consumer holds its deliveries, unacknowledged, when the broker dies
    started: list[ServiceProcess] = []
    try:
        with owned_broker("queue-lost") as broker:
            # Given a consumer that just declared its topology, and confirmed events in its work queue,
            # When the broker is killed at once, before it wrote the work queue's registration to disk
            # (a kill a moment later may find it written: then the test tries again on a new topology)
            for _ in range(KILL_TRIES):
                prefix = f"lost{uuid.uuid4().hex[:8]}"
                work = f"{prefix}.default"
                started.append(consumer := _service("sluice_consumer", broker, prefix, sink))
                for i in range(5):
                    broker.publish(f"{prefix}.events", "sensor.reading", json.dumps(READING).encode(),
                                   message_id=f"{prefix}-{i}")
                broker.restart(hard=True, durable_first=False)
                if _lost(broker, work):
                    break
                consumer.kill()
            # Then the broker lost the queue's replica
            assert _lost(broker, work), f"{KILL_TRIES} kills right after the declaration left every queue intact"
            if broker.version().startswith("4.0"):
                # And on 4.0 the queue fails every attempt, which the consumer reports
                try:
                    wait_for(lambda: consumer.metric("sluice_queue_unavailable", queue=work) == 1, timeout=150,
                             what=f"sluice_queue_unavailable{{queue={work!r}}} 1")
                except TimeoutError as e:
                    raise AssertionError(f"{e}; consumer log:\n{consumer.logs()[-4000:]}") from None
                assert requests.get(consumer.url + "/readyz", timeout=5).status_code == 503
                assert "docs/runbooks.md#sluicequeueunavailable" in consumer.logs()
                assert f"Queue {work!r} does not work" in consumer.logs()
                # And a producer publishing to it gets no confirm, which it reports too
                started.append(producer := _service("sluice_producer", broker, prefix, sink))
                events = [{"type": "sensor.reading", "data": READING, "id": f"{prefix}-after"}]
                answer = requests.post(producer.url + "/events", json=events, timeout=60)
                assert answer.status_code == 503, answer.text
                wait_for(lambda: producer.metric("sluice_publish_stalled") == 1, timeout=90,
                         what="sluice_publish_stalled 1")
                assert requests.get(producer.url + "/readyz", timeout=5).status_code == 503
                assert "docs/runbooks.md#sluicequeueunavailable" in producer.logs()
            else:
                # And on 4.3 the queue works again, empty: nothing the clients can see
                wait_for(lambda: requests.get(consumer.url + "/readyz", timeout=5).status_code == 200,
                         timeout=60, what="the consumer ready again")
                assert broker.depth(work) == 0
                assert consumer.metric("sluice_queue_unavailable", queue=work) == 0
    finally:
        for process in started:
            process.close()
        sink.stop()
