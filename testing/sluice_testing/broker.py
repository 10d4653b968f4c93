"""A test's view of a real RabbitMQ: start it, inspect queues, read and publish raw messages.

Tests may use pika directly: the rule that only ``sluice_common.amqp`` imports it holds for the
services, not for the code that checks them from outside.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import requests

from sluice_common.amqp import broker_version
from sluice_common.topology import GroupTopology
from sluice_testing.skips import skip_or_fail
from sluice_testing.waiting import wait_for

__all__ = ["RA_REGISTERED_ON_DISK", "TESTED_VERSION", "Broker", "RawMessage", "owned_broker", "start_broker"]

REPO = Path(__file__).resolve().parents[2]
RABBITMQ_SCRIPT = REPO / "scripts" / "rabbitmq.sh"
#: The RabbitMQ version of the test containers: scripts/rabbitmq.sh's SLUICE_RABBITMQ_VERSION, 4.3.6 by default.
TESTED_VERSION = os.environ.get("SLUICE_RABBITMQ_VERSION", "4.3.6")

#: Prints, one per line, the Ra server names that the broker's ``names.dets`` holds *on disk*: a
#: copy of the file, opened (and repaired, as a restart after a crash would) by the broker's own
#: Erlang. On restart RabbitMQ finds a quorum queue's replica only through this registration (Ra's
#: ``ra_directory``), which it writes behind (``auto_save`` 500 ms): measured 0.5-2.4 s after the
#: declaration on 4.0.5 and 4.3.6, the last queue of a burst the slowest. A SIGKILL before that
#: loses the replica (``name_not_registered`` in the broker's log): 4.0.5 then times out every
#: ``basic.consume`` with 541, 4.3.6 starts an empty replica and the confirmed messages are gone.
RA_REGISTERED_ON_DISK = r"""
set -e
for dets in /var/lib/rabbitmq/mnesia/*/quorum/*/names.dets; do
  [ -e "$dets" ] || continue
  copy=$(mktemp)
  cp "$dets" "$copy"
  COPY="$copy" erl -noinput -noshell -eval '
    {ok, T} = dets:open_file(registrations, [{file, os:getenv("COPY")}, {repair, force}]),
    dets:foldl(fun({Name, _UId}, ok) -> io:format("~s~n", [Name]) end, ok, T),
    halt().'
  rm -f "$copy"
