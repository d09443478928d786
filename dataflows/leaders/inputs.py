"""Kafka messages to valid ticks or dead letters (original bytes, reason, where read)."""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable
from dataclasses import dataclass

from bytewax.connectors.kafka import KafkaError, KafkaSourceMessage
from confluent_kafka import KafkaError as ConfluentKafkaError

from stockstream.metrics import KAFKA_CONSUMER_ERRORS, TICKS_DECODED
from stockstream.ticks import Reason, Rejection, Tick, decode

log = logging.getLogger(__name__)

RawMessage = KafkaSourceMessage[bytes | None, bytes | None]


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


def dead_letter(msg: RawMessage, rejection: Rejection) -> DeadLetter:
    """A message's dead letter: its original bytes, the reason and where it was read."""
    return DeadLetter(rejection.reason, rejection.reason_text, msg.key, msg.value,
                      msg.topic or "", msg.partition or 0, msg.offset or 0)


def count_consumer_error(err: ConfluentKafkaError) -> None:
    """librdkafka's `error_cb`: a broker down, a transport failure... (it reconnects on its
    own); counted and logged so that an outage is visible."""
    KAFKA_CONSUMER_ERRORS.labels(err.name()).inc()
    log.warning("kafka consumer error", extra={"error": err.str()})


def decode_batch(
    messages: Iterable[RawMessage | KafkaError[bytes | None, bytes | None]],
) -> Generator[tuple[RawMessage, Tick | Rejection], None, None]:
    """Each message with its decoded tick or rejection; consumer errors are logged and skipped
    (librdkafka retries those on its own). Counts the valid ticks it yielded once, at its end
    or when closed."""
    valid = 0
    try:
        for msg in messages:
            if isinstance(msg, KafkaError):
                log.warning("kafka consumer error", extra={"error": str(msg.err)})
                KAFKA_CONSUMER_ERRORS.labels(msg.err.name()).inc()
                continue
            decoded = decode(msg.key, msg.value)
            valid += isinstance(decoded, Tick)
            yield msg, decoded
    finally:  # also when the caller stops early (a batch cut at a window end)
        TICKS_DECODED.inc(valid)
