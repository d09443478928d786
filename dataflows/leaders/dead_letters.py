"""The dead-letter sink: every rejected message, with its original bytes and the reason.

Record: key and value exactly as read; headers `reason` (the code, e.g. `late`),
`reason_detail`, `source_topic`, `source_partition`, `source_offset`, `rejected_at`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition
from confluent_kafka import KafkaError, Message, Producer

from dataflows.leaders.health import HEALTH
from dataflows.leaders.inputs import DeadLetter
from stockstream.kafka import create_producer, produce
from stockstream.metrics import DLQ_PUBLISHED, PRODUCER_DELIVERY_ERRORS, TICKS_REJECTED

log = logging.getLogger(__name__)


def count_rejection(letter: DeadLetter) -> DeadLetter:
    """Count a rejection by reason (the flow's step before the sink)."""
    TICKS_REJECTED.labels(letter.reason.value).inc()
    return letter


def dead_letter_headers(letter: DeadLetter, now: datetime) -> list[tuple[str, str | bytes | None]]:
    return [
        ("reason", letter.reason.value.encode()),
        ("reason_detail", letter.reason_text.encode()),
        ("source_topic", letter.topic.encode()),
        ("source_partition", str(letter.partition).encode()),
        ("source_offset", str(letter.offset).encode()),
        ("rejected_at", now.isoformat(timespec="milliseconds").encode()),
    ]


def log_dead_letters(items: list[DeadLetter]) -> None:
    """One warning per reason in a batch (so a flood of bad input cannot flood the logs): the
    count and the first letter's detail and position, as `reason`, `count`, `reason_detail`,
    `source_topic`, `source_partition`, `source_offset`."""
    by_reason: dict[str, list[DeadLetter]] = {}
    for letter in items:
        by_reason.setdefault(letter.reason.value, []).append(letter)
    for reason, letters in by_reason.items():
        first = letters[0]
        log.warning(
            "ticks dead-lettered",
            extra={
                "reason": reason,
                "count": len(letters),
                "reason_detail": first.reason_text,
                "source_topic": first.topic,
                "source_partition": first.partition,
                "source_offset": first.offset,
            },
        )


def _on_delivery(err: KafkaError | None, msg: Message) -> None:
    if err is None:
        DLQ_PUBLISHED.inc()
    else:
        PRODUCER_DELIVERY_ERRORS.inc()
        log.error("dead letter not delivered", extra={"error": err.str()})


class _DeadLetterPartition(StatelessSinkPartition[DeadLetter]):
    def __init__(self, producer: Producer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    def write_batch(self, items: list[DeadLetter]) -> None:
        now = datetime.now(UTC)
        for letter in items:
            produce(
                self.producer,
                self.topic,
                letter.key,
                letter.value,
                headers=dead_letter_headers(letter, now),
            )
        self._flush()
        log_dead_letters(items)

    def _flush(self) -> None:
        while (left := self.producer.flush(10)) > 0:
            log.warning("dead letters still in flight", extra={"messages": left})
            time.sleep(1)
            HEALTH.beat()  # waiting for the broker: a restart would not bring it back

    def close(self) -> None:
        self._flush()


class DeadLetterSink(DynamicSink[DeadLetter]):
    """An idempotent `acks=all` producer per worker; a batch is flushed before it is done."""

    def __init__(self, bootstrap: str, topic: str, extra: Mapping[str, Any]) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.extra = dict(extra)

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _DeadLetterPartition:
        producer = create_producer(
            self.bootstrap,
            client_id=f"leaders-dlq-{worker_index}",
            extra=self.extra,
            on_delivery=_on_delivery,
        )
        return _DeadLetterPartition(producer, self.topic)
