"""sluice's messages in AMQP terms: the properties a message is published with, a delivery read back.

Shared by the publisher, the consumer and the queue client.
"""

from __future__ import annotations

import struct
from typing import Any

import pika
import pika.exceptions

from sluice_common.envelope import Delivery, OutgoingMessage

#: Raised by pika while encoding a message, before anything is sent: the message itself is at fault.
_UNENCODABLE = (pika.exceptions.ShortStringTooLong, pika.exceptions.UnsupportedAMQPFieldException, struct.error)


def _properties(message: OutgoingMessage) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=message.content_type,
        delivery_mode=2,  # persistent
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        headers=message.headers,
    )


def _delivery(method: Any, properties: Any, body: bytes) -> Delivery:
    headers = dict(properties.headers or {})
    # Any client can set x-delivery-count: RabbitMQ 4.0 passes it through on a first delivery and
    # only writes its own count on redeliveries. Trusting a forged one would dead-letter a good event.
    count = headers.get("x-delivery-count", 0) if method.redelivered else 0
    return Delivery(
        body=body,
        routing_key=method.routing_key,
        message_id=properties.message_id,
        headers=headers,
        content_type=properties.content_type,
        type=properties.type,
        timestamp=properties.timestamp,
        redelivered=method.redelivered,
        delivery_count=count if isinstance(count, int) else 0,
    )
