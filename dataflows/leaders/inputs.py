"""Kafka messages to valid ticks (with where they came from) or dead letters."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage

from stockstream.metrics import TICKS_DECODED
from stockstream.ticks import Reason, Rejection, Tick, decode

log = logging.getLogger(__name__)

RawMessage = KafkaSourceMessage[bytes | None, bytes | None]


@dataclass(frozen=True, slots=True)
class Arrival:
    """A valid tick and the bytes it came as (the dead-letter topic gets those if it is late)."""

    tick: Tick
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected message, its reason and where it was read from."""

    reason: Reason
    reason_text: str
    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int

    @classmethod
    def of(cls, rejection: Rejection, topic: str, partition: int, offset: int) -> DeadLetter:
        return cls(rejection.reason, rejection.reason_text, rejection.key, rejection.value,
                   topic, partition, offset)


def decode_message(
    msg: RawMessage | KafkaError[bytes | None, bytes | None],
) -> Arrival | DeadLetter | None:
    """A message as an `Arrival` (a valid tick), a `DeadLetter`, or None for a consumer error
    (logged; librdkafka retries those on its own)."""
    if isinstance(msg, KafkaError):
        log.warning("kafka consumer error", extra={"error": str(msg.err)})
        return None
    decoded = decode(msg.key, msg.value)
    partition, offset = msg.partition or 0, msg.offset or 0
    if isinstance(decoded, Rejection):
        return DeadLetter.of(decoded, msg.topic or "", partition, offset)
    TICKS_DECODED.inc()
    return Arrival(decoded, msg.key, msg.value, partition, offset)
