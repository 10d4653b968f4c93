"""The AMQP client: the only package that imports pika.

Two sessions, each owning one connection and one I/O thread that runs pika's ``SelectConnection``
loop. pika is not thread-safe, so every channel operation runs on that thread; other threads hand
work over with ``ioloop.add_callback_threadsafe``. Because the loop never runs user code, heartbeats
keep flowing however long a handler takes.

- :class:`Publisher`: publisher confirms always on, persistent messages, ``mandatory`` with
  returns reported, a bounded window of unconfirmed messages, and republishing of everything
  unconfirmed after a reconnect (a duplicate is possible, a loss is not).
- :class:`Consumer`: declares a group's topology, consumes with a prefetch, hands each delivery to a
  callback, and settles it later from any thread: ack, or forward (publish to a retry tier or the
  dead-letter queue, wait for the confirm, then ack; a crash in between duplicates, never loses).
- :class:`QueueClient`: a blocking session for operator tools: browse a queue without removing
  from it, publish one message at a time with a confirm, ack, purge.

Both reconnect with capped exponential backoff. pika's failures never leave this package: they are
logged, turned into state (``connected``, ``ready``) or raised as :mod:`sluice_common.errors`.

Modules:

- ``parameters``: pika connection parameters and the client TLS context.
- ``session``: the reconnecting session the publisher and the consumer share (connection, I/O
  thread, backoff, write coalescing), :class:`AmqpObserver`, :func:`broker_version` and
  ``describe``, which turns a pika failure into one credential-free line.
- ``publisher``: :class:`Publisher`.
- ``confirms``: the publisher's window of unconfirmed messages, and the :class:`PublishBatch` in
  which the broker's confirms settle the messages of one call.
- ``consumer``: :class:`Consumer`, :class:`DeliveryHandle` and the declaration of a group's topology.
- ``queue_client``: :class:`QueueClient`.
- ``messages``: the AMQP properties a message is published with and the :class:`Delivery` read
  back, used by all three clients.
"""

from __future__ import annotations

from sluice_common.amqp.consumer import Consumer, DeliveryHandle
from sluice_common.amqp.parameters import tls_context as tls_context
from sluice_common.amqp.publisher import PublishBatch, Publisher
from sluice_common.amqp.queue_client import QueueClient
from sluice_common.amqp.session import COALESCE_BYTES as COALESCE_BYTES
from sluice_common.amqp.session import RECONNECT_MAX_S as RECONNECT_MAX_S
from sluice_common.amqp.session import AmqpObserver, broker_version, compute_backoff
from sluice_common.amqp.session import coalesce_writes as coalesce_writes

# The names imported "as" themselves are importable from here too, without being part of __all__.
__all__ = [
    "AmqpObserver",
    "Consumer",
    "DeliveryHandle",
    "PublishBatch",
    "Publisher",
    "QueueClient",
    "broker_version",
    "compute_backoff",
]