done
"""


@dataclass(frozen=True)
class RawMessage:
    """A message read from a queue, as the broker holds it."""

    body: bytes
    routing_key: str
    headers: dict[str, Any]
    message_id: str | None
    content_type: str | None


def start_broker(name: str = "sluice-test", *, own: bool = False, tls_dir: Path | None = None) -> Broker:
    """Start (or reuse) the RabbitMQ 4.x test container ``name`` and return a handle on it.

    ``SLUICE_TEST_AMQP_URL`` + ``SLUICE_TEST_MANAGEMENT_URL`` point at an existing broker instead,
    unless ``own``: then it is always a container of the caller's own (to restart or kill).
    ``tls_dir`` (``ca.crt``, ``server.crt``, ``server.key``) adds a mutual-TLS listener to a new
    container of the caller's own; its URL is ``amqps_url``.
    """
    if os.environ.get("SLUICE_TEST_AMQP_URL") and not own and tls_dir is None:
        return Broker(os.environ["SLUICE_TEST_AMQP_URL"], os.environ["SLUICE_TEST_MANAGEMENT_URL"], name=None)
    env = {"SLUICE_RABBITMQ_TLS_DIR": str(tls_dir)} if tls_dir else {}
    return Broker.from_env_lines(_script("start", name, env=env), name=name)


@contextlib.contextmanager
def owned_broker(purpose: str, *, tls_dir: Path | None = None) -> Iterator[Broker]:
    """A RabbitMQ 4.x container of the caller's own (to restart, kill or alarm), removed afterwards.

    Never the shared or an external broker. Where none can start, the test skips (fails on CI).
    """
    try:
        broker = start_broker(f"sluice-{purpose}-{uuid.uuid4().hex[:8]}", own=True, tls_dir=tls_dir)
    except Exception as e:  # noqa: BLE001 - any reason to have no broker
        skip_or_fail(f"no RabbitMQ 4.x container for {purpose} tests ({e}); run `make system-deps` first")
    try:
        yield broker
    finally:
        broker.stop()


def _script(command: str, name: str, *, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        ["bash", str(RABBITMQ_SCRIPT), command, name], capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, **(env or {})},
    )
    if result.returncode != 0:
        raise RuntimeError(f"scripts/rabbitmq.sh {command} {name} failed:\n{result.stderr[-3000:]}")
    return result.stdout


class Broker:
    """A running RabbitMQ: its URLs, and helpers that talk to it with pika and the management API."""

    def __init__(self, amqp_url: str, management_url: str, *, name: str | None, metrics_url: str = "",
                 amqps_url: str = "", exec_prefix: Sequence[str] | None = None) -> None:
        """``name``: the container the tests started (restart, kill, stop); ``exec_prefix``: the command
        that runs a program in the broker's container (``docker exec <name>`` by default for a named one,
        ``kubectl exec`` for a pod), for rabbitmqctl and :meth:`durable_quorum_queues`."""
        self.amqp_url = amqp_url
        self.management_url = management_url.rstrip("/")
        self.metrics_url = metrics_url
        self.amqps_url = amqps_url
        self.name = name
        self.exec_prefix = list(exec_prefix) if exec_prefix else (["docker", "exec", name] if name else [])

    @classmethod
    def from_env_lines(cls, text: str, *, name: str | None) -> Broker:
        env = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and line.startswith("SLUICE_"))
        return cls(env["SLUICE_AMQP_URL"], env["SLUICE_MANAGEMENT_URL"], name=name,
                   metrics_url=env.get("SLUICE_RABBITMQ_METRICS_URL", ""), amqps_url=env.get("SLUICE_AMQPS_URL", ""))

    # -- container control (only for a broker this module started) ------------------------------

    def restart(self, *, hard: bool = False, durable_first: bool = True) -> float:
        """Restart the container on the same volume; its ports stay the same.

        Parameters:
            hard: SIGKILL it instead of stopping it cleanly; by default only once every quorum
                queue's registration is on disk (:meth:`wait_durable`), since one killed within
                about 2 s of its declaration can lose its replica (:data:`RA_REGISTERED_ON_DISK`).
            durable_first: False kills at once, as tests/chaos/test_queue_lost.py does on purpose.

        Returns:
            The moment (``time.monotonic()``) the stop or the kill began.
        """
        assert self.name, "only a broker started by the tests can be restarted"
        if hard and durable_first:
            self.wait_durable()
        fault_at = time.monotonic()
        fresh = Broker.from_env_lines(_script("kill" if hard else "restart", self.name), name=self.name)
        self.amqp_url, self.management_url, self.metrics_url = fresh.amqp_url, fresh.management_url, fresh.metrics_url
        self.amqps_url = fresh.amqps_url
        return fault_at

    def durable_quorum_queues(self) -> set[str]:
        """The quorum queues whose registration the broker holds on disk (:data:`RA_REGISTERED_ON_DISK`)."""
        assert self.exec_prefix, "the broker's files are read only in a container the tests can exec into"
        result = subprocess.run([*self.exec_prefix, "sh", "-c", RA_REGISTERED_ON_DISK],
                                capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"reading the broker's names.dets failed: {result.stderr[-2000:]}")
        # Ra names a quorum queue's server after its vhost and name: '%2F_sluice.default' for vhost /.
        return {line.split("_", 1)[1] for line in result.stdout.split() if line.startswith("%2F_")}

    def wait_durable(self, prefix: str = "", *, timeout: float = 60.0) -> float:
        """Wait until every quorum queue whose name starts with ``prefix`` would survive a SIGKILL; returns the seconds waited.

        The broker says so itself: each queue's registration is in its ``names.dets`` on disk.
        """
        started = time.monotonic()
        wanted = set(self.queue_names(prefix, queue_type="quorum"))
        assert wanted or not prefix, f"no quorum queue starts with {prefix!r}"
        if wanted:
            wait_for(lambda: wanted <= self.durable_quorum_queues(), timeout=timeout, interval=0.2,
                     what=f"the registrations of {sorted(wanted)} on disk")
        return time.monotonic() - started

    # What follows reads the broker's state with rabbitmqctl in its container where the tests can: the
    # management API's statistics need management_metrics_collection, which the 4.3 test broker denies.

    def connections(self) -> list[dict[str, Any]]:
        """The open client connections: ``client_properties`` (a dict), ``ssl``, ``peer_cert_subject``."""
        if not self.exec_prefix:
            return list(self._api("GET", "/api/connections").json())
        rows = self._ctl_rows("list_connections", "client_properties", "ssl", "peer_cert_subject")
        return [{**row, "client_properties": {key: value for key, _type, value in row["client_properties"]}}
                for row in rows]

    def consumer_tags(self, queue: str) -> set[str]:
        """The tags of the consumers attached to ``queue``."""
        if not self.exec_prefix:
            return {d["consumer_tag"] for d in (self.queue(queue) or {}).get("consumer_details", [])}
        return {row["consumer_tag"] for row in self._ctl_rows("list_consumers", "queue_name", "consumer_tag")
                if row["queue_name"] == queue}

    def messages(self, queue: str) -> int:
        """Messages in ``queue``, ready and unacknowledged (the broker's statistics: seconds behind)."""
        if not self.exec_prefix:
            return int((self.queue(queue) or {}).get("messages", -1))
        rows = [row for row in self._ctl_rows("list_queues", "name", "messages") if row["name"] == queue]
        return int(rows[0]["messages"]) if rows else -1

    def _ctl_rows(self, *args: str) -> list[dict[str, Any]]:
        return list(json.loads(self.ctl("-q", "--formatter", "json", *args) or "[]"))

    def stop(self) -> None:
        """Remove the container and its volume."""
        assert self.name, "only a broker started by the tests can be stopped"
        _script("stop", self.name)

    def ctl(self, *args: str) -> str:
        """Run ``rabbitmqctl`` in the broker's container; returns its output."""
        assert self.exec_prefix, "rabbitmqctl runs only in a container the tests can exec into"
        result = subprocess.run([*self.exec_prefix, "rabbitmqctl", *args], capture_output=True,
                                text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr[-2000:]}")
        return result.stdout

    # -- management API ----------------------------------------------------------------------------

    def _api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        parsed = urllib.parse.urlsplit(self.management_url)
        base = f"{parsed.scheme}://{parsed.hostname}:{parsed.port}"
        auth = (urllib.parse.unquote(parsed.username or ""), urllib.parse.unquote(parsed.password or ""))
        return requests.request(method, base + path, auth=auth, timeout=10, **kwargs)

    def version(self) -> str:
        """The broker's RabbitMQ version, from the management API."""
        return str(self._api("GET", "/api/overview").json()["rabbitmq_version"])

    def queue(self, name: str) -> dict[str, Any] | None:
        """The management API's record of a queue, or None if it does not exist."""
        response = self._api("GET", f"/api/queues/%2F/{urllib.parse.quote(name, safe='')}")
        return None if response.status_code == 404 else response.json()

    def set_policy(self, name: str, pattern: str, definition: dict[str, Any]) -> None:
        """Apply a policy to the queues matching ``pattern``, as an operator would (``rabbitmqctl set_policy``)."""
        response = self._api("PUT", f"/api/policies/%2F/{urllib.parse.quote(name, safe='')}",
                             json={"pattern": pattern, "definition": definition, "apply-to": "queues"})
        assert response.status_code in (201, 204), f"policy {name}: {response.status_code} {response.text}"

    def clear_policy(self, name: str) -> None:
        """Remove a policy set with :meth:`set_policy`."""
        self._api("DELETE", f"/api/policies/%2F/{urllib.parse.quote(name, safe='')}")

    def queue_names(self, prefix: str, *, queue_type: str | None = None) -> list[str]:
        """Names of the queues starting with ``prefix`` (of ``queue_type`` only, e.g. ``quorum``, if given)."""
        queues = self._api("GET", "/api/queues/%2F?columns=name,type").json()
        return sorted(q["name"] for q in queues
                      if q["name"].startswith(prefix) and queue_type in (None, q.get("type")))

    def delete_queue(self, name: str) -> None:
        """Delete one queue and its messages, as an operator could by hand."""
        self._api("DELETE", f"/api/queues/%2F/{urllib.parse.quote(name, safe='')}")

    def purge(self, name: str) -> None:
        """Remove every ready message of one queue (the management API's purge), keeping the queue."""
        response = self._api("DELETE", f"/api/queues/%2F/{urllib.parse.quote(name, safe='')}/contents")
        assert response.status_code == 204, f"purge {name}: {response.status_code} {response.text}"

    def delete_prefix(self, prefix: str) -> None:
        """Delete every queue and exchange whose name starts with ``prefix``."""
        for name in self.queue_names(prefix):
            self.delete_queue(name)
        for exchange in self._api("GET", "/api/exchanges/%2F?columns=name").json():
            if exchange["name"].startswith(prefix):
                self._api("DELETE", f"/api/exchanges/%2F/{urllib.parse.quote(exchange['name'], safe='')}")

    # -- AMQP --------------------------------------------------------------------------------------

    def depth(self, queue: str) -> int:
        """Messages ready in ``queue`` right now (a passive declare: exact, unlike the management API)."""
        return self.depths([queue])[queue]

    def depths(self, queues: list[str]) -> dict[str, int]:
        """Messages ready in each of ``queues`` right now, read over one connection."""
        with pika.BlockingConnection(pika.URLParameters(self.amqp_url)) as connection:
            channel = connection.channel()
            return {q: int(channel.queue_declare(q, passive=True).method.message_count) for q in queues}

    def consumers(self, queue: str) -> int:
        """Consumers attached to ``queue`` right now (a passive declare)."""
        with pika.BlockingConnection(pika.URLParameters(self.amqp_url)) as connection:
            return int(connection.channel().queue_declare(queue, passive=True).method.consumer_count)

    def drain(self, queue: str) -> list[RawMessage]:
        """Take every ready message out of ``queue`` (acked: they are gone afterwards)."""
        messages: list[RawMessage] = []
        with pika.BlockingConnection(pika.URLParameters(self.amqp_url)) as connection:
            channel = connection.channel()
            while True:
                method, properties, body = channel.basic_get(queue, auto_ack=True)
                if method is None:
                    return messages
                messages.append(RawMessage(body, method.routing_key, dict(properties.headers or {}),
                                           properties.message_id, properties.content_type))

    def bind_queue(self, queue: str, exchange: str, routing_key: str = "#") -> None:
        """Declare a durable topic ``exchange`` and a classic ``queue`` bound to it, to see what is published."""
        with pika.BlockingConnection(pika.URLParameters(self.amqp_url)) as connection:
            channel = connection.channel()
            channel.exchange_declare(exchange, "topic", durable=True)
            channel.queue_declare(queue, durable=True)
            channel.queue_bind(queue, exchange, routing_key)

    def declare(self, topology: GroupTopology) -> None:
        """Declare a group's exchange, queues and bindings, exactly as its consumer would."""
        with pika.BlockingConnection(pika.URLParameters(self.amqp_url)) as connection:
            topology = topology.for_broker(broker_version(connection._impl.server_properties))
            channel = connection.channel()
            channel.exchange_declare(topology.exchange, "topic", durable=True)
            for spec in topology.queues:
                channel.queue_declare(spec.name, durable=True, arguments=spec.arguments)
            for key in topology.binding_keys:
                channel.queue_bind(topology.work.name, topology.exchange, key)

    def publish(self, exchange: str, routing_key: str, body: bytes, *, message_id: str | None = None,
                headers: dict[str, Any] | None = None, content_type: str | None = "application/json") -> None:
        """Publish one persistent message with a confirm, as any client could."""
        with pika.BlockingConnection(pika.URLParameters(self.amqp_url)) as connection:
            channel = connection.channel()
            channel.confirm_delivery()
            properties = pika.BasicProperties(delivery_mode=2, message_id=message_id, headers=headers,
                                              content_type=content_type)
            channel.basic_publish(exchange, routing_key, body, properties, mandatory=True)
